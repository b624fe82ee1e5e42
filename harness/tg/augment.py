"""Data augmentation on the device: a random rotation, scale and translation per image.

Each image gets its own affine map drawn from tinygrad's seeded RNG inside the jitted step, so runs
stay reproducible; pixels are resampled bilinearly (zeros outside the image) with four gathers.
"""

from __future__ import annotations

import math

SIZE = 28


def affine(x, rotate_deg: float, scale: float, translate_px: float):
    """x: (B, 1, 28, 28) float images -> the same shape, randomly transformed per image."""
    from tinygrad import Tensor

    b = x.shape[0]
    angle = (Tensor.rand(b, 1, 1) * 2 - 1) * (rotate_deg * math.pi / 180)
    zoom = 1 + (Tensor.rand(b, 1, 1) * 2 - 1) * scale
    tx, ty = ((Tensor.rand(b, 1, 1) * 2 - 1) * translate_px for _ in range(2))
    c = (SIZE - 1) / 2
    ys = Tensor.arange(SIZE).float().reshape(1, SIZE, 1) - c
    xs = Tensor.arange(SIZE).float().reshape(1, 1, SIZE) - c
    cos, sin = angle.cos() / zoom, angle.sin() / zoom  # inverse map: output pixel -> source pixel
    src_x = cos * (xs - tx) + sin * (ys - ty) + c
    src_y = -sin * (xs - tx) + cos * (ys - ty) + c
    return _bilinear(x.reshape(b, SIZE * SIZE), src_x, src_y).reshape(b, 1, SIZE, SIZE)


def _bilinear(flat, src_x, src_y):
    x0, y0 = src_x.floor(), src_y.floor()
    out = None
    for dx in (0, 1):
        for dy in (0, 1):
            xi, yi = x0 + dx, y0 + dy
            weight = (1 - (src_x - xi).abs()) * (1 - (src_y - yi).abs())
            inside = (xi >= 0) * (xi <= SIZE - 1) * (yi >= 0) * (yi <= SIZE - 1)
            index = (yi.clip(0, SIZE - 1) * SIZE + xi.clip(0, SIZE - 1)).cast("int32").reshape(flat.shape[0], -1)
            term = flat.gather(1, index).reshape(src_x.shape) * weight * inside
            out = term if out is None else out + term
    return out
