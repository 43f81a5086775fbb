"""Rule 1 and the record rules: order of steps, limits, impossible quantities, pooling volumes (and their race
on two PostgreSQL connections), second-person verification, void instead of delete."""

import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from batches.models import CellSource, CMLot, Culture, Harvest, HarvestContribution, LotStatus, Passage, Product
from batches.services import cultures, lots, products, records
from cmlims.audit import UnauditedWrite, audited_create
from cmlims.exceptions import Conflict, InvalidInput
from cmlims.models import AuditEntry
from tests.support.builders import (
    LATE,
    make_bank,
    make_conditioning_culture,
    make_donor,
    make_harvest,
    make_product,
    pool,
    t,
)
from tests.support.races import race

D = Decimal


def _fields(exc) -> dict:
    return exc.value.extra["fields"]


@pytest.mark.django_db
class TestImpossibleQuantities:
    @pytest.mark.req("README-REFUSALS")
    def test_negative_volume_names_the_field(self, chain):
        with pytest.raises(InvalidInput) as err:
            make_harvest(chain.lab1, chain.culture, volume_ml=D("-1"))
        assert "volume_ml" in _fields(err)

    def test_viability_over_100_percent(self, chain):
        active = cultures.culture_create(actor=chain.lab1, product=chain.product, bank=chain.bank, code="CU-V",
                                         started_at=t(10), vessel="T175", medium_lot="M", reason=LATE)
        with pytest.raises(InvalidInput) as err:
            cultures.passage_record(culture=active, actor=chain.lab1, passage_number=3, seeded_at=t(9),
                                    harvested_at=t(5), cells_seeded=1_000_000, cells_harvested=4_000_000,
                                    viability_percent=D("101"), confluence_percent=D("80"), reason=LATE)
        assert "viability_percent" in _fields(err)

    @pytest.mark.req("README-REFUSALS")
    def test_end_before_start(self, chain):
        with pytest.raises(InvalidInput) as err:
            cultures.harvest_record(culture=chain.culture, actor=chain.lab1, conditioning_started_at=t(1),
                                    conditioning_ended_at=t(2), volume_ml=D("10"), hold_temperature_c=D("4"),
                                    reason=LATE)
        assert "conditioning_ended_at" in _fields(err)

    def test_completed_step_in_the_future(self, chain):
        future = timezone.now() + timedelta(days=2)
        with pytest.raises(InvalidInput) as err:
            cultures.harvest_record(culture=chain.culture, actor=chain.lab1, conditioning_started_at=t(0),
                                    conditioning_ended_at=future, volume_ml=D("10"), hold_temperature_c=D("4"),
                                    reason=LATE)
        assert "conditioning_ended_at" in _fields(err)

    def test_gtin_check_digit(self, lab1):
        with pytest.raises(InvalidInput) as err:
            make_product(lab1, gtin="09506000134353")
        assert "gtin" in _fields(err)
        assert make_product(lab1, gtin="9506000134352").gtin == "09506000134352"  # stored as GTIN-14

    def test_conditioning_outside_the_product_window(self, chain):
        with pytest.raises(InvalidInput) as err:
            cultures.harvest_record(culture=chain.culture, actor=chain.lab1, conditioning_started_at=t(4),
                                    conditioning_ended_at=t(1), volume_ml=D("10"), hold_temperature_c=D("4"),
                                    reason=LATE)
        assert "conditioning_ended_at" in _fields(err) and "72" in str(err.value)


@pytest.mark.django_db
class TestLimits:
    def _active(self, chain):
        return cultures.culture_create(actor=chain.lab1, product=chain.product, bank=chain.bank, code="CU-L",
                                       started_at=t(15), vessel="T175", medium_lot="M", reason=LATE)

    @pytest.mark.req("RULE-1")
    def test_passage_over_the_product_limit(self, chain):
        culture = self._active(chain)
        with pytest.raises(InvalidInput) as err:
            cultures.passage_record(culture=culture, actor=chain.lab1, passage_number=6, seeded_at=t(14),
                                    harvested_at=t(10), cells_seeded=1_000_000, cells_harvested=2_000_000,
                                    viability_percent=D("90"), confluence_percent=D("80"), reason=LATE)
        assert "passage_number" in _fields(err) and "P5" in str(err.value)

    @pytest.mark.req("RULE-1")
    def test_cumulative_population_doublings_over_the_limit(self, chain):
        culture = self._active(chain)
        first = cultures.passage_record(culture=culture, actor=chain.lab1, passage_number=3, seeded_at=t(14),
                                        harvested_at=t(10), cells_seeded=1_000, cells_harvested=4_096_000,
                                        viability_percent=D("90"), confluence_percent=D("80"), reason=LATE)
        assert first.population_doublings == D("12.00") and first.cumulative_population_doublings == D("12.00")
        with pytest.raises(InvalidInput) as err:  # 12 + 9 = 21 > 20
            cultures.passage_record(culture=culture, actor=chain.lab1, passage_number=4, seeded_at=t(9),
                                    harvested_at=t(5), cells_seeded=1_000, cells_harvested=512_000,
                                    viability_percent=D("90"), confluence_percent=D("80"), reason=LATE)
        assert "population_doublings" in _fields(err)
        assert Passage.objects.filter(culture=culture).count() == 1

    def test_passages_go_forward(self, chain):
        culture = self._active(chain)
        with pytest.raises(InvalidInput) as err:  # the bank was frozen at P2
            cultures.passage_record(culture=culture, actor=chain.lab1, passage_number=2, seeded_at=t(14),
                                    harvested_at=t(10), cells_seeded=1_000, cells_harvested=4_000,
                                    viability_percent=D("90"), confluence_percent=D("80"), reason=LATE)
        assert "passage_number" in _fields(err)


