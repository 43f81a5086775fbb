"""API payloads of the manufacturing record: input parsers (types and field rules only; the services decide)
and output shapes. No serializer saves anything."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cmlims.api.fields import AwareDateTimeField, InputModelSerializer
from cmlims.api.responses import DecimalText, SignatureManifestBody

from .. import models as m
from ..lifecycle import LOT_PIPELINE, LOT_STATUS_TARGETS
from ..models.common import POSITIVE
from ..selectors import lot_genealogy, vial_counts
from ..services import cultures, drying, products, sources


def decimals_as_text(value):
    """Decimals as their stored text ("400.00"), like the serializer fields render them — never floats."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: decimals_as_text(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [decimals_as_text(v) for v in value]
    return value


def _input(model, fields, name: str) -> type[serializers.ModelSerializer]:
    """A ModelSerializer that only parses ``fields`` of ``model`` (model validators run; no unique checks,
    which the database and the services own; times need their offset)."""
    meta = type("Meta", (), {"model": model, "fields": sorted(fields), "validators": []})
    return type(name, (InputModelSerializer,), {"Meta": meta})


ProductInput = _input(m.Product, products.PRODUCT_FIELDS, "ProductInput")
StorageLocationInput = _input(m.StorageLocation, products.LOCATION_FIELDS, "StorageLocationInput")
CellSourceInput = _input(m.CellSource, sources.CELL_SOURCE_INPUT_FIELDS, "CellSourceInput")
# What the schema says a donor record takes: the eligibility fields are parsed only to be refused by name
# (a QC officer's signed determination sets them), so a client is not offered them.
CellSourceRequest = _input(m.CellSource, sources.CELL_SOURCE_FIELDS, "CellSourceInput")


class DonorEligibilityInput(serializers.Serializer):
    """A QC officer's signed determination ("eligibility determined"): both signature components."""

    eligibility_status = serializers.CharField(help_text="eligible or ineligible")
    reason = serializers.CharField(allow_blank=True)
    evidence = serializers.CharField(allow_blank=True, help_text="the screening and testing records reviewed")
    username = serializers.CharField(allow_blank=True)
    password = serializers.CharField(allow_blank=True, trim_whitespace=False)
    meaning = serializers.CharField(required=False, allow_blank=True, default="")


class ProductLimitsApproveInput(serializers.Serializer):
    """A QC officer's signed approval ("product limits approved") of a product's changed process limits."""

    reason = serializers.CharField(required=False, allow_blank=True, default="")
    username = serializers.CharField(allow_blank=True)
    password = serializers.CharField(allow_blank=True, trim_whitespace=False)
    meaning = serializers.CharField(required=False, allow_blank=True, default="")


def product_limits_body(product) -> dict:
    """A product's process limits: the approved version in force, its signature, and what waits for approval."""
    from cmlims.esign.services import signature_manifest

    signature = product.limits_approval if product.limits_approval_id else None
    return {"id": product.pk, "limits_version": product.limits_version, "limits_approved": product.limits_approved,
            "limits_pending": products.product_limits_pending(product),
            "limits_approval": signature_manifest(signature) if signature else None}


def donor_eligibility_body(source) -> dict:
    """A donor's eligibility as determined: status, by whom, why, on what evidence, and the signature (11.50)."""
    from cmlims.esign.services import signature_manifest

    signature = source.eligibility_signature if source.eligibility_signature_id else None
    return {"code": source.code, "eligibility_status": source.eligibility_status,
            "eligibility_determined_on": source.eligibility_determined_on,
            "eligibility_determined_by": (source.eligibility_determined_by.get_username()
                                          if source.eligibility_determined_by_id else None),
            "eligibility_reason": source.eligibility_reason, "eligibility_evidence": source.eligibility_evidence,
            "eligibility_signature": signature_manifest(signature) if signature else None}
