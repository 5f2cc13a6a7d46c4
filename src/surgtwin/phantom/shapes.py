"""Signed-distance primitives from which the digital phantom is drawn.

Every shape exposes ``sdf(x, y, z)``: an approximate signed distance in mm (negative inside,
zero on the surface, positive outside) evaluated on broadcastable coordinate arrays given in
patient LPS millimetres, and ``bounds()``: a conservative axis-aligned box around the shape.

The zero level set of every shape is exact; away from the surface the distance is an
approximation that is accurate to first order near the surface (good enough for thin shells
and partial-volume ramps of about one voxel).

Only IEEE-exact array operations (``+ - * /``, ``sqrt``, ``abs``, ``minimum``, ``maximum``) are
applied to arrays, so results are bit-identical on every platform: the phantom must be
byte-for-byte reproducible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

Vec3 = tuple[float, float, float]
ArrayLike = np.ndarray | float

X_AXIS: Vec3 = (1.0, 0.0, 0.0)
Y_AXIS: Vec3 = (0.0, 1.0, 0.0)
Z_AXIS: Vec3 = (0.0, 0.0, 1.0)


class Shape(Protocol):
    """A solid with a signed-distance function in patient LPS mm."""

    def sdf(self, x: ArrayLike, y: ArrayLike, z: ArrayLike) -> np.ndarray:
        """Signed distance in mm (negative inside) at the broadcast points ``(x, y, z)``."""
        ...

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper corners (mm, LPS) of a box containing the shape."""
        ...


def unit(v: Vec3) -> Vec3:
    """Return ``v`` scaled to unit length.

    Parameters
    ----------
    v : tuple of float
        A non-zero 3-vector.

    Returns
    -------
    tuple of float
        The unit vector along ``v``.
    """
    n = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
    return (v[0] / n, v[1] / n, v[2] / n)


def _project(dx: ArrayLike, dy: ArrayLike, dz: ArrayLike, axis: Vec3) -> ArrayLike:
    """Dot product of the offset ``(dx, dy, dz)`` with ``axis``, skipping zero components.

    Skipping exact zeros keeps axis-aligned shapes cheap (2-D instead of 3-D temporaries) and
    does not change any result.
    """
    out: ArrayLike = 0.0
    first = True
    for comp, a in ((dx, axis[0]), (dy, axis[1]), (dz, axis[2])):
        if a == 0.0:
            continue
        term = comp if a == 1.0 else comp * a
        out = term if first else out + term
        first = False
    return out


