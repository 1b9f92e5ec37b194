from django.db import migrations


def create_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.get_or_create(name="scientist")


def delete_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name="scientist").delete()


class Migration(migrations.Migration):
    dependencies = [("auth", "0012_alter_user_first_name_max_length"), ("review", "0001_initial")]

    operations = [migrations.RunPython(create_group, delete_group)]