CellBankInput = _input(m.CellBank, sources.CELL_BANK_FIELDS, "CellBankInput")
CultureInput = _input(m.Culture, cultures.CULTURE_FIELDS, "CultureInput")
PassageInput = _input(m.Passage, cultures.PASSAGE_FIELDS, "PassageInput")
HarvestInput = _input(m.Harvest, cultures.HARVEST_FIELDS, "HarvestInput")
LyophilisationRunInput = _input(m.LyophilisationRun, drying.RUN_FIELDS, "LyophilisationRunInput")
LyophilisationPhaseInput = _input(m.LyophilisationPhase, drying.PHASE_FIELDS | {"phase"}, "LyophilisationPhaseInput")

class VoidInput(serializers.Serializer):
    reason = serializers.CharField()


class VialMoveInput(serializers.Serializer):
    storage_location = serializers.SlugRelatedField(slug_field="code", queryset=m.StorageLocation.objects.all())
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class ContributionInput(serializers.Serializer):
    harvest = serializers.IntegerField(min_value=1)
    volume_ml = serializers.DecimalField(max_digits=10, decimal_places=2, min_value=POSITIVE.limit_value,
                                         error_messages={"min_value": POSITIVE.message})


class PoolInput(serializers.Serializer):
    product = serializers.PrimaryKeyRelatedField(queryset=m.Product.objects.filter(voided_at__isnull=True))
    pooled_at = AwareDateTimeField(required=False)
    contributions = ContributionInput(many=True, allow_empty=False)
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class FiltrationInput(serializers.Serializer):
    filter_pore_size_um = serializers.DecimalField(max_digits=4, decimal_places=2)
    filter_lot = serializers.CharField(max_length=60)
    integrity_test_method = serializers.ChoiceField(choices=m.CMLot.IntegrityTest.choices)
    integrity_test_limit_bar = serializers.DecimalField(max_digits=6, decimal_places=3, min_value=0)
    integrity_test_measured_bar = serializers.DecimalField(max_digits=6, decimal_places=3, min_value=0)
    volume_filtered_ml = serializers.DecimalField(max_digits=10, decimal_places=2, min_value=0)
    filtered_at = AwareDateTimeField(required=False)


class ConcentrationInput(serializers.Serializer):
    concentration_cutoff_kda = serializers.DecimalField(max_digits=6, decimal_places=1, min_value=0)
    concentration_factor = serializers.DecimalField(max_digits=6, decimal_places=2)
    volume_out_ml = serializers.DecimalField(max_digits=10, decimal_places=2)
    concentrated_at = AwareDateTimeField(required=False)


class LotStepVerifyInput(serializers.Serializer):
    step = serializers.ChoiceField(choices=["pooling", "filtration", "concentration"])
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class RunCompleteInput(serializers.Serializer):
    ended_at = AwareDateTimeField()
    end_of_primary_drying_method = serializers.ChoiceField(choices=m.LyophilisationRun.EndOfPrimaryDrying.choices)
    end_of_primary_drying_at = AwareDateTimeField()
    end_of_primary_drying_evidence = serializers.CharField()
    stoppering_method = serializers.ChoiceField(choices=m.LyophilisationRun.Stoppering.choices)
    stoppering_pressure_mbar = serializers.DecimalField(max_digits=8, decimal_places=4, min_value=0, required=False,
                                                        allow_null=True)
    stoppered_at = AwareDateTimeField()
    alarms = serializers.CharField(required=False, allow_blank=True, default="")
    alarm_count = serializers.IntegerField(min_value=0, required=False, default=0)


class PackagingInput(serializers.Serializer):
    run_number = serializers.CharField(max_length=30)
    started_at = AwareDateTimeField()
    ended_at = AwareDateTimeField()
    vials_packaged = serializers.IntegerField(min_value=1)
    vials_rejected = serializers.IntegerField(min_value=0, required=False, default=0)
    storage_location = serializers.SlugRelatedField(slug_field="code", queryset=m.StorageLocation.objects.all())


