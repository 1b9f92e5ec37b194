from django.db import migrations, models


def fill_pixels(apps, schema_editor):
    from galaxies.sky import healpix_pixels

    Galaxy = apps.get_model("galaxies", "Galaxy")
    last = 0
    while True:
        batch = list(Galaxy.objects.filter(id__gt=last).order_by("id").only("id", "ra", "dec")[:5000])
        if not batch:
            return
        for galaxy, pixel in zip(batch, healpix_pixels([g.ra for g in batch], [g.dec for g in batch])):
            galaxy.healpix = int(pixel)
        Galaxy.objects.bulk_update(batch, ["healpix"])
        last = batch[-1].id


class Migration(migrations.Migration):
    dependencies = [("galaxies", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="galaxy", name="healpix",
            field=models.BigIntegerField(db_index=True, editable=False, null=True,
                                         help_text="Nested HEALPix pixel at galaxies.sky.STORED_ORDER (cone search).")),
        migrations.RunPython(fill_pixels, migrations.RunPython.noop),
    ]
