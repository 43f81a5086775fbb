"""Create the four role groups. Their permissions are synced from each app's ``role_permissions``
after every migrate (cmlims.roles.sync_role_permissions), so later models only add codenames."""

from django.db import migrations

ROLES = ("Lab staff", "QC officer", "Shipping coordinator", "Integration")


def create_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ROLES:
        Group.objects.using(schema_editor.connection.alias).get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [
        ("cmlims", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(create_groups, migrations.RunPython.noop)]
