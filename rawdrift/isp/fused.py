"""Fused CPU kernels for frozen pipelines: the whole static data model, compiled, image by image.

Op-by-op torch on a 2-core CPU is bound by memory traffic and per-op cost: every
element-wise op reads and writes a whole 256x256 plane, and a pipeline makes a few
hundred torch calls per image (``rawdrift/bench.py`` has the measurements). Here each image
runs through compiled loops (numba) that keep its planes in cache and do the
stencils of DM, SH and DN straight from padded planes. The arithmetic follows
the torch path op for op where the result depends on it: Menon's
horizontal/vertical decision is computed in float64 in scipy's order of
additions, so it is bit-identical to the reference; everything else is float32
and agrees with the torch path to float32 rounding.

This path has no autograd. :class:`~rawdrift.isp.pipeline.Pipeline` uses it only
when no gradient is needed, on CPU, for float32 input, with SH and DN on the luma
(the default) and the frozen gamma; everything else takes the torch path. Set
``RAWDRIFT_FUSED=0`` in the environment (or ``Pipeline.fused = False``) to turn it
off. Where numba is missing (it is a dependency, but an install may skip it) every
pipeline runs on torch ops.

Site classes (``cls``): 0 red, 1 green in a red row (so in a blue column), 2 green
in a blue row (so in a red column), 3 blue. They hold for all four Bayer patterns.
"""

from __future__ import annotations

import functools
import os

import numpy as np

try:  # optional: without numba every pipeline runs on torch ops
    from numba import njit

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised where numba is absent
    HAVE_NUMBA = False

    def njit(*args, **kwargs):  # noqa: D103 - a stand-in decorator, never called at runtime
        return (lambda f: f) if not args or not callable(args[0]) else args[0]


__all__ = ["HAVE_NUMBA", "enabled", "plan", "site_classes", "process_chunk", "DM_CODES", "SH_CODES", "DN_CODES"]

DM_CODES = {"bilinear": 0, "menon2007": 1, "malvar2004": 2}
SH_CODES = {"s": 0, "u": 1}
DN_CODES = {"ga": 0, "me": 1}

#: Whether the compiled kernels are cached on disk (False where numba finds no writable cache
#: location, e.g. a read-only install with an unwritable home: then they compile once per process).
CACHED = True


def _kernel(f):
    """``njit`` without the GIL, cached on disk where numba can write its cache."""
    global CACHED
    try:
        return njit(cache=True, nogil=True)(f)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        CACHED = False
        return njit(nogil=True)(f)

_THIRD = np.float32(1.0 / 3.0)
_HALF = np.float32(0.5)
_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)


def enabled() -> bool:
    """Whether the fused kernels may be used: numba importable and ``RAWDRIFT_FUSED`` not ``0``."""
    return HAVE_NUMBA and os.environ.get("RAWDRIFT_FUSED", "1") != "0"


@functools.lru_cache(maxsize=32)
def site_classes(h: int, w: int, pattern: str) -> tuple[np.ndarray, np.ndarray]:
    """``(H, W)`` site classes and ``(H + 2, W + 2)`` colour codes (0 R, 1 G, 2 B) of the mosaic
    padded by one pixel in scipy ``"reflect"`` mode (the bilinear reference filters such a padding
    of the sparse planes, which breaks the Bayer alternation at the border). Read-only, cached."""
    colour = np.array([{"R": 0, "G": 1, "B": 2}[c] for c in pattern], dtype=np.int8).reshape(2, 2)
    iy, ix = np.arange(h) % 2, np.arange(w) % 2
    col = colour[iy[:, None], ix[None, :]]
    red_row = (colour == 0).any(axis=1)[iy][:, None]
    cls = np.where(col == 0, 0, np.where(col == 2, 3, np.where(red_row, 1, 2))).astype(np.int8)

    def reflect(n):  # -1 -> 0 and n -> n - 1
        i = np.arange(-1, n + 1)
        return np.where(i < 0, -i - 1, np.where(i >= n, 2 * n - 1 - i, i))

    colp = np.ascontiguousarray(col[reflect(h)[:, None], reflect(w)[None, :]])
    for a in (cls, colp):
        a.setflags(write=False)
    return cls, colp