class ConditioningInput(serializers.Serializer):
    confluence_percent = serializers.DecimalField(max_digits=5, decimal_places=2, min_value=0, max_value=100)
    started_at = AwareDateTimeField(required=False)


class TransitionInput(serializers.Serializer):
    # Every status target of the lot pipeline (signed and automatic ones are refused with their 409 code).
    to = serializers.ChoiceField(choices=LOT_STATUS_TARGETS)
    reason = serializers.CharField(required=False, allow_blank=True, default="")


# --- output ----------------------------------------------------------------------------------------------


_plain_cache: dict[type, type] = {}


def record_serializer(model) -> type[serializers.ModelSerializer]:
    """What ``record_out`` renders ``model`` with: every field as stored; the schema's answer of its routes."""
    if model not in _plain_cache:
        meta = type("Meta", (), {"model": model, "fields": "__all__"})
        _plain_cache[model] = type(f"{model.__name__}Output", (serializers.ModelSerializer,), {"Meta": meta})
    return _plain_cache[model]


def record_out(obj) -> dict:
    """Every field of a manufacturing record as stored (relations as ids)."""
    return record_serializer(type(obj))(obj).data


class ProductBriefSerializer(serializers.Serializer):
    name = serializers.CharField()
    gtin = serializers.CharField()


def _api_time(value):
    """A time as DRF's DateTimeField gives it: in the API's zone (the renderer writes it, "Z" for UTC)."""
    if value is None or not settings.USE_TZ:
        return value
    return value.astimezone(timezone.get_current_timezone())


def release_body(signature) -> dict | None:
    if signature is None:
        return None
    status = getattr(signature, "current_status", None)
    return {"signed_by": signature.printed_name, "signed_at": _api_time(signature.signed_at),
            "meaning": signature.meaning, "changed_after_signing": bool(status and status.changed_after_signing),
            "changed_fields": status.changed_fields if status else [],
            "checked_at": _api_time(status.checked_at) if status else None}


class LotSignoffBody(serializers.Serializer):
    """``release_body``: a sign-off of the lot (release, rejection, recall) and whether it changed since."""

    signed_by = serializers.CharField()
    signed_at = serializers.DateTimeField()
    meaning = serializers.CharField()
    changed_after_signing = serializers.BooleanField()
    changed_fields = serializers.ListField(child=serializers.CharField())
    checked_at = serializers.DateTimeField(
        allow_null=True, help_text="when the answer above was computed: on a list, the signature's stored check (any "
        "write to a record the signature covers makes it stale, and the list then computes it anew); null: "
        "computed from the records for this response")


class LotSerializer(serializers.Serializer):
    """The lot list item (also what the performance suite measures). ``context["releases"]`` maps lot pk to
    its release Signature, ``context["signoffs"]`` to every sign-off signature (release, rejection, recall), from
    ``selectors.lot_signoffs`` / ``lot_releases`` for the whole page."""

    lot_number = serializers.CharField()
    product = ProductBriefSerializer()
    status = serializers.CharField()
    on_hold = serializers.BooleanField()
    hold_reason = serializers.CharField()
    # null until the step that sets them: expiry at packaging, volume out at concentration, yield after it
    expiry = serializers.DateField(allow_null=True)
    volume_in_ml = serializers.DecimalField(max_digits=10, decimal_places=2)
    volume_out_ml = serializers.DecimalField(max_digits=10, decimal_places=2, allow_null=True)
    yield_percent = serializers.DecimalField(max_digits=6, decimal_places=2, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)
    vials = serializers.SerializerMethodField()
    release = serializers.SerializerMethodField()
    signoffs = serializers.SerializerMethodField()
    allowed_transitions = serializers.SerializerMethodField()

    def get_vials(self, lot) -> dict[str, int]:
        return vial_counts(lot)

    @extend_schema_field(LotSignoffBody(allow_null=True))
    def get_release(self, lot) -> dict | None:
        return release_body(self.context.get("releases", {}).get(lot.pk))

    @extend_schema_field(LotSignoffBody(many=True))
    def get_signoffs(self, lot) -> list[dict]:
        return [release_body(signature) for signature in self.context.get("signoffs", {}).get(lot.pk, [])]

    @extend_schema_field(serializers.ListField(
        child=serializers.ChoiceField(choices=LOT_STATUS_TARGETS)))
    def get_allowed_transitions(self, lot) -> list[str]:
        """The statuses a user may move the lot to from here by the pipeline (its guards may still refuse one)."""
        return LOT_PIPELINE.allowed_targets(lot.status, automatic=False)