def ellipse_sdf(u: ArrayLike, v: ArrayLike, ru: ArrayLike, rv: ArrayLike) -> np.ndarray:
    """Approximate signed distance (mm) from ``(u, v)`` to an origin-centred ellipse.

    Parameters
    ----------
    u, v : array_like
        In-plane coordinates (mm) relative to the ellipse centre, broadcastable.
    ru, rv : array_like
        Semi-axes (mm) along ``u`` and ``v``; may vary per point (broadcastable).

    Returns
    -------
    numpy.ndarray
        ``k0 (k0 - 1) / k1`` with ``k0 = |(u/ru, v/rv)|`` and ``k1 = |(u/ru², v/rv²)|``: exact
        on the ellipse, exact everywhere for a circle, first-order accurate near the boundary.
        At the very centre the value is ``-min(ru, rv)``.
    """
    u = np.asarray(u, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    a = u / ru
    b = v / rv
    k0 = np.sqrt(a * a + b * b)
    c = a / ru
    e = b / rv
    k1 = np.sqrt(c * c + e * e)
    centre = k1 < 1e-12
    safe_k1 = np.where(centre, 1.0, k1)
    return np.where(centre, -np.minimum(ru, rv), k0 * (k0 - 1.0) / safe_k1)


@dataclass(frozen=True)
class Frame:
    """A local orthonormal frame ``(u, v, w)`` placed at ``origin`` (LPS mm)."""

    origin: Vec3
    u: Vec3
    v: Vec3
    w: Vec3

    @staticmethod
    def vertical(origin: Vec3) -> Frame:
        """Frame with ``u`` along +z (superior), ``v`` along +x and ``w`` along +y."""
        return Frame(origin, Z_AXIS, X_AXIS, Y_AXIS)

    @staticmethod
    def in_plane(origin: Vec3, direction: Vec3) -> Frame:
        """Frame with ``u`` along an axial-plane ``direction``, ``v`` in-plane, ``w`` = +z."""
        d = unit((direction[0], direction[1], 0.0))
        return Frame(origin, d, (-d[1], d[0], 0.0), Z_AXIS)

    def local(
        self, x: ArrayLike, y: ArrayLike, z: ArrayLike
    ) -> tuple[ArrayLike, ArrayLike, ArrayLike]:
        """Coordinates (mm) of LPS points in this frame."""
        dx = x - self.origin[0]
        dy = y - self.origin[1]
        dz = z - self.origin[2]
        return (
            _project(dx, dy, dz, self.u),
            _project(dx, dy, dz, self.v),
            _project(dx, dy, dz, self.w),
        )

    def extent(self, halves: Vec3) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned box (mm) of the local box with half sizes ``halves`` along u, v, w."""
        r = [0.0, 0.0, 0.0]
        for axis, h in zip((self.u, self.v, self.w), halves, strict=True):
            for j in range(3):
                if axis[j] != 0.0:
                    r[j] += abs(axis[j]) * h
        o = np.asarray(self.origin, dtype=np.float64)
        return o - np.asarray(r), o + np.asarray(r)


@dataclass(frozen=True)
class EllipticCylinder:
    """Elliptic cylinder along the frame's ``u`` axis, cross-section radii along ``v``/``w``.

    Parameters
    ----------
    frame : Frame
        Centre and orientation; the cylinder axis is ``frame.u``.
    radii : tuple of float
        Semi-axes (mm) of the cross-section along ``frame.v`` and ``frame.w``.
    half_length : float
        Half the length (mm) along ``frame.u``; ``math.inf`` for an infinite cylinder.
    """

    frame: Frame
    radii: tuple[float, float]
    half_length: float = math.inf

    def sdf(self, x: ArrayLike, y: ArrayLike, z: ArrayLike) -> np.ndarray:
        u, v, w = self.frame.local(x, y, z)
        d = ellipse_sdf(v, w, self.radii[0], self.radii[1])
        if math.isinf(self.half_length):
            return d
        return np.maximum(d, np.abs(u) - self.half_length)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self.frame.extent((self.half_length, self.radii[0], self.radii[1]))


@dataclass(frozen=True)
class Box:
    """Rectangular box with half sizes along the frame's ``u``, ``v`` and ``w`` axes (mm)."""

    frame: Frame
    halves: Vec3

    def sdf(self, x: ArrayLike, y: ArrayLike, z: ArrayLike) -> np.ndarray:
        u, v, w = self.frame.local(x, y, z)
        du = np.abs(u) - self.halves[0]
        dv = np.abs(v) - self.halves[1]
        dw = np.abs(w) - self.halves[2]
        return np.maximum(np.maximum(du, dv), dw)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self.frame.extent(self.halves)


@dataclass(frozen=True)
class Sphere:
    """Sphere of ``radius`` mm around ``centre`` (LPS mm)."""

    centre: Vec3
    radius: float

    def sdf(self, x: ArrayLike, y: ArrayLike, z: ArrayLike) -> np.ndarray:
        dx = x - self.centre[0]
        dy = y - self.centre[1]
        dz = z - self.centre[2]
        return np.sqrt(dx * dx + dy * dy + dz * dz) - self.radius

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        c = np.asarray(self.centre, dtype=np.float64)
        return c - self.radius, c + self.radius


def piecewise_linear(
    z: ArrayLike, knots: tuple[float, ...], values: tuple[float, ...]
) -> ArrayLike:
    """Piecewise-linear interpolation, clamped outside the knots, from elementwise operations.

    Parameters
    ----------
    z : array_like
        Where to interpolate (mm).
    knots : tuple of float
        Strictly increasing abscissae (mm).
    values : tuple of float
        Values at the knots.

    Returns
    -------
    array_like
        Interpolated values, ``values[0]`` below the first knot and ``values[-1]`` above the
        last one.
    """
    out: ArrayLike = np.zeros_like(np.asarray(z, dtype=np.float64)) + values[0]
    for i in range(len(knots) - 1):
        t = np.clip((z - knots[i]) / (knots[i + 1] - knots[i]), 0.0, 1.0)
        out = out + t * (values[i + 1] - values[i])
    return out


@dataclass(frozen=True)
class VerticalTube:
    """Vertical (along z) elliptic tube whose radii vary piecewise-linearly with z.

    Parameters
    ----------
    centre_xy : tuple of float
        Centre (mm, LPS) of every cross-section.
    z_knots : tuple of float
        Increasing z positions (mm) at which the radii are given.
    rx, ry : tuple of float
        Semi-axes (mm) along x and y at the knots; clamped beyond the end knots.
    """

    centre_xy: tuple[float, float]
    z_knots: tuple[float, ...]
    rx: tuple[float, ...]
    ry: tuple[float, ...]

    def radii_at(self, z: ArrayLike) -> tuple[ArrayLike, ArrayLike]:
        """Semi-axes (mm) along x and y at height ``z`` (mm)."""
        return piecewise_linear(z, self.z_knots, self.rx), piecewise_linear(
            z, self.z_knots, self.ry
        )

    def sdf(self, x: ArrayLike, y: ArrayLike, z: ArrayLike) -> np.ndarray:
        rx, ry = self.radii_at(z)
        return ellipse_sdf(x - self.centre_xy[0], y - self.centre_xy[1], rx, ry)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        r = np.array([max(self.rx), max(self.ry), math.inf])
        c = np.array([self.centre_xy[0], self.centre_xy[1], 0.0])
        return c - r, c + r