# ----------------------------------------------------------------------------- padding


@njit(inline="always")
def _src(i, n, mirror):
    """Source index of position ``i`` of an axis of length ``n`` (``|overhang| < n``):
    scipy ``"mirror"`` (d c b | a b c d) or ``"reflect"`` (c b a | a b c d)."""
    if i < 0:
        return -i if mirror else -i - 1
    if i >= n:
        return 2 * n - 2 - i if mirror else 2 * n - 1 - i
    return i


@_kernel
def _ring(a, p, mirror):
    """Fill the ``p``-pixel border ring of padded ``a`` (``(H + 2p, W + 2p)``) from its interior."""
    hp, wp = a.shape
    h, w = hp - 2 * p, wp - 2 * p
    for i in range(p, p + h):
        for k in range(p):
            a[i, p - 1 - k] = a[i, p + _src(-1 - k, w, mirror)]
            a[i, p + w + k] = a[i, p + _src(w + k, w, mirror)]
    for k in range(p):
        si = p + _src(-1 - k, h, mirror)
        so = p + _src(h + k, h, mirror)
        for j in range(wp):
            a[p - 1 - k, j] = a[si, j]
            a[p + h + k, j] = a[so, j]


# ----------------------------------------------------------------------------- demosaicing


@_kernel
def _bilinear(x, colp, k, d, xp, sp):
    """Bilinear DM: each colour's sparse plane (reflect-padded) correlated with its 3x3 kernel ``k[c]``.

    ``xp``/``sp`` are ``(H + 2, W + 2)`` scratch; ``colp`` the padded colour codes of :func:`site_classes`.
    """
    h, w = x.shape
    for i in range(h):
        for j in range(w):
            xp[i + 1, j + 1] = x[i, j]
    _ring(xp, 1, False)
    for c in range(3):
        for i in range(h + 2):
            for j in range(w + 2):
                sp[i, j] = xp[i, j] if colp[i, j] == c else _ZERO
        k00, k01, k02 = k[c, 0, 0], k[c, 0, 1], k[c, 0, 2]
        k10, k11, k12 = k[c, 1, 0], k[c, 1, 1], k[c, 1, 2]
        k20, k21, k22 = k[c, 2, 0], k[c, 2, 1], k[c, 2, 2]
        for i in range(h):
            for j in range(w):
                d[c, i, j] = (
                    k00 * sp[i, j] + k01 * sp[i, j + 1] + k02 * sp[i, j + 2]
                    + k10 * sp[i + 1, j] + k11 * sp[i + 1, j + 1] + k12 * sp[i + 1, j + 2]
                    + k20 * sp[i + 2, j] + k21 * sp[i + 2, j + 1] + k22 * sp[i + 2, j + 2]
                )


@_kernel
def _malvar(x, cls, d, xp):
    """Malvar-He-Cutler DM from five neighbour sums of the reflect-padded mosaic (as the torch path)."""
    h, w = x.shape
    for i in range(h):
        for j in range(w):
            xp[i + 2, j + 2] = x[i, j]
    _ring(xp, 2, False)
    e = np.float32(0.125)
    for i in range(h):
        for j in range(w):
            ii, jj = i + 2, j + 2
            c = xp[ii, jj]
            h1 = xp[ii, jj - 1] + xp[ii, jj + 1]
            h2 = xp[ii, jj - 2] + xp[ii, jj + 2]
            v1 = xp[ii - 1, jj] + xp[ii + 1, jj]
            v2 = xp[ii - 2, jj] + xp[ii + 2, jj]
            d1 = xp[ii - 1, jj - 1] + xp[ii - 1, jj + 1] + xp[ii + 1, jj - 1] + xp[ii + 1, jj + 1]
            hv2 = h2 + v2
            base = c * np.float32(5.0) - d1
            s = cls[i, j]
            if s == 0 or s == 3:
                g = (c * np.float32(4.0) + (h1 + v1) * np.float32(2.0) - hv2) * e
                other = (c * np.float32(6.0) + d1 * np.float32(2.0) - hv2 * np.float32(1.5)) * e
                if s == 0:
                    d[0, i, j], d[1, i, j], d[2, i, j] = c, g, other
                else:
                    d[0, i, j], d[1, i, j], d[2, i, j] = other, g, c
            else:
                at_row = (base + h1 * np.float32(4.0) - h2 + v2 * _HALF) * e
                at_col = (base + v1 * np.float32(4.0) - v2 + h2 * _HALF) * e
                if s == 1:  # green in a red row: red along the row, blue along the column
                    d[0, i, j], d[1, i, j], d[2, i, j] = at_row, c, at_col
                else:
                    d[0, i, j], d[1, i, j], d[2, i, j] = at_col, c, at_row


