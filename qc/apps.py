from django.apps import AppConfig

from cmlims import roles

_MODELS = ("specification", "specitem", "qcresult", "resultimport", "lotauditreview")


class QcConfig(AppConfig):
    name = "qc"
    verbose_name = "Quality control"
    default_auto_field = "django.db.models.BigAutoField"

    # Lab staff enter results (add) and read specs; QC officers draft specifications and enter, approve and
    # review results (approval and review go through signing services, never a plain change form).
    role_permissions: dict[str, set[str]] = {
        roles.LAB_STAFF: {f"qc.view_{m}" for m in _MODELS} | {"qc.add_qcresult"},
        roles.QC_OFFICER: {f"qc.view_{m}" for m in _MODELS}
        | {"qc.add_qcresult", "qc.add_specification", "qc.change_specification", "qc.add_specitem",
           "qc.change_specitem", "qc.add_lotauditreview"},
        roles.SHIPPING_COORDINATOR: {"qc.view_specification", "qc.view_specitem", "qc.view_qcresult"},
        roles.INTEGRATION: {"qc.view_qcresult", "qc.add_qcresult"},  # results, not specifications (role table)
    }

    def ready(self) -> None:
        from cmlims.investigations.services import register_investigation_participants
        from cmlims.storedfiles import register_stored_file
        from qc import guards, selectors
        from qc.models import QCResult

        guards.register()
        # verify_audit re-hashes every result's raw-data attachment against the digest stored with it.
        register_stored_file("qc.QCResult", file_field="attachment", hash_field="attachment_sha256")
        # ... and every imported instrument export, kept as received.
        register_stored_file("qc.ResultImport", file_field="original", hash_field="sha256")
        # Rule 2: whoever entered, approved or retested a result does not close its OOS investigation.
        register_investigation_participants(QCResult, selectors.result_participants)