@pytest.mark.django_db
class TestOrder:
    @pytest.mark.req("RULE-1", "P11-11.10f")
    def test_harvest_needs_a_culture_in_conditioning(self, chain):
        active = cultures.culture_create(actor=chain.lab1, product=chain.product, bank=chain.bank, code="CU-A",
                                         started_at=t(10), vessel="T175", medium_lot="M", reason=LATE)
        with pytest.raises(Conflict) as err:
            make_harvest(chain.lab1, active)
        assert err.value.code == "wrong_order"

    def test_concentration_needs_filtration(self, chain):
        lot = pool(chain, [(make_harvest(chain.lab1, chain.culture, volume_ml=D("50")), D("50"))])
        with pytest.raises(Conflict) as err:
            lots.lot_record_concentration(lot=lot, actor=chain.lab1, concentration_cutoff_kda=D("3"),
                                          concentration_factor=D("5"), volume_out_ml=D("9"), reason=LATE)
        assert err.value.code == "wrong_order"

    def test_failed_integrity_test_blocks_freeze_drying(self, chain):
        lot = pool(chain, [(make_harvest(chain.lab1, chain.culture, volume_ml=D("50")), D("50"))])
        lot = lots.lot_record_filtration(
            lot=lot, actor=chain.lab1, filter_pore_size_um=D("0.22"), filter_lot="F", filtered_at=t(1, 1),
            integrity_test_method="bubble_point", integrity_test_limit_bar=D("3.2"),
            integrity_test_measured_bar=D("2.1"), volume_filtered_ml=D("49"), reason=LATE)
        assert lot.integrity_test_passed is False
        with pytest.raises(Conflict) as err:
            lots.lot_transition(lot=lot, to=LotStatus.FREEZE_DRYING, actor=chain.lab1)
        assert "filter_integrity_failed" in {c["code"] for c in err.value.extra["conditions"]}

    @pytest.mark.req("README-SECOND-PERSON")
    def test_the_performer_cannot_verify(self, chain):
        harvest = make_harvest(chain.lab1, chain.culture)
        with pytest.raises(Conflict) as err:
            records.step_verify(record=harvest, actor=chain.lab1)
        assert err.value.code == "same_person"
        assert records.step_verify(record=harvest, actor=chain.lab2).verified_by == chain.lab2

    @pytest.mark.req("1271-290")
    def test_lot_numbers_follow_site_year_sequence(self, chain, settings):
        settings.CMLIMS_SITE_PREFIX = "XY"
        pooled_at = t(1)  # the number carries the pooling year, which is not today's on 1 January
        a = pool(chain, [(make_harvest(chain.lab1, chain.culture, volume_ml=D("20")), D("20"))], pooled_at=pooled_at)
        b = pool(chain, [(make_harvest(chain.lab1, chain.culture, volume_ml=D("20")), D("20"))], pooled_at=pooled_at)
        yy = f"{pooled_at.year % 100:02d}"
        assert (a.lot_number, b.lot_number) == (f"XY{yy}-0001", f"XY{yy}-0002")

    def test_a_year_end_starts_a_new_lot_number_series_by_the_pooling_time(self, settings):
        settings.CMLIMS_SITE_PREFIX = "XY"
        last_second, new_year = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
        with transaction.atomic():
            numbers = [lots.lot_number_next(when=when) for when in (last_second, new_year, last_second, new_year)]
        assert numbers == ["XY26-0001", "XY27-0001", "XY26-0002", "XY27-0002"]


