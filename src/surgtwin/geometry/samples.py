"""Implant sampling for the live clearance path: surface and interior samples with weights.

Computed once per implant in its own frame (mm): area-weighted surface samples
(:func:`surface_samples`) and volume-weighted interior samples (:func:`interior_samples`, grid
cell centres classified by generalised winding numbers). Re-exported by
:mod:`surgtwin.geometry.clearance`.
"""

from __future__ import annotations

import numpy as np

from surgtwin.geometry.mesh import Mesh

__all__ = ["interior_samples", "surface_samples"]

_GOLDEN = 0.5 * (np.sqrt(5.0) - 1.0)


def _feature_edges(mesh: Mesh, feature_deg: float) -> np.ndarray:
    """Unique edges (vertex pairs) whose two faces meet at more than ``feature_deg`` degrees,
    and boundary or non-manifold edges."""
    f = mesh.faces
    v = mesh.points[f]
    normal = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-300)
    pairs = np.sort(f[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    face = np.repeat(np.arange(len(f)), 3)
    key = pairs[:, 0] * (int(f.max()) + 1) + pairs[:, 1]
    order = np.argsort(key, kind="stable")
    key_s = key[order]
    starts = np.flatnonzero(np.r_[True, key_s[1:] != key_s[:-1]])
    counts = np.diff(np.r_[starts, key_s.size])
    sharp = counts != 2
    two = np.flatnonzero(counts == 2)
    fa, fb = face[order[starts[two]]], face[order[starts[two] + 1]]
    cos = np.einsum("ij,ij->i", normal[fa], normal[fb])
    sharp[two] = cos < np.cos(np.deg2rad(feature_deg))
    return pairs[order[starts[sharp]]]


def surface_samples(
    mesh: Mesh, spacing_mm: float = 0.5, feature_deg: float = 20.0
) -> tuple[np.ndarray, np.ndarray]:
    """Area-uniform samples of a mesh's surface, with the area each one stands for.

    Each triangle gets ``max(1, round(area / spacing^2))`` points on a Fibonacci lattice mapped
    to the triangle by the area-preserving map of Osada et al. ("Shape distributions", ACM TOG
    21(4), 2002), each weighing ``area / n``; the lattice's first coordinate runs along the
    triangle's longest extent so that slivers are covered end to end. Vertices and points
    every ``spacing_mm`` along the sharp edges are added with zero weight, so that the minimum
    over the samples also sees rims and tips.

    Parameters
    ----------
    mesh : Mesh
        The implant in its own frame (mm).
    spacing_mm : float
        Target distance between samples, mm.
    feature_deg : float
        Edges whose faces meet at more than this angle (degrees) are sampled too.

    Returns
    -------
    points : numpy.ndarray, shape (n, 3)
        Sample positions in the mesh's frame, mm.
    weights : numpy.ndarray, shape (n,)
        Area per sample, mm^2; ``weights.sum()`` is the surface area.
    """
    v = mesh.points[mesh.faces]  # (m, 3, 3)
    area = 0.5 * np.linalg.norm(np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]), axis=1)
    # apex = vertex opposite the shortest edge, so sqrt(r1) sweeps the longest extent
    edge_len = np.linalg.norm(v[:, [1, 2, 0]] - v[:, [2, 0, 1]], axis=2)  # edge opposite vertex
    apex = np.argmin(edge_len, axis=1)
    rows = np.arange(len(v))
    a = v[rows, apex]
    b = v[rows, (apex + 1) % 3]
    c = v[rows, (apex + 2) % 3]
    n = np.maximum(1, np.rint(area / spacing_mm**2)).astype(np.int64)
    tri = np.repeat(np.arange(len(v)), n)
    start = np.cumsum(n) - n
    i = np.arange(n.sum()) - np.repeat(start, n)
    # each triangle's lattice starts at its own offset: thin neighbouring slivers (a cylinder's
    # sides) then sample different positions along their length instead of the same few
    offset = np.mod((np.arange(len(v)) + 1) * _GOLDEN, 1.0)
    r1 = (i + offset[tri]) / n[tri]
    r2 = np.mod(i * _GOLDEN + 0.5, 1.0)
    s = np.sqrt(r1)[:, None]
    pts = (1 - s) * a[tri] + s * (1 - r2[:, None]) * b[tri] + s * r2[:, None] * c[tri]
    weights = (area / n)[tri]
    # zero-weight vertices and points along the sharp edges (dihedral angle > feature_deg)
    e = _feature_edges(mesh, feature_deg)
    p0, p1 = mesh.points[e[:, 0]], mesh.points[e[:, 1]]
    k = np.maximum(1, np.ceil(np.linalg.norm(p1 - p0, axis=1) / spacing_mm)).astype(np.int64)
    edge = np.repeat(np.arange(len(e)), k - 1)
    j = np.arange(len(edge)) - np.repeat(np.cumsum(k - 1) - (k - 1), k - 1) + 1
    t = (j / k[edge])[:, None]
    edge_pts = p0[edge] + t * (p1[edge] - p0[edge])
    extra = np.concatenate([mesh.points, edge_pts])
    return np.concatenate([pts, extra]), np.concatenate([weights, np.zeros(len(extra))])


def _winding_numbers(mesh: Mesh, points: np.ndarray, chunk: int = 2_000_000) -> np.ndarray:
    """Generalised winding numbers (Jacobson, Kavan and Sorkine-Hornung, SIGGRAPH 2013) by the
    triangle solid angle of Van Oosterom and Strackee (IEEE TBME 30(2), 1983)."""
    tri = mesh.points[mesh.faces]
    out = np.zeros(len(points))
    step = max(1, chunk // max(1, len(tri)))
    for s in range(0, len(points), step):
        d = tri[None, :, :, :] - points[s : s + step, None, None, :]  # (p, m, 3, 3)
        ln = np.linalg.norm(d, axis=3)
        a, b, c = d[:, :, 0], d[:, :, 1], d[:, :, 2]
        det = np.einsum("pmi,pmi->pm", a, np.cross(b, c))
        den = (
            ln[:, :, 0] * ln[:, :, 1] * ln[:, :, 2]
            + np.einsum("pmi,pmi->pm", a, b) * ln[:, :, 2]
            + np.einsum("pmi,pmi->pm", b, c) * ln[:, :, 0]
            + np.einsum("pmi,pmi->pm", c, a) * ln[:, :, 1]
        )
        out[s : s + step] = np.arctan2(det, den).sum(axis=1) / (2.0 * np.pi)
    return out


def interior_samples(mesh: Mesh, spacing_mm: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres of a regular grid that lie inside a closed mesh, with their volume.

    Parameters
    ----------
    mesh : Mesh
        A closed, outward-oriented mesh in its own frame (mm).
    spacing_mm : float
        Grid spacing, mm.

    Returns
    -------
    points : numpy.ndarray, shape (n, 3)
        Inside points, mm.
    weights : numpy.ndarray, shape (n,)
        Volume per point, mm^3, rescaled so that ``weights.sum()`` equals the mesh's volume.
    """
    lo, hi = mesh.points.min(axis=0), mesh.points.max(axis=0)
    counts = np.maximum(1, np.ceil((hi - lo) / spacing_mm)).astype(int)
    axes = [lo[a] + (np.arange(counts[a]) + 0.5) * (hi[a] - lo[a]) / counts[a] for a in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    inside = grid[_winding_numbers(mesh, grid) > 0.5]
    if len(inside) == 0:
        return np.zeros((0, 3)), np.zeros(0)
    return inside, np.full(len(inside), abs(mesh.volume_mm3()) / len(inside))