@_kernel
def _menon_decision(x, cls, horiz, g, xp, chp, cvp, dhp, dvp):
    """Menon steps 1-2 in float64, scipy's order of additions, into ``horiz`` (True: the horizontal
    estimate wins, ties included) and ``g[0]``/``g[1]`` (the horizontal/vertical green estimates
    rounded once to float32). ``xp`` ... ``dvp`` are ``(H + 4, W + 4)`` float64 scratch, the
    rings of ``dhp``/``dvp`` zero."""
    h, w = x.shape
    for i in range(h):
        for j in range(w):
            xp[i + 2, j + 2] = np.float64(x[i, j])
    _ring(xp, 2, True)
    for i in range(h):
        for j in range(w):
            ii, jj = i + 2, j + 2
            c = xp[ii, jj]
            s = cls[i, j]
            if s == 1 or s == 2:
                gh = c
                gv = c
            else:
                gh = (xp[ii, jj - 1] + xp[ii, jj + 1]) * 0.5 + (c * 0.5 + (xp[ii, jj - 2] + xp[ii, jj + 2]) * -0.25)
                gv = (xp[ii - 1, jj] + xp[ii + 1, jj]) * 0.5 + (c * 0.5 + (xp[ii - 2, jj] + xp[ii + 2, jj]) * -0.25)
            chp[ii, jj] = c - gh
            cvp[ii, jj] = c - gv
            dhp[ii, jj] = gh  # the estimates, parked until rounded below (the ring stays zero)
            dvp[ii, jj] = gv
    for i in range(h):  # the estimates rounded once to float32, both kept in g's two halves
        for j in range(w):
            g[0, i, j] = np.float32(dhp[i + 2, j + 2])
            g[1, i, j] = np.float32(dvp[i + 2, j + 2])
    _ring(chp, 2, True)
    _ring(cvp, 2, True)
    for i in range(h):
        for j in range(w):
            ii, jj = i + 2, j + 2
            dhp[ii, jj] = abs(chp[ii, jj] - chp[ii, jj + 2])
            dvp[ii, jj] = abs(cvp[ii, jj] - cvp[ii + 2, jj])
    for i in range(h):  # dhp/dvp rings stay zero: scipy "constant" borders
        for j in range(w):
            sh = dhp[i, j]
            sh = sh + dhp[i, j + 2]
            sh = sh + dhp[i + 1, j + 1]
            sh = sh + dhp[i + 2, j] * 3.0
            sh = sh + dhp[i + 2, j + 2] * 3.0
            sh = sh + dhp[i + 3, j + 1]
            sh = sh + dhp[i + 4, j]
            sh = sh + dhp[i + 4, j + 2]
            sv = dvp[i, j]
            sv = sv + dvp[i, j + 2] * 3.0
            sv = sv + dvp[i, j + 4]
            sv = sv + dvp[i + 1, j + 1]
            sv = sv + dvp[i + 1, j + 3]
            sv = sv + dvp[i + 2, j]
            sv = sv + dvp[i + 2, j + 2] * 3.0
            sv = sv + dvp[i + 2, j + 4]
            horiz[i, j] = sv >= sh


@njit(inline="always")
def _h(a, ii, jj):
    """``(a[j - 1] + a[j + 1]) / 2`` along the row of padded ``a``."""
    return (a[ii, jj - 1] + a[ii, jj + 1]) * _HALF