def lot_list_items(rows: list[dict], *, signoffs: dict[int, list], releases: dict[int, object]) -> list[dict]:
    """``LotSerializer``'s payload for a page of ``selectors.lot_list_values`` rows without a serializer per row
    (the hot path of the lot list, B1). Formats as DRF's fields do (decimals quantized to 2 places as text,
    dates ISO, times in the API's zone with ``Z`` for UTC): the two agree item by item (tested)."""
    zone = serializers.DateTimeField().default_timezone()
    transitions: dict[str, list[str]] = {}
    statuses = m.VialStatus.values
    vial_keys = [(status, f"vials_{status}") for status in statuses]

    def decimal(value):
        # ".2f" rounds half-even to 2 places as quantize does, in one step (the columns hold 2 places anyway)
        return None if value is None else f"{value:.2f}"

    # Dates and times go to the renderer as objects: orjson writes them as DRF's fields would (ISO, "Z" for
    # UTC) in C, a third of the list's Python time when each was formatted here (B1).
    if zone is None or zone.utcoffset(None) == dt.timedelta(0):
        def time(value):
            return value
    else:
        def time(value):
            return None if value is None else value.astimezone(zone)

    items = []
    for row in rows:
        status, pk = row["status"], row["id"]
        if status not in transitions:
            transitions[status] = LOT_PIPELINE.allowed_targets(status, automatic=False)
        items.append({
            "lot_number": row["lot_number"],
            "product": {"name": row["product__name"], "gtin": row["product__gtin"]},
            "status": status, "on_hold": row["on_hold"], "hold_reason": row["hold_reason"],
            "expiry": row["expiry"],
            "volume_in_ml": decimal(row["volume_in_ml"]), "volume_out_ml": decimal(row["volume_out_ml"]),
            "yield_percent": decimal(row["yield_percent"]), "created_at": time(row["created_at"]),
            "vials": {status: row[key] for status, key in vial_keys},
            "release": release_body(releases.get(pk)) if releases else None,
            "signoffs": [release_body(signature) for signature in signoffs.get(pk, ())] if signoffs else [],
            "allowed_transitions": list(transitions[status]),
        })
    return items




# --- response bodies built by hand (the schema's; the functions above and the selectors build them) -------


class ProductLimitsBody(serializers.Serializer):
    """``product_limits_body``: the approved limits in force, their signature, and what waits for approval."""

    id = serializers.IntegerField()
    limits_version = serializers.IntegerField()
    limits_approved = serializers.DictField(help_text="limit -> value, as approved")
    limits_pending = serializers.DictField(child=serializers.ListField(), help_text="limit -> [in force, proposed]")
    limits_approval = SignatureManifestBody(allow_null=True)


class DonorEligibilityBody(serializers.Serializer):
    """``donor_eligibility_body``: the determination, by whom, why, on what evidence, and its signature."""

    code = serializers.CharField()
    eligibility_status = serializers.ChoiceField(choices=m.CellSource.Eligibility.choices)
    eligibility_determined_on = serializers.DateField(allow_null=True)
    eligibility_determined_by = serializers.CharField(allow_null=True)
    eligibility_reason = serializers.CharField()
    eligibility_evidence = serializers.CharField()
    eligibility_signature = SignatureManifestBody(allow_null=True)


