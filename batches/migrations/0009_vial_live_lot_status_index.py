# The vials' (lot, status) index covers live vials only: an index-only count of a donor's every vial (B8b).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('batches', '0008_qc_start_page_indexes'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='vial',
            name='batches_vial_lot_status',
        ),
        migrations.AddIndex(
            model_name='vial',
            index=models.Index(condition=models.Q(('voided_at__isnull', True)), fields=['lot', 'status'], name='batches_vial_live_lot_status'),
        ),
    ]