@njit(inline="always")
def _v(a, ii, jj):
    return (a[ii - 1, jj] + a[ii + 1, jj]) * _HALF


@njit(inline="always")
def _along(a, ii, jj, horizontal):
    """Menon's 3-tap mean along the decided direction (scipy symmetric order)."""
    if horizontal:
        return a[ii, jj] * _THIRD + (a[ii, jj - 1] + a[ii, jj + 1]) * _THIRD
    return a[ii, jj] * _THIRD + (a[ii - 1, jj] + a[ii + 1, jj]) * _THIRD


@_kernel
def _differences(d, p1, p2):
    """``p1 = R - G`` and ``p2 = B - G`` of ``d`` into ``(H + 2, W + 2)`` planes with mirror rings."""
    _, h, w = d.shape
    for i in range(h):
        for j in range(w):
            p1[i + 1, j + 1] = d[0, i, j] - d[1, i, j]
            p2[i + 1, j + 1] = d[2, i, j] - d[1, i, j]
    _ring(p1, 1, True)
    _ring(p2, 1, True)


@_kernel
def _menon(x, cls, d, xp, chp, cvp, dhp, dvp, horiz, p1, p2, p3):
    """Menon (2007) DM with the refining step, as the torch no-grad path."""
    h, w = x.shape
    _menon_decision(x, cls, horiz, d, xp, chp, cvp, dhp, dvp)
    # d[0], d[1] hold the float32 horizontal/vertical greens; d[1] becomes green
    for i in range(h):
        for j in range(w):
            d[1, i, j] = d[0, i, j] if horiz[i, j] else d[1, i, j]
    # 3. red and blue from colour differences (p1: R - G, p2: B - G, mirror rings)
    for i in range(h):
        for j in range(w):
            s = cls[i, j]
            g = d[1, i, j]
            r = x[i, j] if s == 0 else _ZERO
            b = x[i, j] if s == 3 else _ZERO
            p1[i + 1, j + 1] = r - g
            p2[i + 1, j + 1] = b - g
    _ring(p1, 1, True)
    _ring(p2, 1, True)
    for i in range(h):
        for j in range(w):
            ii, jj = i + 1, j + 1
            s = cls[i, j]
            g = d[1, i, j]
            if s == 0:
                r, b = x[i, j], _ZERO
            elif s == 3:
                r, b = _ZERO, x[i, j]
            elif s == 1:  # green in a red row
                r, b = g + _h(p1, ii, jj), g + _v(p2, ii, jj)
            else:
                r, b = g + _v(p1, ii, jj), g + _h(p2, ii, jj)
            d[0, i, j] = r
            d[2, i, j] = b
            p3[ii, jj] = r - b
    _ring(p3, 1, True)
    for i in range(h):
        for j in range(w):
            s = cls[i, j]
            if s == 0 or s == 3:
                ii, jj = i + 1, j + 1
                rb = _h(p3, ii, jj) if horiz[i, j] else _v(p3, ii, jj)
                if s == 3:
                    d[0, i, j] = d[2, i, j] + rb
                else:
                    d[2, i, j] = d[0, i, j] - rb
    # 4. refining step
    _differences(d, p1, p2)
    for i in range(h):
        for j in range(w):
            s = cls[i, j]
            if s == 0:
                d[1, i, j] = d[0, i, j] - _along(p1, i + 1, j + 1, horiz[i, j])
            elif s == 3:
                d[1, i, j] = d[2, i, j] - _along(p2, i + 1, j + 1, horiz[i, j])
    _differences(d, p1, p2)
    for i in range(h):
        for j in range(w):
            s = cls[i, j]
            ii, jj = i + 1, j + 1
            g = d[1, i, j]
            if s == 1:  # green in a red row, blue column
                d[0, i, j] = g + _h(p1, ii, jj)
                d[2, i, j] = g + _v(p2, ii, jj)
            elif s == 2:
                d[0, i, j] = g + _v(p1, ii, jj)
                d[2, i, j] = g + _h(p2, ii, jj)
    for i in range(h):
        for j in range(w):
            p1[i + 1, j + 1] = d[0, i, j] - d[2, i, j]
    _ring(p1, 1, True)
    for i in range(h):
        for j in range(w):
            s = cls[i, j]
            if s == 3:
                d[0, i, j] = d[2, i, j] + _along(p1, i + 1, j + 1, horiz[i, j])
            elif s == 0:
                d[2, i, j] = d[0, i, j] - _along(p1, i + 1, j + 1, horiz[i, j])


