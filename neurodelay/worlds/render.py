"""Vectorised renderers of a circle in front of a Gaussian blob.

All functions take a batch of factor rows, shape (B, n_factor) with
``[blob_x, blob_y, circle_x, circle_y, ...]`` in image widths, and work on
the device of their input with no Python loop over samples or frames.

Two renderers:

* ``render_default``: the corrected renderer. True radius, exact
  anti-aliasing (each pixel holds the area of the pixel square covered by
  the disc, computed analytically), continuous positions, rendered directly
  at the output size. Pixel ``j`` spans ``[j, j + 1)`` pixels, so its centre
  is at ``(j + 0.5) / size`` image widths. The circle centre sits at
  ``0.75 v + 0.125`` image widths (the original's 8..56 of 64 px, placed
  symmetrically), the blob mean at ``v`` image widths.
* ``render_seed_compatible``: the original generator, bit for bit. Renders
  at twice the output size with integer pixel centres, the binary disc test
  ``dx^2 + dy^2 - r <= r^2`` in float32 (the original's stray ``- r``), a
  uint8 composite (truncation), then PIL's bilinear 2x reduction in PIL's
  own fixed-point arithmetic (a [1, 3, 3, 1] / 8 filter, renormalised to
  [3, 3, 1] / 7 at the borders, rounded after each of the two passes).
"""

from __future__ import annotations

import math

import torch

MASK_THRESHOLD = 0.4
MASK_RADIUS_SCALES = {"object": 1.0, "half": 0.5, "outer": 1.5}

# PIL's resampler: 8-bit fixed point with 22 fractional bits.
_PIL_BITS = 22


def _pil_halving_weights() -> tuple:
    """Integer coefficients of PIL's bilinear 2x reduction (interior, first pixel)."""

    def normalise(prekk):
        total = sum(prekk)
        return [int(math.floor(0.5 + k / total * (1 << _PIL_BITS))) for k in prekk]

    # Output pixel i is centred on input coordinate 2i + 1 (pixel j spans
    # [j, j+1)); the triangle filter is stretched by 2 (support 2 input px).
    tri = lambda x: max(0.0, 1.0 - abs(x))  # noqa: E731
    interior = normalise([tri((x + 0.5 - 3.0) / 2) for x in range(1, 5)])  # i = 1: inputs 1..4
    first = normalise([tri((x + 0.5 - 1.0) / 2) for x in range(0, 3)])  # i = 0: inputs 0..2
    return tuple(interior), tuple(first)


_PIL_INTERIOR, _PIL_FIRST = _pil_halving_weights()


def _halve_last(x: torch.Tensor) -> torch.Tensor:
    """PIL bilinear 2x reduction along the last dim; int32 in 0..255 -> int32 in 0..255."""
    n = x.shape[-1]
    m = n // 2
    a, b = _PIL_INTERIOR[0], _PIL_INTERIOR[1]
    xp = torch.nn.functional.pad(x, (1, 1))
    s = (
        a * xp[..., 0 : 2 * m : 2]
        + b * xp[..., 1 : 2 * m + 1 : 2]
        + b * xp[..., 2 : 2 * m + 2 : 2]
        + a * xp[..., 3 : 2 * m + 3 : 2]
    )
    e1, _, e0 = _PIL_FIRST
    s[..., 0] = e1 * x[..., 0] + e1 * x[..., 1] + e0 * x[..., 2]
    s[..., -1] = e0 * x[..., -3] + e1 * x[..., -2] + e1 * x[..., -1]
    return (s + (1 << (_PIL_BITS - 1))) >> _PIL_BITS


def pil_halve(images: torch.Tensor) -> torch.Tensor:
    """Reduce 8-bit images 2x exactly as PIL's ``resize(..., BILINEAR)`` does.

    Parameters
    ----------
    images : torch.Tensor
        Integer values in 0..255, shape (..., 2H, 2W) with H, W >= 2.

    Returns
    -------
    torch.Tensor
        int32 in 0..255, shape (..., H, W). Horizontal pass first, each pass
        rounded to integers, as PIL does.
    """
    x = _halve_last(images.to(torch.int32))
    return _halve_last(x.transpose(-1, -2)).transpose(-1, -2).contiguous()