class TraceDestinationBody(serializers.Serializer):
    """Where a vial went: its live shipment (what shipping registers with ``register_vial_destinations``)."""

    shipment = serializers.CharField(allow_null=True, help_text="the shipment's reference")
    sscc = serializers.CharField(allow_null=True)
    status = serializers.CharField(help_text="the shipment's status")
    consignee = serializers.CharField()
    country = serializers.CharField()
    shipped_at = serializers.DateTimeField(allow_null=True)
    received_at = serializers.DateTimeField(allow_null=True)


class TraceVialBody(serializers.Serializer):
    serial = serializers.CharField()
    status = serializers.ChoiceField(choices=m.VialStatus.choices)
    storage_location = serializers.CharField(allow_null=True, help_text="its location's code; null once gone")
    destinations = TraceDestinationBody(many=True)


class TraceDonorBody(serializers.Serializer):
    code = serializers.CharField()
    tissue = serializers.ChoiceField(choices=m.CellSource.Tissue.choices)
    eligibility = serializers.ChoiceField(choices=m.CellSource.Eligibility.choices)
    consent = serializers.ChoiceField(choices=m.CellSource.Consent.choices)


class UpstreamDonorBody(TraceDonorBody):
    eligible_with_consent = serializers.BooleanField()


class UpstreamBankBody(serializers.Serializer):
    code = serializers.CharField()
    kind = serializers.ChoiceField(choices=m.CellBank.Kind.choices)
    donor = serializers.CharField()
    passage_at_freeze = serializers.IntegerField()
    parent_bank = serializers.CharField(allow_null=True)
    identity_conforms = serializers.BooleanField(allow_null=True, help_text="null while a marker is missing")


class UpstreamCultureBody(serializers.Serializer):
    code = serializers.CharField()
    bank = serializers.CharField()
    status = serializers.ChoiceField(choices=m.Culture.Status.choices)
    started_at = serializers.DateTimeField()
    conditioning_started_at = serializers.DateTimeField(allow_null=True)


class UpstreamHarvestBody(serializers.Serializer):
    harvest = serializers.CharField()
    culture = serializers.CharField()
    collected_at = serializers.DateTimeField()
    harvest_volume_ml = DecimalText()
    volume_taken_ml = DecimalText(help_text="what the lot took of it")
    conditioning_hours = DecimalText(allow_null=True)
    performed_by = serializers.CharField(allow_null=True)
    verified_by = serializers.CharField(allow_null=True)


class TraceLotBody(serializers.Serializer):
    lot_number = serializers.CharField()
    product = serializers.CharField()
    gtin = serializers.CharField()
    status = serializers.ChoiceField(choices=m.LotStatus.choices)
    expiry = serializers.DateField(allow_null=True)


class VialTraceBody(serializers.Serializer):
    """``selectors.vial_trace``: vial → lot → harvests → cultures → bank → donor."""

    vial = TraceVialBody()
    lot = TraceLotBody()
    harvests = UpstreamHarvestBody(many=True)
    cultures = UpstreamCultureBody(many=True)
    banks = UpstreamBankBody(many=True)
    donors = UpstreamDonorBody(many=True)


class TraceBankBody(serializers.Serializer):
    code = serializers.CharField()
    kind = serializers.ChoiceField(choices=m.CellBank.Kind.choices)
    passage_at_freeze = serializers.IntegerField()


class TraceDonorLotBody(serializers.Serializer):
    lot_number = serializers.CharField()
    product = serializers.CharField()
    status = serializers.ChoiceField(choices=m.LotStatus.choices)
    on_hold = serializers.BooleanField()
    expiry = serializers.DateField(allow_null=True)
    volume_from_donor_ml = DecimalText()
    cultures = serializers.ListField(child=serializers.CharField())
    vials = serializers.DictField(child=serializers.IntegerField(), help_text="vial status -> count")


class TraceDonorVialBody(serializers.Serializer):
    serial = serializers.CharField()
    lot_number = serializers.CharField()
    status = serializers.ChoiceField(choices=m.VialStatus.choices)
    destinations = TraceDestinationBody(many=True)