# ----------------------------------------------------------------------------- luma filters


@njit(inline="always")
def _sort2(a, b):
    return (a, b) if a <= b else (b, a)


@njit(inline="always")
def _median9(p0, p1, p2, p3, p4, p5, p6, p7, p8):
    """Median of nine values by a 19-exchange network (Paeth / Devillard's ``opt_med9``)."""
    p1, p2 = _sort2(p1, p2)
    p4, p5 = _sort2(p4, p5)
    p7, p8 = _sort2(p7, p8)
    p0, p1 = _sort2(p0, p1)
    p3, p4 = _sort2(p3, p4)
    p6, p7 = _sort2(p6, p7)
    p1, p2 = _sort2(p1, p2)
    p4, p5 = _sort2(p4, p5)
    p7, p8 = _sort2(p7, p8)
    p0, p3 = _sort2(p0, p3)
    p5, p8 = _sort2(p5, p8)
    p4, p7 = _sort2(p4, p7)
    p3, p6 = _sort2(p3, p6)
    p1, p4 = _sort2(p1, p4)
    p2, p5 = _sort2(p2, p5)
    p4, p7 = _sort2(p4, p7)
    p4, p2 = _sort2(p4, p2)
    p6, p4 = _sort2(p6, p4)
    p4, p2 = _sort2(p4, p2)
    return p4


@_kernel
def _luma(d, t, sh, ksh, g1, amount, dn, kdn, y2, zp, yp, q, zd):
    """Y of ``d`` through SH then DN into ``y2`` (``(H, W)``). Scratch (all C-contiguous, which
    keeps the loops vectorised): ``zp`` ``(H + 2, W + 2)`` with a zero ring; ``yp`` and ``q`` for the
    unsharp Gaussian of radius ``r``, ``(H + 2r, W + 2r)`` and ``(H, W + 2r)``; ``zd`` ``(H + 2p, W + 2p)``
    for DN (``p`` 2 for the 5x5 kernel, 1 for the median)."""
    _, h, w = d.shape
    t0, t1, t2 = t[0, 0], t[0, 1], t[0, 2]
    if sh == 0:  # 3x3 kernel, zero-filled border (scipy "constant")
        for i in range(h):
            for j in range(w):
                zp[i + 1, j + 1] = t0 * d[0, i, j] + t1 * d[1, i, j] + t2 * d[2, i, j]
        k00, k01, k02 = ksh[0, 0], ksh[0, 1], ksh[0, 2]
        k10, k11, k12 = ksh[1, 0], ksh[1, 1], ksh[1, 2]
        k20, k21, k22 = ksh[2, 0], ksh[2, 1], ksh[2, 2]
        for i in range(h):
            for j in range(w):
                y2[i, j] = (
                    k00 * zp[i, j] + k01 * zp[i, j + 1] + k02 * zp[i, j + 2]
                    + k10 * zp[i + 1, j] + k11 * zp[i + 1, j + 1] + k12 * zp[i + 1, j + 2]
                    + k20 * zp[i + 2, j] + k21 * zp[i + 2, j + 1] + k22 * zp[i + 2, j + 2]
                )
    else:  # unsharp mask: y + amount (y - gauss(y)), separable Gaussian, reflect border
        r = (g1.shape[0] - 1) // 2
        for i in range(h):
            for j in range(w):
                yp[i + r, j + r] = t0 * d[0, i, j] + t1 * d[1, i, j] + t2 * d[2, i, j]
        _ring(yp, r, False)
        wp = w + 2 * r
        for i in range(h):  # columns first (scipy's axis 0), over the padded width
            for j in range(wp):  # (loops over j innermost: they vectorise)
                q[i, j] = g1[0] * yp[i, j]
            for k in range(1, 2 * r + 1):
                gk = g1[k]
                for j in range(wp):
                    q[i, j] += gk * yp[i + k, j]
        for i in range(h):
            for j in range(w):
                y2[i, j] = g1[0] * q[i, j]
            for k in range(1, 2 * r + 1):
                gk = g1[k]
                for j in range(w):
                    y2[i, j] += gk * q[i, j + k]
            for j in range(w):
                y = yp[i + r, j + r]
                y2[i, j] = y + (y - y2[i, j]) * amount
    # DN on y2, reflect border
    p = (zd.shape[0] - h) // 2
    for i in range(h):
        for j in range(w):
            zd[i + p, j + p] = y2[i, j]
    _ring(zd, p, False)
    if dn == 0:
        for i in range(h):
            for j in range(w):
                y2[i, j] = _ZERO
            for a in range(5):
                for b in range(5):
                    kab = kdn[a, b]
                    for j in range(w):
                        y2[i, j] += kab * zd[i + a, j + b]
    else:
        for i in range(h):
            for j in range(w):
                y2[i, j] = _median9(
                    zd[i, j], zd[i, j + 1], zd[i, j + 2],
                    zd[i + 1, j], zd[i + 1, j + 1], zd[i + 1, j + 2],
                    zd[i + 2, j], zd[i + 2, j + 1], zd[i + 2, j + 2],
                )


