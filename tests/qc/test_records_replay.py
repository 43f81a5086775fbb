"""``verify_audit --records`` (issue 13 item 9): the trail replayed matches every audited table's rows, and a
direct SQL edit of a lot or a result shows as a mismatch naming table, row and field."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from cmlims.replay import records_verify
from tests.support.builders import enter, lot_release
from tests.support.tamper import tamper

pytestmark = pytest.mark.django_db


@pytest.mark.req("README-REC-REPLAY", "P11-11.10e")
def test_a_direct_sql_edit_of_a_lot_and_a_result_is_named_by_table_row_and_field(releasable, chain, capsys):
    lot = lot_release(releasable, officer=chain.qc)
    compared, mismatches = records_verify()
    assert [str(m) for m in mismatches] == [] and compared > 50  # a whole released lot replays clean
    call_command("verify_audit", records=True)
    assert "Records match the audit trail" in capsys.readouterr().out

    from qc.models import QCResult

    result = QCResult.objects.filter(lot=lot).order_by("pk").first()
    tamper("UPDATE batches_cmlot SET expiry = '2099-01-01' WHERE id = %s", [lot.pk])
    tamper("UPDATE qc_qcresult SET value_entered = '9999' WHERE id = %s", [result.pk])
    _, mismatches = records_verify()
    named = {(m.table, m.row, m.field) for m in mismatches}
    assert named == {("batches_cmlot", str(lot.pk), "expiry"), ("qc_qcresult", str(result.pk), "value_entered")}
    with pytest.raises(CommandError, match="Records do NOT match"):
        call_command("verify_audit", records=True)
    err = capsys.readouterr().err
    assert f"batches_cmlot row {lot.pk} field expiry: the audit trail says" in err
    assert "the table holds '9999'" in err


@pytest.mark.req("README-REC-REPLAY")
def test_a_row_whose_entries_were_removed_is_named(packaged, chain):
    from cmlims.models import AuditEntry

    result = enter(packaged, "VEGF", "711", "pg/mL", analyst=chain.lab1)
    tamper("DELETE FROM cmlims_auditentry WHERE object_type = 'qc.qcresult' AND object_id = %s", [str(result.pk)])
    _, mismatches = records_verify()
    assert [(m.table, m.row, m.field) for m in mismatches] == [("qc_qcresult", str(result.pk), "(row)")]
    assert not AuditEntry.objects.filter(object_type="qc.qcresult", object_id=str(result.pk)).exists()
