"""QC records: specifications (versioned, signed into force), results, and the lot's audit-trail reviews."""

from .results import LotAuditReview, QCResult, ResultImport, ResultSource, ResultStatus
from .specs import LimitKind, Specification, SpecItem, SpecStatus

__all__ = [
    "LimitKind", "LotAuditReview", "QCResult", "ResultImport", "ResultSource", "ResultStatus", "SpecItem", "SpecStatus",
    "Specification",
]