@_kernel
def _to_rgb(d, t, ti, y2, o):
    """``o = clip(to_rgb @ (y2, U, V), 0, 1)`` with ``U, V`` from ``to_yuv @ d``."""
    _, h, w = d.shape
    u0, u1, u2 = t[1, 0], t[1, 1], t[1, 2]
    v0, v1, v2 = t[2, 0], t[2, 1], t[2, 2]
    for c in range(3):
        a, b, e = ti[c, 0], ti[c, 1], ti[c, 2]
        for i in range(h):
            for j in range(w):
                r, g, bl = d[0, i, j], d[1, i, j], d[2, i, j]
                u = u0 * r + u1 * g + u2 * bl
                v = v0 * r + v1 * g + v2 * bl
                z = a * y2[i, j] + b * u + e * v
                o[c, i, j] = min(max(z, _ZERO), _ONE)


@_kernel
def process_chunk(raw, out, bl, cls, colp, dm, kbil, t, ti, sh, ksh, g1, amount, dn, kdn):
    """Run ``n`` images of ``raw`` (``(n, H, W)`` float32) through BL, DM, the fused 3x3 matrix,
    SH and DN on the luma, back to RGB and clip, into ``out`` (``(n, 3, H, W)`` float32; gamma is
    applied by the caller). ``bl`` ``(2, 2)`` per 2x2 phase; ``cls``/``colp`` from
    :func:`site_classes`; ``dm``/``sh``/``dn`` from the ``*_CODES`` tables; ``kbil`` ``(3, 3, 3)``
    bilinear correlation kernels; ``t``/``ti`` the to-YUV and to-RGB matrices; ``ksh`` the 3x3
    sharpening correlation kernel; ``g1`` the unsharp Gaussian; ``kdn`` the 5x5 blur kernel.
    Needs ``H, W >= max(r, 2) + 2`` with ``r = len(g1) // 2``, as :func:`plan` checks."""
    n, h, w = raw.shape
    r = (g1.shape[0] - 1) // 2
    x = np.empty((h, w), np.float32)
    d = np.empty((3, h, w), np.float32)
    y2 = np.empty((h, w), np.float32)
    # scratch of exact shapes: slices of a larger array would not be C-contiguous for numba
    zp = np.zeros((h + 2, w + 2), np.float32)  # its ring stays zero
    yp = np.empty((h + 2 * r, w + 2 * r), np.float32)
    q = np.empty((h, w + 2 * r), np.float32)
    p = 2 if dn == 0 else 1
    zd = np.empty((h + 2 * p, w + 2 * p), np.float32)
    xp1 = np.empty((h + 2, w + 2), np.float32)
    sp = np.empty((h + 2, w + 2), np.float32)
    xp = np.empty((h + 4, w + 4), np.float32)
    m64 = 1 if dm == 1 else 0  # Menon's scratch, empty otherwise
    xp64 = np.empty((m64 * (h + 4), w + 4), np.float64)
    chp = np.empty((m64 * (h + 4), w + 4), np.float64)
    cvp = np.empty((m64 * (h + 4), w + 4), np.float64)
    dhp = np.zeros((m64 * (h + 4), w + 4), np.float64)  # zero rings: "constant" borders
    dvp = np.zeros((m64 * (h + 4), w + 4), np.float64)
    horiz = np.empty((m64 * h, w), np.bool_)
    p1 = np.empty((m64 * (h + 2), w + 2), np.float32)
    p2 = np.empty((m64 * (h + 2), w + 2), np.float32)
    for m in range(n):
        for i in range(h):
            bi = i % 2
            for j in range(w):
                x[i, j] = raw[m, i, j] - bl[bi, j % 2]
        if dm == 0:
            _bilinear(x, colp, kbil, d, xp1, sp)
        elif dm == 2:
            _malvar(x, cls, d, xp)
        else:
            _menon(x, cls, d, xp64, chp, cvp, dhp, dvp, horiz, p1, p2, sp)
        _luma(d, t, sh, ksh, g1, amount, dn, kdn, y2, zp, yp, q, zd)
        _to_rgb(d, t, ti, y2, out[m])


