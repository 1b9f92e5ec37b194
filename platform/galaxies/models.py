"""Galaxies are the subjects volunteers classify."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from .sky import healpix_pixel, healpix_pixels


class GalaxyQuerySet(models.QuerySet):
    """Bulk writes skip save(), so they fill the HEALPix pixel themselves."""

    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        _set_pixels(objs)
        return super().bulk_create(objs, *args, **kwargs)

    def bulk_update(self, objs, fields, *args, **kwargs):
        objs, fields = list(objs), list(fields)
        if {"ra", "dec"} & set(fields):
            _set_pixels(objs)
            fields = [*fields, "healpix"] if "healpix" not in fields else fields
        return super().bulk_update(objs, fields, *args, **kwargs)


def _set_pixels(galaxies) -> None:
    if galaxies:
        for galaxy, pixel in zip(galaxies, healpix_pixels([g.ra for g in galaxies], [g.dec for g in galaxies])):
            galaxy.healpix = int(pixel)


class Galaxy(models.Model):
    id_str = models.CharField(max_length=100, unique=True,
                              help_text="Stable external identifier, e.g. an IAU name.")
    ra = models.FloatField(validators=[MinValueValidator(0.0), MaxValueValidator(360.0)],
                           help_text="Right ascension, degrees [0, 360).")
    dec = models.FloatField(validators=[MinValueValidator(-90.0), MaxValueValidator(90.0)],
                            help_text="Declination, degrees [-90, 90].")
    survey = models.CharField(max_length=100, blank=True)
    pixel_scale = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.0)],
                                    help_text="Arcseconds per pixel of the display image.")
    image = models.ImageField(upload_to="galaxies/", help_text="Display image (JPEG/PNG).")
    fits_source = models.FileField(upload_to="fits/", blank=True, help_text="Optional FITS cutout.")
    metadata = models.JSONField(default=dict, blank=True)
    is_simulated = models.BooleanField(default=False, help_text="Simulated (demo) galaxy, not a real one.")
    healpix = models.BigIntegerField(null=True, editable=False, db_index=True,
                                     help_text="Nested HEALPix pixel at galaxies.sky.STORED_ORDER (cone search).")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = GalaxyQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "galaxies"
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(ra__gte=0) & models.Q(ra__lt=360), name="galaxy_ra_range"),
            models.CheckConstraint(condition=models.Q(dec__gte=-90) & models.Q(dec__lte=90), name="galaxy_dec_range"),
        ]

    def __str__(self) -> str:
        return self.id_str

    def save(self, *args, **kwargs):
        self.healpix = healpix_pixel(self.ra, self.dec)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and {"ra", "dec"} & set(update_fields):
            kwargs["update_fields"] = {*update_fields, "healpix"}
        super().save(*args, **kwargs)
