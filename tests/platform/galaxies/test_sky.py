"""Cone search: HEALPix pixel-range pre-selection plus exact separation must find exactly the
galaxies brute force finds, including around the poles and across RA = 0/360."""

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord

from galaxies.models import Galaxy
from galaxies.selectors import cone_search
from galaxies.sky import (
    STORED_ORDER,
    angular_separation_deg,
    cone_pixel_ranges,
    healpix_pixels,
    query_order,
)
from tests.platform.factories import GalaxyFactory


def random_sky(rng, n):
    """Uniform on the sphere."""
    return rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))


def test_haversine_matches_astropy():
    rng = np.random.default_rng(1)
    ra1, dec1 = random_sky(rng, 500)
    ra2, dec2 = random_sky(rng, 500)
    expected = SkyCoord(ra1, dec1, unit="deg").separation(SkyCoord(ra2, dec2, unit="deg")).deg
    np.testing.assert_allclose(angular_separation_deg(ra1, dec1, ra2, dec2), expected, atol=1e-9)


@pytest.mark.parametrize("ra, dec, radius", [
    (0.0, 0.0, 1.0), (359.99, 10.0, 2.0), (0.01, -30.0, 0.5), (123.0, 89.9, 3.0), (240.0, -89.5, 2.0),
    (45.0, 90.0, 1.0), (200.0, 45.0, 1 / 60), (10.0, 20.0, 10.0)])
def test_pixel_ranges_cover_every_point_in_the_cone(ra, dec, radius):
    rng = np.random.default_rng(7)
    # Points concentrated around the centre so the cone's edge is well sampled.
    centre = SkyCoord(ra, dec, unit="deg")
    offsets = centre.directional_offset_by(rng.uniform(0, 360, 20000) * u.deg, rng.uniform(0, radius * 1.5, 20000) * u.deg)
    pras, pdecs = offsets.ra.deg, offsets.dec.deg
    inside = angular_separation_deg(ra, dec, pras, pdecs) <= radius
    pixels = healpix_pixels(pras[inside], pdecs[inside])
    ranges = np.asarray(cone_pixel_ranges(ra, dec, radius))
    covered = ((pixels[:, None] >= ranges[:, 0]) & (pixels[:, None] <= ranges[:, 1])).any(axis=1)
    assert covered.all()
    assert len(ranges) <= 16


def test_query_order_is_coarser_for_wider_cones():
    assert query_order(1 / 60) > query_order(1.0) > query_order(30.0)
    assert query_order(1e-6) == STORED_ORDER


@pytest.mark.django_db
def test_cone_search_equals_brute_force_on_random_galaxies():
    rng = np.random.default_rng(3)
    ras, decs = random_sky(rng, 1500)
    # Crowd the poles and the RA wrap, where pixel geometry is hardest.
    ras = np.concatenate([ras, rng.uniform(0, 360, 150), rng.uniform(0, 360, 150), rng.uniform(-1.5, 1.5, 200) % 360])
    decs = np.concatenate([decs, rng.uniform(87, 90, 150), rng.uniform(-90, -87, 150), rng.uniform(-2, 2, 200)])
    ras = np.where(ras >= 360, 0.0, ras)
    Galaxy.objects.bulk_create([Galaxy(id_str=f"R{i}", ra=float(r), dec=float(d), image="x.png")
                                for i, (r, d) in enumerate(zip(ras, decs))])
    ids = np.asarray(Galaxy.objects.order_by("id").values_list("id", flat=True))
    assert not Galaxy.objects.filter(healpix__isnull=True).exists()
    cones = [(0.0, 0.0, 1.5), (359.5, 0.5, 1.5), (0.3, -1.0, 0.8), (17.0, 89.0, 2.5), (300.0, -88.5, 2.0),
             (0.0, 90.0, 1.0), (0.0, -90.0, 3.0), *[(float(r), float(d), float(rad)) for r, d, rad in zip(
                 rng.uniform(0, 360, 12), np.degrees(np.arcsin(rng.uniform(-1, 1, 12))), rng.uniform(0.5, 10, 12))]]
    for ra, dec, radius in cones:
        separations = angular_separation_deg(ra, dec, ras, decs)
        expected = set(ids[separations <= radius].tolist())
        found = cone_search(ra=ra, dec=dec, radius_deg=radius)
        assert {gid for gid, _ in found} == expected, (ra, dec, radius)
        assert [s for _, s in found] == sorted(s for _, s in found)


@pytest.mark.django_db
def test_pixel_follows_the_coordinates_on_save_and_bulk_update():
    galaxy = GalaxyFactory(ra=10.0, dec=10.0)
    assert galaxy.healpix == int(healpix_pixels([10.0], [10.0])[0])
    galaxy.ra, galaxy.dec = 200.0, -45.0
    Galaxy.objects.bulk_update([galaxy], ["ra", "dec"])
    galaxy.refresh_from_db()
    assert galaxy.healpix == int(healpix_pixels([200.0], [-45.0])[0])
    galaxy.dec = 60.0
    galaxy.save(update_fields=["dec"])
    galaxy.refresh_from_db()
    assert galaxy.healpix == int(healpix_pixels([200.0], [60.0])[0])