def plan(pipeline, raw, prep: dict):
    """The arguments of :func:`process_chunk` for ``pipeline`` on ``raw``, or ``None`` where the
    fused path does not apply (then the torch path runs): numba missing or disabled, not float32 on
    CPU, SH/DN not both luma-only in their default modes, a non-default unsharp clipping or median
    size, a differentiable gamma, one black level per image, or an image too small for the
    filters' borders.

    ``prep`` is :meth:`Pipeline._prepare`'s dictionary (no-grad form)."""
    import torch

    from .demosaic import Demosaic
    from .denoise import Denoise, gaussian_kernel1d
    from .gamma import GammaCorrection
    from .sharpen import DEFAULT_MODES, Sharpen

    if not (enabled() and getattr(pipeline, "fused", True)):
        return None
    dm, sh, dn, gc = pipeline.demosaic, pipeline.sharpen, pipeline.denoise, pipeline.gamma_correction
    kinds = ((dm, Demosaic), (sh, Sharpen), (dn, Denoise), (gc, GammaCorrection))
    if not all(type(m) is k for m, k in kinds):
        return None  # a subclass or custom module: only the torch path knows what it does
    if raw.dtype != torch.float32 or raw.device.type != "cpu" or prep["bl_map"].shape[0] != 1:
        return None  # (one black level per image: not in the kernels)
    if sh.channels != "y" or dn.channels != "y" or gc.differentiable:
        return None
    if sh.mode != DEFAULT_MODES[sh.method] or dn.mode != "reflect":
        return None
    if (sh.method == "u" and not sh.preserve_range) or (dn.method == "me" and dn.size != 3):
        return None
    h, w = raw.shape[-2:]
    g1 = gaussian_kernel1d(sh.radius).numpy().astype(np.float32) if sh.method == "u" else np.ones(1, np.float32)
    if min(h, w) < max(len(g1) // 2, 2) + 2:
        return None
    cls, colp = site_classes(h, w, dm.pattern)

    def f32(t):
        return np.ascontiguousarray(t.detach().to(torch.float32).cpu().numpy())

    kbil = f32(dm.kernels.flip(-1, -2)) if dm.method == "bilinear" else np.zeros((3, 3, 3), np.float32)
    ksh = f32(sh.kernel.flip(-1, -2)) if sh.method == "s" else np.zeros((3, 3), np.float32)
    kdn = f32(dn.kernel) if dn.method == "ga" else np.zeros((5, 5), np.float32)
    bl = f32(prep["bl_map"][0, 0, :2, :2])
    return (
        bl, cls, colp, DM_CODES[dm.method], kbil, f32(prep["to_yuv"]), f32(prep["to_rgb"]),
        SH_CODES[sh.method], ksh, g1, np.float32(sh.amount), DN_CODES[dn.method], kdn,
    )
