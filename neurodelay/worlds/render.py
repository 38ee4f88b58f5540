"""Vectorised renderers of a circle in front of a Gaussian blob.

The functions take blob and circle positions, each (..., 2) as [x, y] in
factor units (see below), whose leading dims broadcast (a blob that is static over a
sequence can be passed once per sequence). They run on the device of their
input with no Python loop over samples or frames, and return (..., H, W).

Two renderers:

* ``render_default``: the corrected renderer. True radius, exact
  anti-aliasing (each pixel holds the area of its square covered by the
  disc, computed analytically), continuous positions, rendered directly at
  the output size. Pixel ``j`` spans ``[j, j + 1)`` pixels, its centre is at
  ``(j + 0.5) / size`` image widths. The circle centre sits at
  ``0.75 v + 0.125`` image widths (the original's 8..56 of 64 px, placed
  symmetrically), the blob mean at ``v`` image widths.
* ``render_seed_compatible``: the original generator, bit for bit. Renders
  at twice the output size with integer pixel centres, the binary disc test
  with the original's stray ``- r`` in float32, a uint8 composite
  (truncation), then PIL's bilinear 2x reduction in PIL's own fixed-point
  arithmetic (a [1, 3, 3, 1] / 8 filter, [3, 3, 1] / 7 at the borders,
  rounded after each of the two passes).

Both draw the disc only on the small window of pixels it can touch, and
the blob as an outer product of two 1-D profiles.
"""

from __future__ import annotations

import functools
import math

import torch

from ._buffers import new_frames

MASK_THRESHOLD = 0.4
MASK_RADIUS_SCALES = {"object": 1.0, "half": 0.5, "outer": 1.5}
_CHUNK_PIXELS = 1 << 22  # pixels per block in the seed-compatible renderer (32 MB of float64)
_PIL_BITS = 22  # PIL's 8-bit resampler: fixed point with 22 fractional bits


def _pil_halving_weights() -> tuple:
    """Integer coefficients of PIL's bilinear 2x reduction: (interior taps, first-pixel taps)."""

    def normalise(prekk):
        total = sum(prekk)
        return tuple(int(math.floor(0.5 + k / total * (1 << _PIL_BITS))) for k in prekk)

    # Output pixel i is centred on input coordinate 2i + 1 (pixel j spans
    # [j, j+1)); the triangle filter is stretched by 2 (support: 2 input px).
    tri = lambda x: max(0.0, 1.0 - abs(x))  # noqa: E731
    interior = normalise([tri((x + 0.5 - 3.0) / 2) for x in range(1, 5)])  # i = 1: inputs 1..4
    first = normalise([tri((x + 0.5 - 1.0) / 2) for x in range(0, 3)])  # i = 0: inputs 0..2
    return interior, first


_PIL_INTERIOR, _PIL_FIRST = _pil_halving_weights()
# Interior taps are exactly 2**19 * [1, 3, 3, 1]: the pass is (a + 3b + 3c + d + 4) >> 3.
assert _PIL_INTERIOR == tuple(w << (_PIL_BITS - 3) for w in (1, 3, 3, 1))


