from django.apps import AppConfig

from cmlims import roles

# Manufacturing records lab staff write (through the admin, which calls the services).
_LAB_WRITES = (
    "product", "storagelocation", "cellsource", "cellbank", "culture", "passage", "harvest", "cmlot",
    "harvestcontribution", "lyophilisationrun", "lyophilisationphase", "packagingrun", "vial",
)
_ALL_VIEW = {f"batches.view_{name}" for name in _LAB_WRITES}


class BatchesConfig(AppConfig):
    name = "batches"
    verbose_name = "Manufacturing record"
    default_auto_field = "django.db.models.BigAutoField"

    # Lab staff record manufacturing (add/change, never delete: records are voided); everyone reads.
    role_permissions: dict[str, set[str]] = {
        roles.LAB_STAFF: _ALL_VIEW | {f"batches.{verb}_{name}" for name in _LAB_WRITES for verb in ("add", "change")},
        roles.QC_OFFICER: set(_ALL_VIEW),
        roles.SHIPPING_COORDINATOR: set(_ALL_VIEW),
        roles.INTEGRATION: {"batches.view_cmlot", "batches.view_product", "batches.view_vial"},
    }

    def ready(self) -> None:
        from datetime import timedelta

        from cmlims import periodic
        from cmlims.timeline import register_timeline

        # Registered at app loading (not in tasks.py) so beat's schedule has it before tasks are imported.
        periodic.register("lots-expire", "batches.lots_expire", every=timedelta(hours=1))

        from .models import CMLot, LyophilisationRun
        from .selectors import lot_timeline_children, run_timeline_children

        # A lot's audit timeline covers its pool, harvests, freeze-drying (with phases), packaging, vials and
        # the signatures on it.
        register_timeline(CMLot, children=lot_timeline_children)
        register_timeline(LyophilisationRun, children=run_timeline_children)

        from cmlims.investigations.deviations import register_deviation_subject

        from .models import Harvest, PackagingRun

        # What lab staff and QC may raise a deviation against (issue 13 item 10).
        for key, model in (("lot", CMLot), ("harvest", Harvest), ("drying_run", LyophilisationRun),
                           ("packaging_run", PackagingRun)):
            register_deviation_subject(key, model)
