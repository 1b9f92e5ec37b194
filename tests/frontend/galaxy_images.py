"""Synthetic galaxy pictures (numpy + Pillow) so the browser tests show something galaxy-like."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

KINDS = ("smooth", "spiral", "barred", "edge-on")


def galaxy_image(kind: str = "spiral", *, size: int = 256, seed: int = 0, angle: float | None = None) -> Image.Image:
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0, np.pi) if angle is None else angle
    axis_ratio = {"smooth": rng.uniform(0.6, 1.0), "edge-on": 0.12}.get(kind, rng.uniform(0.55, 0.9))
    y, x = (np.mgrid[0:size, 0:size] - (size - 1) / 2) / (size / 2)
    xr = x * np.cos(angle) + y * np.sin(angle)
    yr = (-x * np.sin(angle) + y * np.cos(angle)) / axis_ratio
    r = np.hypot(xr, yr) + 1e-6
    theta = np.arctan2(yr, xr)
    bulge = np.exp(-7.67 * ((r / 0.12) ** 0.25 - 1)) / 2000
    disk = np.zeros_like(r) if kind == "smooth" else np.exp(-r / 0.22)
    if kind in ("spiral", "barred"):
        pitch = rng.uniform(0.25, 0.45)
        arms = 0.5 + 0.5 * np.cos(2 * (theta - np.log(r) / np.tan(pitch)))
        disk = disk * (0.25 + 1.6 * arms ** 3)
    if kind == "barred":
        disk += 1.2 * np.exp(-(xr / 0.3) ** 2 - (yr / 0.06) ** 2)
    if kind == "edge-on":
        disk = disk * (1 - 0.75 * np.exp(-(yr * axis_ratio / 0.012) ** 2))
    blue = np.stack([0.55, 0.75, 1.0])[:, None, None]
    yellow = np.stack([1.0, 0.85, 0.6])[:, None, None]
    light = 3 * bulge * yellow + (0.6 * disk) * blue if kind != "smooth" else (bulge + 0.4 * np.exp(-r / 0.35)) * yellow
    stars = np.zeros((size, size))
    for _ in range(int(rng.integers(3, 9))):
        sx, sy = rng.uniform(-1, 1, 2)
        stars += rng.uniform(0.2, 1.5) * np.exp(-((x - sx) ** 2 + (y - sy) ** 2) / 2e-4)
    light = light + stars[None] + rng.normal(0, 0.012, (3, size, size))
    rgb = np.arcsinh(np.clip(light, 0, None) * 6) / np.arcsinh(6)
    return Image.fromarray((np.clip(rgb, 0, 1).transpose(1, 2, 0) * 255).astype(np.uint8))


def galaxy_jpeg(kind: str = "spiral", *, size: int = 256, seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    galaxy_image(kind, size=size, seed=seed).save(buffer, format="JPEG", quality=88)
    return buffer.getvalue()