class DonorTraceBody(serializers.Serializer):
    """``selectors.donor_trace``: donor → banks → lots → vials and where they went; the first ``rows_shown``
    lots and vials, the totals and every consignee."""

    donor = TraceDonorBody()
    banks = TraceBankBody(many=True)
    lots = TraceDonorLotBody(many=True)
    lot_count = serializers.IntegerField()
    vials = TraceDonorVialBody(many=True)
    vial_count = serializers.IntegerField()
    rows_shown = serializers.IntegerField()
    consignees = serializers.ListField(child=serializers.CharField(), help_text="every consignee's name")


def _decimal(**kwargs) -> DecimalText:
    return DecimalText(allow_null=True, **kwargs)


def _person_field() -> serializers.CharField:
    return serializers.CharField(allow_null=True, help_text="full name (or user name); null until someone did it")


class GenealogyProcessingBody(serializers.Serializer):
    """The lot's own steps; null until the step is recorded."""

    volume_in_ml = _decimal()
    pooled_by = _person_field()
    pool_verified_by = _person_field()
    filter_pore_size_um = _decimal()
    integrity_test_method = serializers.CharField(allow_null=True)
    integrity_test_passed = serializers.BooleanField(allow_null=True)
    volume_filtered_ml = _decimal()
    filtration_performed_by = _person_field()
    filtration_verified_by = _person_field()
    concentration_cutoff_kda = _decimal()
    concentration_factor = _decimal()
    volume_out_ml = _decimal()
    yield_percent = _decimal()
    concentration_performed_by = _person_field()
    concentration_verified_by = _person_field()


class GenealogyPhaseBody(serializers.Serializer):
    phase = serializers.CharField()
    shelf_temperature_setpoint_c = _decimal()
    shelf_temperature_actual_c = _decimal()
    chamber_pressure_setpoint_mbar = _decimal()
    chamber_pressure_actual_mbar = _decimal()
    duration_minutes = serializers.IntegerField(allow_null=True)


class GenealogyFreezeDryingBody(serializers.Serializer):
    run_number = serializers.CharField()
    dryer = serializers.CharField()
    recipe = serializers.CharField(help_text="recipe and version")
    vials_loaded = serializers.IntegerField(allow_null=True)
    fill_volume_ml = _decimal()
    completed = serializers.BooleanField()
    started_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    end_of_primary_drying = serializers.CharField(allow_null=True)
    stoppering = serializers.CharField(allow_null=True)
    alarm_count = serializers.IntegerField(allow_null=True)
    performed_by = _person_field()
    verified_by = _person_field()
    phases = GenealogyPhaseBody(many=True)


class GenealogyPackagingBody(serializers.Serializer):
    run_number = serializers.CharField()
    vials_loaded = serializers.IntegerField(allow_null=True, help_text="null without a freeze-drying run")
    vials_packaged = serializers.IntegerField()
    vials_rejected = serializers.IntegerField()
    vials_unaccounted = serializers.IntegerField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    storage_location = serializers.CharField(allow_null=True)
    performed_by = _person_field()
    verified_by = _person_field()


class GenealogyBody(serializers.Serializer):
    """``selectors.lot_genealogy``: donor → bank → cultures → harvests → lot → runs → vials."""

    donors = UpstreamDonorBody(many=True)
    banks = UpstreamBankBody(many=True)
    cultures = UpstreamCultureBody(many=True)
    harvests = UpstreamHarvestBody(many=True)
    processing = GenealogyProcessingBody()
    freeze_drying = GenealogyFreezeDryingBody(allow_null=True)
    packaging = GenealogyPackagingBody(allow_null=True)
    vials = serializers.DictField(child=serializers.IntegerField(), help_text="vial status -> count")



class LotDetailSerializer(LotSerializer):
    genealogy = serializers.SerializerMethodField()

    @extend_schema_field(GenealogyBody())
    def get_genealogy(self, lot) -> dict:
        return decimals_as_text(lot_genealogy(lot))