def blob_profile(mean_px: torch.Tensor, n_px: int, sigma_px: float, offset: float) -> torch.Tensor:
    """One axis of the max-normalised Gaussian blob.

    The isotropic blob is separable, and its maximum over the grid is the
    product of the per-axis maxima, so ``outer(gy, gx)`` is the 2-D blob
    divided by its maximum over the visible grid.

    Parameters
    ----------
    mean_px : torch.Tensor
        Blob mean in pixels, shape (B,).
    n_px : int
        Pixels along the axis.
    sigma_px : float
        Standard deviation in pixels.
    offset : float
        Coordinate of pixel 0's centre (0.5 for pixel squares, 0 for the
        original's integer pixel centres).

    Returns
    -------
    torch.Tensor
        Shape (B, n_px), dtype of ``mean_px``, maximum 1 along the axis.
    """
    j = torch.arange(n_px, dtype=mean_px.dtype, device=mean_px.device) + offset
    d2 = (j - mean_px[:, None]) ** 2
    d2 = d2 - d2.amin(dim=-1, keepdim=True)
    return torch.exp(d2 * (-0.5 / sigma_px**2))


def _corner_area(u: torch.Tensor, v: torch.Tensor, r: float) -> torch.Tensor:
    """Area of the disc of radius r at the origin within {x <= u, y <= v} (broadcast)."""
    r2 = r * r

    def prim(t):  # integral of sqrt(r^2 - s^2) ds from 0 to t, |t| <= r
        return 0.5 * (t * torch.sqrt((r2 - t * t).clamp_min(0.0)) + r2 * torch.asin((t / r).clamp(-1.0, 1.0)))

    a = -v.abs()  # area below y = a <= 0; reflect for y > 0
    w = torch.sqrt((r2 - a * a).clamp_min(0.0))  # half-chord at y = a
    xw = torch.minimum(torch.maximum(u, -w), w)
    below = prim(xw) + prim(w) + a * (xw + w)
    left = 2.0 * prim(u.clamp(-r, r)) + 0.5 * math.pi * r2  # area of the disc with x <= u
    return torch.where(v > 0, left - below, below)


def disc_window(cx: torch.Tensor, cy: torch.Tensor, r: float, size: int) -> tuple:
    """Exact pixel coverage of a disc, on the small window of pixels it can touch.

    Parameters
    ----------
    cx, cy : torch.Tensor
        Disc centres in pixels (pixel j spans [j, j+1)), shape (B,).
    r : float
        Radius in pixels.
    size : int
        Image size in pixels.

    Returns
    -------
    coverage : torch.Tensor
        Shape (B, K*K), area fraction in [0, 1] of each window pixel.
    index : torch.Tensor
        int64, shape (B, K*K), flat pixel index ``row * size + col`` of each
        window pixel (unique within a row of the batch, always inside the image).
    """
    k = min(size, math.ceil(2 * r) + 1)
    steps = torch.arange(k + 1, device=cx.device)
    x0 = torch.floor(cx - r).clamp(0, size - k).to(torch.int64)
    y0 = torch.floor(cy - r).clamp(0, size - k).to(torch.int64)
    u = (x0[:, None] + steps).to(cx.dtype) - cx[:, None]  # (B, k+1) pixel edges relative to the centre
    v = (y0[:, None] + steps).to(cy.dtype) - cy[:, None]
    g = _corner_area(u[:, None, :], v[:, :, None], r)  # (B, k+1 rows, k+1 cols)
    cov = g[:, 1:, 1:] - g[:, :-1, 1:] - g[:, 1:, :-1] + g[:, :-1, :-1]
    rows = y0[:, None] + steps[:k]
    cols = x0[:, None] + steps[:k]
    index = (rows[:, :, None] * size + cols[:, None, :]).reshape(-1, k * k)
    return cov.clamp(0.0, 1.0).reshape(-1, k * k), index


def _circle_centre_default(v: torch.Tensor, size: int) -> torch.Tensor:
    return (v * 0.75 + 0.125) * size


