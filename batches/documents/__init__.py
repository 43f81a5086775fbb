"""Documents of a lot: its vial and carton labels (``labels``) and its batch record (``batch_record``).

Discovered by ``cmlims.documents`` (autodiscover of each app's ``documents`` module): importing the package
registers the builders. The lot admin offers the request services below as actions (``batches.admin``).
"""

from batches.documents.batch_record import BATCH_RECORD, build_batch_record, lot_batch_record_request
from batches.documents.labels import (
    CARTON,
    FORMATS,
    LABEL_TEMPLATES,
    LOT_LABELS,
    MAX_COPIES,
    VIAL,
    CartonLabel,
    VialLabel,
    build_lot_labels,
    lot_label_conditions,
    lot_label_conditions_for_release,
    lot_label_disposition_record,
    lot_label_reconciliation,
    lot_labels_page_request,
    lot_labels_params,
    lot_labels_request,
    lot_unlabelled_serials,
    lot_unlabelled_vial_labels_request,
)

__all__ = [
    "BATCH_RECORD",
    "CARTON",
    "FORMATS",
    "LABEL_TEMPLATES",
    "LOT_LABELS",
    "MAX_COPIES",
    "VIAL",
    "CartonLabel",
    "VialLabel",
    "build_batch_record",
    "build_lot_labels",
    "lot_batch_record_request",
    "lot_label_conditions",
    "lot_label_conditions_for_release",
    "lot_label_disposition_record",
    "lot_label_reconciliation",
    "lot_labels_params",
    "lot_labels_page_request",
    "lot_labels_request",
    "lot_unlabelled_serials",
    "lot_unlabelled_vial_labels_request",
]