def _halve_last(x: torch.Tensor) -> torch.Tensor:
    """One PIL pass along the last dim: int16 (..., n) in 0..255 -> int16 (..., n/2)."""
    n = x.shape[-1]
    out = torch.empty(*x.shape[:-1], n // 2, dtype=x.dtype, device=x.device)
    mid = out[..., 1:-1]
    torch.add(x[..., 2 : n - 2 : 2], x[..., 3 : n - 1 : 2], out=mid)
    mid.mul_(3).add_(x[..., 1 : n - 3 : 2]).add_(x[..., 4:n:2]).add_(4).bitwise_right_shift_(3)
    e1, _, e0 = _PIL_FIRST
    half = 1 << (_PIL_BITS - 1)  # the edge sums stay below 2**31: int32 is exact
    for dst, (p, q, o) in ((0, (0, 1, 2)), (-1, (n - 1, n - 2, n - 3))):
        edge = (x[..., p].to(torch.int32) + x[..., q]).mul_(e1).add_(x[..., o].to(torch.int32) * e0 + half)
        out[..., dst] = edge.bitwise_right_shift_(_PIL_BITS)
    return out


def pil_halve(images: torch.Tensor) -> torch.Tensor:
    """Reduce 8-bit images 2x exactly as PIL's ``resize(..., BILINEAR)`` does.

    Parameters
    ----------
    images : torch.Tensor
        Integer values in 0..255, shape (..., 2H, 2W) with H, W >= 2.

    Returns
    -------
    torch.Tensor
        int16 in 0..255, shape (..., H, W). Horizontal pass first, each
        pass rounded to integers, as PIL does.
    """
    x = _halve_last(images.to(torch.int16))
    return _halve_last(x.transpose(-1, -2)).transpose(-1, -2)


def blob_profile(mean_px: torch.Tensor, n_px: int, sigma_px: float, offset: float) -> torch.Tensor:
    """One axis of the max-normalised Gaussian blob.

    The isotropic blob is separable and its maximum over the grid is the
    product of the per-axis maxima, so ``outer(gy, gx)`` is the 2-D blob
    divided by its maximum over the visible grid.

    Parameters
    ----------
    mean_px : torch.Tensor
        Blob means in pixels, any shape (...).
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
        Shape (..., n_px), dtype of ``mean_px``, maximum 1 along the last dim.
    """
    j = torch.arange(n_px, dtype=mean_px.dtype, device=mean_px.device) + offset
    d2 = (j - mean_px[..., None]) ** 2
    d2 = d2 - d2.amin(dim=-1, keepdim=True)
    return torch.exp(d2 * (-0.5 / sigma_px**2))


def _window(c: torch.Tensor, reach: float, k: int, size: int) -> torch.Tensor:
    """First pixel (int64, shape (B,)) of a k-pixel window holding [c - reach, c + reach] within the image."""
    return torch.floor(c - reach).clamp_(0, size - k).to(torch.int64)


def disc_coverage(cx: torch.Tensor, cy: torch.Tensor, r: float, size: int) -> tuple:
    """Exact pixel coverage of discs, on the window of pixels each can touch.

    Pixel j spans [j, j+1); the coverage of a pixel is the area of its
    square inside the disc, from the disc's area within the quadrant below
    and left of each pixel corner (inclusion-exclusion over 4 corners).

    Parameters
    ----------
    cx, cy : torch.Tensor
        Disc centres in pixels, shape (B,).
    r : float
        Radius in pixels.
    size : int
        Image size in pixels.

    Returns
    -------
    coverage : torch.Tensor
        Shape (k, k, B) (window row, window column, batch), in [0, 1] up to
        rounding (about 1e-6 in float32).
    x0, y0 : torch.Tensor
        int64 (B,): image column and row of window pixel (0, 0). The window
        always lies inside the image.
    k : int
        Window size in pixels.
    """
    k = min(size, math.ceil(2 * r) + 1)
    x0, y0 = _window(cx, r, k, size), _window(cy, r, k, size)
    cov = _window_coverage(cx - x0.to(cx.dtype), cy - y0.to(cy.dtype), r, k)
    return cov, x0, y0, k


def _window_coverage(cx: torch.Tensor, cy: torch.Tensor, r: float, k: int) -> torch.Tensor:
    """Coverage (k, k, B) of the pixels [0, k)^2 by discs centred at (cx, cy) (B,) pixels.

    Values are in [0, 1] up to rounding (about 1e-6 at float32): clamp where it matters.
    """
    steps = torch.arange(k + 1, device=cx.device, dtype=cx.dtype)[:, None]
    u = steps - cx  # (k+1, B) column edges relative to the centre
    v = steps - cy  # (k+1, B) row edges
    r = float(torch.tensor(r, dtype=cx.dtype))  # so that clamping at r gives r - |t| = 0 exactly
    r2 = r * r
    # G(u, v): disc area with x <= u and y <= v; coverage = G(u1, v1) - G(u0, v1) - G(u1, v0) + G(u0, v0).
    # With prim(t) = integral_0^t sqrt(r^2 - s^2) ds (odd, increasing on [-r, r]), w = sqrt(r^2 - v^2)
    # the half chord at v and xw = clamp(u, -w, w):
    #   G(u, v) = prim(xw) + prim(w) + v * (xw + w)          for v <= 0,
    #   G(u, v) = left(u) - G(u, -v), left(u) = 2 prim(u) + pi r^2 / 2   for v > 0,
    # and prim(xw) = clamp(prim(u), -prim(w), prim(w)). Terms of G that depend on one of u, v
    # only cancel in the double difference, leaving the part computed on the corner grid.
    # prim(t) = (t h + r^2 atan2(t, h)) / 2 with h = sqrt((r - |t|)(r + |t|)): accurate up to |t| = r,
    # where asin(t / r) would lose half the digits.
    uc = u.clamp(-r, r)
    ua = uc.abs()
    h = torch.sqrt((r - ua) * (r + ua))
    pu = 0.5 * (uc * h + r2 * torch.atan2(uc, h))
    a = v.abs()
    w = torch.sqrt((r - a).clamp_min_(0.0) * (r + a))
    pw = 0.5 * (w * a + r2 * torch.atan2(w, a))
    pos = (v > 0).to(cx.dtype)
    sgn = 1.0 - 2.0 * pos
    w_, pw_ = w[:, None], pw[:, None]
    xw = torch.clamp(u[None], min=-w_, max=w_)  # (k+1 rows, k+1 cols, B)
    g = torch.clamp(pu[None], min=-pw_, max=pw_).addcmul_(a[:, None], xw, value=-1.0).mul_(sgn[:, None])
    dj = g[:, 1:] - g[:, :-1]
    cov = dj[1:] - dj[:-1]
    return cov.addcmul_((pos[1:] - pos[:-1])[:, None], (2.0 * (pu[1:] - pu[:-1]))[None])  # pos(v) * left(u)


@functools.lru_cache(maxsize=64)
def _window_offsets(k: int, size: int, device: torch.device) -> torch.Tensor:
    steps = torch.arange(k, device=device)
    return (steps[:, None] * size + steps[None, :]).reshape(-1)


def _flat_index(x0: torch.Tensor, y0: torch.Tensor, k: int, size: int) -> torch.Tensor:
    """int64 (B, k*k): flat pixel index row * size + col of each window pixel."""
    return (y0 * size + x0)[:, None] + _window_offsets(k, size, x0.device)


def _centre_default(v: torch.Tensor, size: int) -> torch.Tensor:
    return (v * 0.75 + 0.125) * size


def _flat(t: torch.Tensor, lead: tuple) -> torch.Tensor:
    return t.expand(*lead, t.shape[-1]).reshape(-1, t.shape[-1])


def render_default(blob, circle, size: int, radius: float, blob_sigma: float, blob_brightness: float) -> torch.Tensor:
    """Corrected renderer: exact anti-aliased disc over a Gaussian blob.

    Parameters
    ----------
    blob, circle : torch.Tensor
        float32 (..., 2) positions [x, y] in factor units (circle centre at
        ``0.75 v + 0.125`` image widths, blob mean at ``v``); leading dims broadcast.
    size : int
        Output size in pixels.
    radius, blob_sigma : float
        Circle radius and blob standard deviation in image widths.
    blob_brightness : float
        Blob peak intensity; the circle's is 1 and the sum is clipped at 1.

    Returns
    -------
    torch.Tensor
        float32 (..., size, size), values in [0, 1].
    """
    blob, circle = blob.to(torch.float32), circle.to(torch.float32)
    lead = torch.broadcast_shapes(blob.shape[:-1], circle.shape[:-1])
    g = blob_profile(blob * size, size, blob_sigma * size, 0.5)  # (..., 2, size)
    gx = g[..., 0, :].expand(*lead, size)
    gy = (g[..., 1, :] * blob_brightness).expand(*lead, size)
    out = new_frames((*lead, size, size), circle.device)
    torch.mul(gy[..., :, None], gx[..., None, :], out=out)
    c = _flat(circle, lead)
    if c.shape[0] == 0:
        return out
    cov, x0, y0, k = disc_coverage(_centre_default(c[:, 0], size), _centre_default(c[:, 1], size), radius * size, size)
    steps = torch.arange(k, device=c.device)[:, None]
    gxw = _flat(gx, lead).T.gather(0, x0 + steps)  # blob in the window, (k, B)
    gyw = _flat(gy, lead).T.gather(0, y0 + steps)
    # Coverage is clamped before the blob is added: rounding leaves it up to about 1e-6
    # below 0 at pixels the disc does not touch, which would dim the blob there.
    win = cov.clamp_(0.0, 1.0).addcmul_(gyw[:, None], gxw[None]).clamp_(max=1.0).view(k * k, -1)
    out.view(-1, size * size).scatter_(1, _flat_index(x0, y0, k, size), win.T)
    return out


def render_blob(blob, size: int, blob_sigma: float, blob_brightness: float, seed_compatible: bool) -> torch.Tensor:
    """The blob alone, as the renderers draw it where the circle does not reach.

    Parameters
    ----------
    blob : torch.Tensor
        float32 (..., 2) blob positions [x, y] in factor units.
    size : int
        Output size in pixels.
    blob_sigma, blob_brightness : float
        As ``render_default``.
    seed_compatible : bool
        Draw as ``render_seed_compatible`` (float64 blob at 2*size px,
        truncated to uint8, PIL's 2x reduction) instead of ``render_default``.

    Returns
    -------
    torch.Tensor
        float32 (..., size, size), values in [0, 1]: equal, pixel for pixel,
        to the frame the same renderer draws with a circle, wherever that
        circle leaves the pixel untouched.
    """
    lead = blob.shape[:-1]
    if seed_compatible:
        n = 2 * size
        g = blob_profile(blob.to(torch.float64) * n, n, blob_sigma * n, 0.0)
        img = (g[..., 1, :] * (blob_brightness * 255.0))[..., :, None] * g[..., 0, None, :]
        comp = img.reshape(-1, n, n).to(torch.int16)  # truncation toward zero, as the composite
        out = torch.div(pil_halve(comp).to(torch.float64), 255.0).to(torch.float32)
        return out.reshape(*lead, size, size)
    blob = blob.to(torch.float32)
    g = blob_profile(blob * size, size, blob_sigma * size, 0.5)
    gx = g[..., 0, :]
    gy = g[..., 1, :] * blob_brightness
    return gy[..., :, None] * gx[..., None, :]


def _quirk_disc(circle: torch.Tensor, n: int, radius: float) -> tuple:
    """The original's binary disc at n px on its window: (inside bool (k, k, B), x0, y0, k)."""
    c = circle.to(torch.float32)
    # Separate multiply and add (no fused multiply-add), in float32, as the original.
    cx = c[:, 0] * (0.75 * n) + 0.125 * n
    cy = c[:, 1] * (0.75 * n) + 0.125 * n
    r = torch.tensor(radius * n, dtype=torch.float32, device=c.device)
    reach = math.sqrt(float(r) ** 2 + float(r)) + 1.0  # margin for rounding
    k = min(n, math.ceil(2 * reach) + 1)
    x0, y0 = _window(cx, reach, k, n), _window(cy, reach, k, n)
    steps = torch.arange(k, device=c.device)[:, None]
    dx2 = ((x0 + steps).to(torch.float32) - cx) ** 2  # (k, B)
    dy2 = ((y0 + steps).to(torch.float32) - cy) ** 2
    # The stray '- r' evaluated as d^2 - r^2 <= r: in float32 this form (and not
    # d^2 - r <= r^2) decides the boundary pixels as the original's frames do.
    inside = (dy2[:, None] + dx2[None]) - r * r <= r
    return inside, x0, y0, k


def _paint_quirk_disc(images: torch.Tensor, circle: torch.Tensor, radius: float) -> None:
    """Set the original's disc pixels of images (B, n, n) to 255, in place."""
    n = images.shape[-1]
    inside, x0, y0, k = _quirk_disc(circle, n, radius)
    # max(image, 255 * inside): the blob never exceeds 255.
    paint = (inside.view(k * k, -1).T * 255).to(images.dtype)
    images.view(-1, n * n).scatter_reduce_(1, _flat_index(x0, y0, k, n), paint, reduce="amax")


def _original_blocks(blob, circle, n: int, radius: float, blob_sigma: float, blob_brightness: float):
    """Yield (lead, start, stop, composite): the original's n-px uint8 composite, block by block.

    composite is int16 (stop - start, n, n) in 0..255, a reused buffer: rows
    start..stop of the flattened leading dims ``lead``.
    """
    lead = torch.broadcast_shapes(blob.shape[:-1], circle.shape[:-1])
    g = blob_profile(blob.to(torch.float64) * n, n, blob_sigma * n, 0.0)
    gx, gy = _flat(g[..., 0, :], lead), _flat(g[..., 1, :] * (blob_brightness * 255.0), lead)
    c = _flat(circle, lead)
    chunk = max(1, min(_CHUNK_PIXELS // (n * n), c.shape[0]))
    blob_buf = torch.empty(chunk, n, n, dtype=torch.float64, device=c.device)
    comp_buf = torch.empty(chunk, n, n, dtype=torch.int16, device=c.device)
    for s in range(0, c.shape[0], chunk):
        e = min(s + chunk, c.shape[0])
        blob_img, comp = blob_buf[: e - s], comp_buf[: e - s]
        torch.mul(gy[s:e, :, None], gx[s:e, None, :], out=blob_img)
        comp.copy_(blob_img)  # truncation toward zero, as numpy's uint8 cast; the blob is <= 255
        _paint_quirk_disc(comp, c[s:e], radius)
        yield lead, s, e, comp


def original_composite(blob, circle, n_px: int, radius: float, blob_sigma: float,
                       blob_brightness: float) -> torch.Tensor:
    """The original's image before reduction: binary quirk disc over the blob, uint8 values.

    Parameters
    ----------
    blob, circle : torch.Tensor
        (..., 2) positions [x, y] in factor units; leading dims broadcast.
    n_px : int
        Image size in pixels (the original: 64).
    radius, blob_sigma, blob_brightness : float
        As ``render_default``; radius and sigma in image widths.

    Returns
    -------
    torch.Tensor
        int16 (..., n_px, n_px), values in 0..255.
    """
    lead = torch.broadcast_shapes(blob.shape[:-1], circle.shape[:-1])
    out = torch.empty(math.prod(lead), n_px, n_px, dtype=torch.int16, device=circle.device)
    for _, s, e, comp in _original_blocks(blob, circle, n_px, radius, blob_sigma, blob_brightness):
        out[s:e] = comp
    return out.reshape(*lead, n_px, n_px)


def render_seed_compatible(blob, circle, size: int, radius: float, blob_sigma: float,
                           blob_brightness: float) -> torch.Tensor:
    """The original generator: composite at 2*size px, reduced 2x as PIL does.

    Parameters and return as ``render_default``; values are multiples of
    1/255. The blob is computed in float64 (as the original's numpy code),
    the disc in float32 (as the original's frames require).
    """
    lead = torch.broadcast_shapes(blob.shape[:-1], circle.shape[:-1])
    out = new_frames((math.prod(lead), size, size), circle.device)
    for _, s, e, comp in _original_blocks(blob, circle, 2 * size, radius, blob_sigma, blob_brightness):
        # float64 division: correctly rounded on every device (CUDA divides by a scalar via its reciprocal)
        out[s:e] = torch.div(pil_halve(comp).to(torch.float64), 255.0)
    return out.reshape(*lead, size, size)


def masks(circle: torch.Tensor, size: int, radius: float, seed_compatible: bool) -> dict:
    """Region masks: the circle alone at radius r, r/2 and 1.5 r, thresholded at > 0.4.

    Parameters
    ----------
    circle : torch.Tensor
        float32 (B, 2) circle positions in factor units.

    Returns
    -------
    dict
        bool tensors (B, size, size) keyed ``inside``, ``edge``, ``object``,
        ``background``: object = disc(r); edge = object XOR disc(r/2);
        inside = object AND NOT edge; background = NOT disc(1.5 r).
    """
    discs = {}
    b = circle.shape[0]
    for key, scale in MASK_RADIUS_SCALES.items():
        if seed_compatible:
            alone = torch.zeros(b, 2 * size, 2 * size, dtype=torch.int16, device=circle.device)
            if b:
                _paint_quirk_disc(alone, circle, radius * scale)
            discs[key] = pil_halve(alone).to(torch.float64) / 255.0 > MASK_THRESHOLD
        else:
            alone = torch.zeros(b, size * size, dtype=torch.float32, device=circle.device)
            if b:
                cov, x0, y0, k = disc_coverage(
                    _centre_default(circle[:, 0], size), _centre_default(circle[:, 1], size),
                    radius * scale * size, size,
                )
                alone.scatter_(1, _flat_index(x0, y0, k, size), cov.permute(2, 0, 1).reshape(b, -1))
            discs[key] = alone.view(b, size, size) > MASK_THRESHOLD
    obj = discs["object"]
    edge = obj ^ discs["half"]
    return {"inside": obj & ~edge, "edge": edge, "object": obj, "background": ~discs["outer"]}