@pytest.mark.django_db
class TestPooling:
    @pytest.mark.req("RULE-1")
    def test_a_harvest_feeds_several_lots_but_never_more_than_it_holds(self, chain):
        harvest = make_harvest(chain.lab1, chain.culture, volume_ml=D("100"))
        pool(chain, [(harvest, D("70"))])
        pool(chain, [(harvest, D("30"))])
        with pytest.raises(InvalidInput) as err:
            pool(chain, [(harvest, D("0.01"))])
        assert "contributions[0].volume_ml" in _fields(err)
        assert lots.harvest_volume_taken_ml(harvest) == D("100")

    @pytest.mark.req("RULE-1")
    def test_a_harvest_joins_a_lot_once(self, chain):
        harvest = make_harvest(chain.lab1, chain.culture, volume_ml=D("100"))
        with pytest.raises(InvalidInput) as err:
            pool(chain, [(harvest, D("10")), (harvest, D("10"))])
        assert "contributions[1].harvest" in _fields(err)
        lot = pool(chain, [(harvest, D("10"))])
        with pytest.raises(InvalidInput):
            lots.lot_contribution_add(lot=lot, harvest_id=harvest.pk, volume_ml=D("5"), actor=chain.lab1)

    def test_harvests_of_another_product_are_refused(self, chain):
        other = make_product(chain.lab1, name="Other CM", gtin="09506000134369")
        culture = make_conditioning_culture(chain.lab1, other, chain.bank, code="CU-O")
        harvest = make_harvest(chain.lab1, culture)
        with pytest.raises(InvalidInput) as err:
            pool(chain, [(harvest, D("10"))])
        assert "contributions[0].harvest" in _fields(err)

    def test_voiding_a_pooled_lot_frees_its_volume(self, chain):
        harvest = make_harvest(chain.lab1, chain.culture, volume_ml=D("100"))
        lot = pool(chain, [(harvest, D("100"))])
        with pytest.raises(InvalidInput):
            lots.lot_void(lot=lot, actor=chain.lab1, reason="")
        lots.lot_void(lot=lot, actor=chain.lab1, reason="pooled the wrong harvest")
        assert CMLot.objects.filter(pk=lot.pk, voided_at__isnull=False).exists()
        assert pool(chain, [(harvest, D("100"))]).volume_in_ml == D("100")


@pytest.mark.django_db
class TestVoidNotDelete:
    @pytest.mark.req("README-NO-DELETE")
    def test_delete_raises_and_void_keeps_the_record(self, chain):
        harvest = make_harvest(chain.lab1, chain.culture)
        with pytest.raises(UnauditedWrite):
            harvest.delete()
        with pytest.raises(UnauditedWrite):
            Harvest.objects.filter(pk=harvest.pk).delete()
        records.record_void(record=harvest, actor=chain.lab1, reason="entered twice")
        harvest.refresh_from_db()
        assert harvest.is_voided and harvest.void_reason == "entered twice"
        assert AuditEntry.objects.filter(object_type="batches.harvest", object_id=str(harvest.pk),
                                         action="voided").exists()

    @pytest.mark.req("README-NO-DELETE")
    def test_a_pooled_harvest_cannot_be_voided(self, chain):
        harvest = make_harvest(chain.lab1, chain.culture, volume_ml=D("100"))
        pool(chain, [(harvest, D("10"))])
        with pytest.raises(Conflict) as err:
            records.record_void(record=harvest, actor=chain.lab1, reason="oops")
        assert err.value.code == "in_use"

    def test_voided_harvest_cannot_be_pooled(self, chain):
        harvest = make_harvest(chain.lab1, chain.culture, volume_ml=D("100"))
        records.record_void(record=harvest, actor=chain.lab1, reason="contaminated container")
        with pytest.raises(InvalidInput):
            pool(chain, [(harvest, D("10"))])

    def test_a_lot_past_pooling_cannot_be_voided(self, chain):
        from tests.support.builders import lot_at

        lot = lot_at(chain, LotStatus.FREEZE_DRYING)
        with pytest.raises(Conflict):
            lots.lot_void(lot=lot, actor=chain.lab1, reason="no")