def render_default(factors: torch.Tensor, size: int, radius: float, blob_sigma: float, blob_brightness: float) -> torch.Tensor:
    """Corrected renderer: exact anti-aliased disc over a Gaussian blob.

    Parameters
    ----------
    factors : torch.Tensor
        float32, shape (B, >= 4), image widths.
    size : int
        Output size in pixels.
    radius, blob_sigma : float
        Circle radius and blob standard deviation in image widths.
    blob_brightness : float
        Peak blob intensity (circle intensity is 1; the sum is clipped at 1).

    Returns
    -------
    torch.Tensor
        float32, shape (B, size, size), values in [0, 1].
    """
    f = factors
    gx = blob_profile(f[:, 0] * size, size, blob_sigma * size, 0.5)
    gy = blob_profile(f[:, 1] * size, size, blob_sigma * size, 0.5) * blob_brightness
    out = gy[:, :, None] * gx[:, None, :]
    cx = _circle_centre_default(f[:, 2], size)
    cy = _circle_centre_default(f[:, 3], size)
    cov, index = disc_window(cx, cy, radius * size, size)
    flat = out.view(-1, size * size)
    flat.scatter_(1, index, (flat.gather(1, index) + cov).clamp_(max=1.0))
    return out


def coverage_default(factors: torch.Tensor, size: int, radius: float) -> torch.Tensor:
    """Circle alone, corrected renderer: float32 (B, size, size) coverage in [0, 1]."""
    cx = _circle_centre_default(factors[:, 2], size)
    cy = _circle_centre_default(factors[:, 3], size)
    cov, index = disc_window(cx, cy, radius * size, size)
    out = torch.zeros(factors.shape[0], size * size, dtype=factors.dtype, device=factors.device)
    out.scatter_(1, index, cov)
    return out.view(-1, size, size)


def _quirk_disc(factors: torch.Tensor, n: int, radius: float) -> torch.Tensor:
    """The original's binary disc at n px: bool (B, n, n), float32 arithmetic."""
    f = factors.to(torch.float32)
    j = torch.arange(n, dtype=torch.float32, device=f.device)
    # Separate multiply and add (no fused multiply-add), as the original's float32 code.
    cx = f[:, 2] * (0.75 * n) + 0.125 * n
    cy = f[:, 3] * (0.75 * n) + 0.125 * n
    r = torch.tensor(radius * n, dtype=torch.float32, device=f.device)
    dx2 = (j - cx[:, None]) ** 2
    dy2 = (j - cy[:, None]) ** 2
    # The stray '- r', evaluated as d^2 - r^2 <= r: in float32 this form, and not
    # d^2 - r <= r^2, decides the boundary pixels as the golden frames do.
    return (dy2[:, :, None] + dx2[:, None, :]) - r * r <= r


def render_seed_compatible(factors: torch.Tensor, size: int, radius: float, blob_sigma: float, blob_brightness: float) -> torch.Tensor:
    """The original generator: binary quirk disc + blob at 2*size px, uint8, PIL 2x reduction.

    Parameters and return as ``render_default``; values are multiples of 1/255.
    """
    n = 2 * size
    f64 = factors.to(torch.float64)
    gx = blob_profile(f64[:, 0] * n, n, blob_sigma * n, 0.0)
    gy = blob_profile(f64[:, 1] * n, n, blob_sigma * n, 0.0) * (blob_brightness * 255.0)
    composite = gy[:, :, None] * gx[:, None, :]
    composite = composite + 255.0 * _quirk_disc(factors, n, radius)
    composite = composite.clamp_(0.0, 255.0).to(torch.int32)  # truncation, as numpy's uint8 cast
    return pil_halve(composite).to(torch.float32) / 255.0


def masks(factors: torch.Tensor, size: int, radius: float, seed_compatible: bool) -> dict:
    """Region masks: the circle alone at radius r, r/2 and 1.5 r, thresholded at > 0.4.

    Returns
    -------
    dict
        bool tensors (B, size, size) keyed ``inside``, ``edge``, ``object``,
        ``background``: object = disc(r); edge = object XOR disc(r/2);
        inside = object AND NOT edge; background = NOT disc(1.5 r).
    """
    discs = {}
    for key, scale in MASK_RADIUS_SCALES.items():
        if seed_compatible:
            alone = pil_halve(_quirk_disc(factors, 2 * size, radius * scale).to(torch.int32) * 255)
            discs[key] = alone.to(torch.float64) / 255.0 > MASK_THRESHOLD
        else:
            discs[key] = coverage_default(factors, size, radius * scale) > MASK_THRESHOLD
    obj = discs["object"]
    edge = obj ^ discs["half"]
    return {"inside": obj & ~edge, "edge": edge, "object": obj, "background": ~discs["outer"]}
