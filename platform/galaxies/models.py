"""Galaxies are the subjects volunteers classify."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


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
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "galaxies"
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(ra__gte=0) & models.Q(ra__lt=360), name="galaxy_ra_range"),
            models.CheckConstraint(condition=models.Q(dec__gte=-90) & models.Q(dec__lte=90), name="galaxy_dec_range"),
        ]

    def __str__(self) -> str:
        return self.id_str