@pytest.mark.django_db(transaction=True)
@pytest.mark.req("RULE-10", "RULE-1")
def test_two_lots_pooling_the_last_millilitres_at_once(require_postgres, make_user):
    """Two threads, each with its own PostgreSQL connection, pool the last 60 mL of the same harvests at once:
    for each harvest exactly one succeeds, and the volumes taken never exceed what it holds."""
    from cmlims import roles

    lab1 = make_user("lab1", roles.LAB_STAFF)
    product = make_product(lab1)
    bank = make_bank(lab1, make_donor(lab1))
    culture = make_conditioning_culture(lab1, product, bank)
    rounds = 4
    harvests = []
    for _ in range(rounds):
        harvest = make_harvest(lab1, culture, volume_ml=D("100"))
        lots.lot_pool(product=product, actor=lab1, pooled_at=t(1),
                      contributions=[lots.Contribution(harvest.pk, D("40"))], reason=LATE)
        harvests.append(harvest)
    outcomes: dict[str, list] = {"a": [], "b": []}

    def take_60(harvest):
        def call():
            try:
                lot = lots.lot_pool(product=product, actor=lab1, pooled_at=t(1),
                                    contributions=[lots.Contribution(harvest.pk, D("60"))], reason=LATE)
                return ("ok", lot.lot_number)
            except InvalidInput as exc:
                return ("refused", exc.extra["fields"])
        return call

    for harvest in harvests:  # one race per harvest: both racers released together each round
        a, b = race(take_60(harvest), take_60(harvest))
        outcomes["a"].append(a)
        outcomes["b"].append(b)
    for i in range(rounds):
        pair = {outcomes["a"][i][0], outcomes["b"][i][0]}
        assert pair == {"ok", "refused"}, (i, outcomes)
    for harvest in harvests:
        assert lots.harvest_volume_taken_ml(harvest) == D("100")
        assert HarvestContribution.objects.filter(harvest=harvest).count() == 2
    numbers = list(CMLot.objects.values_list("lot_number", flat=True))
    assert len(numbers) == len(set(numbers)) == 2 * rounds
    assert Culture.objects.get(pk=culture.pk).status == Culture.Status.CONDITIONING


@pytest.mark.django_db
class TestDuplicateCodes:
    @pytest.mark.req("README-REFUSALS")
    def test_a_duplicate_donor_code_names_the_field(self, lab1):
        make_donor(lab1, code="DN-0042")
        with pytest.raises(InvalidInput) as exc:
            make_donor(lab1, code="DN-0042")
        assert "code" in _fields(exc)
        assert CellSource.objects.filter(code="DN-0042").count() == 1

    def test_the_database_refusal_is_a_400_naming_the_field(self, lab1):
        """The path a race takes: the uniqueness check passed, the database's constraint refuses the insert."""
        make_product(lab1)
        with pytest.raises(InvalidInput) as exc:
            audited_create(Product, actor=lab1, clean=False, **{
                f.name: getattr(Product.objects.get(), f.name) for f in Product._meta.concrete_fields
                if not f.primary_key
            })
        assert set(_fields(exc)) == {"name"} or set(_fields(exc)) == {"gtin"}, _fields(exc)
        assert "already exists" in exc.value.message
        # the surrounding transaction is still usable and nothing was written or audited for the refusal
        assert Product.objects.count() == 1
        # created, then its limits approved by the builders' QC officer; nothing for the refusal
        assert AuditEntry.objects.filter(object_type="batches.product").count() == 2

    @pytest.mark.req("README-REFUSALS", "README-API-ERRORS")
    def test_the_api_answers_400_for_a_duplicate_product(self, lab1, client):
        make_product(lab1)
        client.force_login(lab1)
        product = Product.objects.get()
        body = {f: str(getattr(product, f)) for f in products.PRODUCT_FIELDS}
        response = client.post("/api/v1/products/", body, content_type="application/json")
        assert response.status_code == 400, response.content
        assert response.json()["code"] == "invalid"
        assert {"name", "gtin"} & set(response.json()["fields"])


@pytest.mark.django_db(transaction=True)
@pytest.mark.req("README-REFUSALS")
def test_two_donors_with_one_code_at_once(require_postgres, make_user):
    """Two PostgreSQL connections create the same donor code: the first holds its transaction open after the
    insert, so the second's uniqueness check cannot see it and the unique index refuses its insert. The loser
    gets 400 naming ``code`` (not a 500), whichever check caught it."""
    from cmlims import roles

    lab1 = make_user("lab1", roles.LAB_STAFF)
    inserted = threading.Event()

    def first():
        try:
            with transaction.atomic():
                make_donor(lab1, code="DN-RACE")
                inserted.set()
                time.sleep(1)  # ordering only: lets the second insert block on our uncommitted row
            return "ok"
        except InvalidInput as exc:
            return exc.extra["fields"]
        finally:
            inserted.set()

    def second():
        try:
            inserted.wait(timeout=30)
            make_donor(lab1, code="DN-RACE")
            return "ok"
        except InvalidInput as exc:
            return exc.extra["fields"]

    outcomes = dict(zip(("first", "second"), race(first, second, timeout=60), strict=True))
    assert outcomes["first"] == "ok", outcomes
    assert "code" in outcomes["second"], outcomes
    assert CellSource.objects.filter(code="DN-RACE").count() == 1
