"""Demo galaxies that need nothing outside the installed packages.

* Real galaxies cut out of the Hubble eXtreme Deep Field colour image that scikit-image ships
  (``skimage.data.hubble_deep_field()``, read from the package, no download).
* Simulated galaxies (Sérsic bulge + exponential disk, optional bar and logarithmic spiral arms)
  rendered with numpy, with their parameters and the answers they imply in each shipped tree
  stored in ``metadata`` so simulated volunteers can answer from the truth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from classifier.simulation import appearance_from_metadata, expected_path
from classifier.tree import DecisionTree
from workflows.shipped import SHIPPED_WORKFLOWS

CUTOUT_PX = 256

# skimage's "hubble_deep_field" is HubbleSite release 2012-37 (the XDF, inside the Hubble Ultra
# Deep Field), not the 1995 HDF-North. Field centre from the release; the 1000x872 px image
# spans ~2.3' x 2.0', i.e. ~0.138"/px. North is assumed up and east left: ra/dec are plausible
# (within the real field), not astrometry.
XDF_SURVEY = "Hubble XDF (scikit-image sample)"
XDF_CENTRE_RA = 15.0 * (3 + 32 / 60 + 38.5 / 3600)  # 03h32m38.5s
XDF_CENTRE_DEC = -(27 + 47 / 60)  # -27d47m00s
XDF_PIXEL_SCALE = 0.138  # arcsec per pixel of the skimage image
XDF_MAX_GALAXIES = 100
XDF_DETECT_SIGMA = 15.0  # detection threshold above the sky, in robust sky sigmas
XDF_MIN_AREA_PX = 60
# The two foreground stars with diffraction spikes (x, y pixel) are not galaxies.
XDF_STARS_XY = ((754, 578), (253, 166))

SIM_SURVEY = "Simulated (numpy Sérsic + disk)"
SIM_COUNT = 40
SIM_SEED = 20240611
SIM_PIXEL_SCALE = 0.262  # as DECaLS, so sizes in arcsec are plausible


@dataclass
class DemoGalaxy:
    id_str: str
    ra: float
    dec: float
    rgb: np.ndarray  # uint8 (CUTOUT_PX, CUTOUT_PX, 3)
    survey: str
    pixel_scale: float
    is_simulated: bool
    metadata: dict[str, Any] = field(default_factory=dict)


def _iau_name(prefix: str, ra: float, dec: float) -> str:
    hours = ra / 15.0
    h, m = int(hours), int((hours * 60) % 60)
    s = (hours * 3600) % 60
    sign = "-" if dec < 0 else "+"
    d_abs = abs(dec)
    d, dm = int(d_abs), int((d_abs * 60) % 60)
    ds = (d_abs * 3600) % 60
    return f"{prefix} J{h:02d}{m:02d}{math.floor(s * 100) / 100:05.2f}{sign}{d:02d}{dm:02d}{math.floor(ds * 10) / 10:04.1f}"


def _xdf_radec(x: float, y: float, shape: tuple[int, int]) -> tuple[float, float]:
    """Small tangent-plane offsets from the field centre, north up and east left."""
    ny, nx = shape
    dx_deg = (x - (nx - 1) / 2) * XDF_PIXEL_SCALE / 3600
    dy_deg = (y - (ny - 1) / 2) * XDF_PIXEL_SCALE / 3600
    dec = XDF_CENTRE_DEC - dy_deg
    ra = XDF_CENTRE_RA - dx_deg / math.cos(math.radians(XDF_CENTRE_DEC))
    return ra % 360.0, dec


def xdf_galaxies(*, max_galaxies: int = XDF_MAX_GALAXIES) -> list[DemoGalaxy]:
    """The brightest extended sources of the XDF image, each in a square cutout upscaled to 256 px.

    Sources are found by thresholding the smoothed luminance at ``XDF_DETECT_SIGMA`` robust sky
    sigmas, ranked by flux above the sky; each cutout is 2.5x the source's major axis (48-220 px),
    and sources too near the image edge to be centred are left out.
    """
    from skimage import data, filters, measure

    image = data.hubble_deep_field()
    luminance = image.astype(np.float32).mean(axis=2) / 255.0
    smooth = filters.gaussian(luminance, sigma=1.0)
    sky = float(np.median(smooth))
    sigma = float(np.median(np.abs(smooth - sky)) * 1.4826)
    labels = measure.label(smooth > sky + XDF_DETECT_SIGMA * sigma)
    sources = [p for p in measure.regionprops(labels, intensity_image=luminance) if p.area >= XDF_MIN_AREA_PX]
    sources = [p for p in sources
               if not any(labels[y, x] == p.label for x, y in XDF_STARS_XY)]
    sources.sort(key=lambda p: -p.area * (p.intensity_mean - sky))

    galaxies: list[DemoGalaxy] = []
    ny, nx = luminance.shape
    for rank, source in enumerate(sources, start=1):
        cy, cx = (float(v) for v in source.centroid_weighted)
        side = int(np.clip(2.5 * source.axis_major_length, 48, 220))
        y0, x0 = round(cy - side / 2), round(cx - side / 2)
        if not (0 <= y0 <= ny - side and 0 <= x0 <= nx - side):
            continue  # too close to the edge to sit in the middle of its cutout
        cutout = Image.fromarray(image[y0:y0 + side, x0:x0 + side]).resize((CUTOUT_PX, CUTOUT_PX), Image.LANCZOS)
        ra, dec = _xdf_radec(cx, cy, (ny, nx))
        galaxies.append(DemoGalaxy(
            id_str=_iau_name("XDF", ra, dec), ra=ra, dec=dec, rgb=np.asarray(cutout), survey=XDF_SURVEY,
            pixel_scale=round(XDF_PIXEL_SCALE * side / CUTOUT_PX, 4), is_simulated=False,
            metadata={"source": "skimage.data.hubble_deep_field (HubbleSite 2012-37, public domain)",
                      "brightness_rank": rank, "x_px": round(cx, 1), "y_px": round(cy, 1),
                      "cutout_px": side, "area_px": int(source.area)}))
        if len(galaxies) == max_galaxies:
            break
    return galaxies


# --- simulated galaxies --------------------------------------------------------------------

def _sersic(r: np.ndarray, r_eff: float, n: float) -> np.ndarray:
    b_n = 2.0 * n - 1.0 / 3.0 + 0.009876 / n
    return np.exp(-b_n * ((r / r_eff) ** (1.0 / n) - 1.0))


def expected_answers(params: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    """Per shipped workflow, the answers a careful volunteer gives a galaxy of these parameters
    (read off each tree's own answer hints, see classifier.simulation)."""
    appearance = appearance_from_metadata({"simulation": params})
    return {slug: expected_path(DecisionTree.load(tree_name), appearance) for slug, tree_name in SHIPPED_WORKFLOWS.items()}


def _simulation_parameters(rng: np.random.Generator) -> dict[str, Any]:
    kind = rng.choice(["elliptical", "spiral", "barred-spiral", "edge-on"], p=[0.3, 0.3, 0.2, 0.2])
    p: dict[str, Any] = {"kind": str(kind), "position_angle_deg": round(float(rng.uniform(0, 180)), 1)}
    if kind == "elliptical":
        p.update(axis_ratio=round(float(rng.uniform(0.3, 1.0)), 2), bulge_sersic_n=round(float(rng.uniform(2.5, 5)), 2),
                 bulge_r_eff_px=round(float(rng.uniform(8, 20)), 1), bulge_fraction=1.0, bar_strength=0.0,
                 spiral_arms=0, pitch_angle_deg=None, disk_scale_px=None)
    else:
        p.update(axis_ratio=round(float(rng.uniform(0.12, 0.25) if kind == "edge-on" else rng.uniform(0.55, 1.0)), 2),
                 bulge_sersic_n=round(float(rng.uniform(1.5, 4)), 2), bulge_r_eff_px=round(float(rng.uniform(4, 10)), 1),
                 bulge_fraction=round(float(rng.uniform(0.05, 0.6)), 2), disk_scale_px=round(float(rng.uniform(10, 16) if kind == "edge-on" else rng.uniform(14, 26)), 1),
                 bar_strength=round(float(rng.uniform(0.3, 1.0)), 2) if kind == "barred-spiral" else 0.0,
                 spiral_arms=int(rng.choice([2, 2, 2, 3, 4])) if kind != "edge-on" else 0,
                 pitch_angle_deg=round(float(rng.uniform(8, 35)), 1) if kind != "edge-on" else None)
    return p


def render_simulated(p: dict[str, Any], *, rng: np.random.Generator, size: int = CUTOUT_PX) -> np.ndarray:
    """A uint8 RGB image of a galaxy with parameters ``p`` (bulge red, disk and arms blue)."""
    from skimage.filters import gaussian

    c = (size - 1) / 2
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) - c
    pa = math.radians(p["position_angle_deg"])
    xr = x * math.cos(pa) + y * math.sin(pa)
    yr = (-x * math.sin(pa) + y * math.cos(pa)) / p["axis_ratio"]  # into the galaxy's own plane
    r = np.hypot(xr, yr) + 0.5
    theta = np.arctan2(yr, xr)

    # A bulge is thicker than its disk: it keeps an axis ratio of at least 0.7.
    bulge_q = max(p["axis_ratio"], 0.7) if p["kind"] != "elliptical" else p["axis_ratio"]
    r_bulge = np.hypot(xr, yr * p["axis_ratio"] / bulge_q) + 0.5
    bulge = _sersic(r_bulge, p["bulge_r_eff_px"], p["bulge_sersic_n"])
    bulge /= bulge.sum()
    disk = np.zeros_like(r)
    if p["disk_scale_px"]:
        disk = np.exp(-r / p["disk_scale_px"])
        if p["spiral_arms"]:
            winding = 1.0 / math.tan(math.radians(p["pitch_angle_deg"]))
            phase = p["spiral_arms"] * (theta - winding * np.log(r))
            arms = (0.5 + 0.5 * np.cos(phase)) ** 3
            disk = disk * (0.25 + 1.6 * arms * np.clip(r / (2 * p["bulge_r_eff_px"]), 0, 1))
        disk /= disk.sum()
    bar = np.zeros_like(r)
    if p["bar_strength"]:
        length = 1.6 * p["disk_scale_px"]
        bar = np.exp(-0.5 * ((xr / (0.5 * length)) ** 2 + (yr / (0.12 * length)) ** 2)) * (r < length * 1.2)
        bar = bar / bar.sum() * p["bar_strength"] * 0.25
    old_stars = p["bulge_fraction"] * bulge + bar
    young_stars = (1 - p["bulge_fraction"]) * disk
    total_flux = 4000.0
    red, blue = np.array([1.0, 0.78, 0.55]), np.array([0.55, 0.72, 1.0])
    rgb = total_flux * (old_stars[..., None] * red + young_stars[..., None] * blue)
    rgb = gaussian(rgb, sigma=1.5, channel_axis=-1)
    noise = 0.004
    rgb = rgb + rng.normal(0.0, noise, rgb.shape)
    stretched = np.arcsinh(np.clip(rgb, 0, None) / (3 * noise)) / np.arcsinh(total_flux * 0.02 / (3 * noise))
    return (np.clip(stretched, 0, 1) * 255).astype(np.uint8)


def simulated_galaxies(*, count: int = SIM_COUNT, seed: int = SIM_SEED) -> list[DemoGalaxy]:
    """Deterministic (seeded) simulated galaxies with their truth in ``metadata``."""
    rng = np.random.default_rng(seed)
    galaxies = []
    for index in range(count):
        params = _simulation_parameters(rng)
        ra, dec = float(rng.uniform(150, 160)), float(rng.uniform(0, 5))
        galaxies.append(DemoGalaxy(
            id_str=f"SIM-{index + 1:04d}", ra=round(ra, 6), dec=round(dec, 6), rgb=render_simulated(params, rng=rng),
            survey=SIM_SURVEY, pixel_scale=SIM_PIXEL_SCALE, is_simulated=True,
            metadata={"simulation": params, "expected_answers": expected_answers(params), "seed": seed}))
    return galaxies
