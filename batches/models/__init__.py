"""The manufacturing record: donor → bank → culture → harvest → lot → freeze-drying → vials.

Every model here is a GMP record (``cmlims.audit.AuditedModel``): written only through the services
in ``batches.services`` (which audit), never deleted, voided with a reason where that applies.
"""

from .common import PerformedStep
from .culture import Culture, Harvest, Passage, population_doublings
from .drying import LyophilisationPhase, LyophilisationRun
from .lots import SIGNED_STATUSES, CMLot, HarvestContribution, LotNumberSequence, LotStatus, signed_lot_downstream
from .packaging import PackagingRun, Vial, VialStatus
from .product import Product, StorageLocation, gtin14, validate_gtin
from .source import CellBank, CellSource

__all__ = [
    "SIGNED_STATUSES", "CMLot", "CellBank", "CellSource", "Culture", "Harvest", "HarvestContribution",
    "LotNumberSequence", "LotStatus", "LyophilisationPhase", "LyophilisationRun", "PackagingRun", "Passage",
    "PerformedStep", "Product", "StorageLocation", "Vial", "VialStatus", "gtin14", "population_doublings",
    "signed_lot_downstream", "validate_gtin",
]
