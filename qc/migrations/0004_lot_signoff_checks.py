"""A stored check for every lot sign-off signature made before checks were stored, marked stale: the
refresh task computes each answer (until then list pages check those signatures from their records)."""

from django.db import migrations


def lot_signoff_checks_create(apps, schema_editor):
    Signature = apps.get_model("esign", "Signature")
    SignatureCheck = apps.get_model("esign", "SignatureCheck")
    existing = set(SignatureCheck.objects.values_list("signature_id", flat=True))
    rows = [
        SignatureCheck(signature_id=pk, subject_id=object_id, scope="lot-signoff/", stale=True)
        for pk, object_id in Signature.objects.filter(field_list_version__startswith="lot-signoff/")
        .values_list("pk", "object_id").iterator()
        if pk not in existing
    ]
    SignatureCheck.objects.bulk_create(rows, batch_size=2000)


class Migration(migrations.Migration):
    dependencies = [
        ("qc", "0003_qc_start_page_indexes"),
        ("esign", "0007_signature_check"),
    ]

    operations = [migrations.RunPython(lot_signoff_checks_create, migrations.RunPython.noop)]
