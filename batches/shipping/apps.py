from django.apps import AppConfig

from cmlims import roles


class ShippingConfig(AppConfig):
    """Shipments of released vials: allocation, pack-out, courier hand-off, cold chain, receipt, recall."""

    name = "batches.shipping"
    label = "shipping"
    verbose_name = "Shipping"
    default_auto_field = "django.db.models.BigAutoField"

    # The shipping coordinator works shipments; everyone reads them (a QC officer investigates
    # excursions and recalls, lab staff answer traceability questions).
    _read = {
        "shipping.view_consignee",
        "shipping.view_shipment",
        "shipping.view_shipmentvial",
        "shipping.view_custodyevent",
        "shipping.view_temperaturelog",
        "shipping.view_temperaturereading",
    }
    role_permissions = {
        roles.SHIPPING_COORDINATOR: _read
        | {
            "shipping.add_consignee",
            "shipping.change_consignee",
            "shipping.add_shipment",
            "shipping.change_shipment",
            "shipping.add_custodyevent",
            "shipping.add_temperaturelog",
        },
        roles.QC_OFFICER: set(_read),
        roles.LAB_STAFF: set(_read),
        roles.INTEGRATION: set(),
    }

    def ready(self) -> None:
        from batches.selectors import register_vial_consignees, register_vial_destinations
        from batches.shipping.selectors import vial_consignees, vial_destinations

        # The vial and donor traces (rule 9) reach the shipments and consignees through these.
        register_vial_destinations(vial_destinations)
        register_vial_consignees(vial_consignees)

        from batches.shipping.models import Shipment
        from cmlims.investigations.deviations import register_deviation_subject

        register_deviation_subject("shipment", Shipment)

        from cmlims.storedfiles import register_stored_file

        # verify_audit re-hashes every logger file kept as uploaded against the digest recorded at upload.
        register_stored_file("shipping.TemperatureLog", file_field="original", hash_field="file_sha256")
