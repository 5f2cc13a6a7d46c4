"""Implant sampling for the live clearance path: surface and interior samples with weights.

Computed once per implant in its own frame (mm): area-weighted surface samples
(:func:`surface_samples`), volume-weighted interior samples (:func:`interior_samples`, grid
cell centres classified by generalised winding numbers) and the adaptive interior cells of the
penetrating volume (:func:`interior_cells`). Re-exported by :mod:`surgtwin.geometry.clearance`.

Penetrating volume
------------------
Counting interior samples inside a structure is off by up to a layer of samples wherever the
structure's surface crosses the implant: at 1.25 mm spacing, 5-40 % for intrusions of a few
tens of mm³. :class:`InteriorCells` keeps the implant's interior as cubic cells (1.25 mm) and,
in each cell that the implant's surface crosses, sub-cells (a quarter of the edge) weighted by
how much of each lies inside the implant. Per pose, a cell whose centre lies deeper than its
half diagonal inside (outside) the structure counts whole (not at all): a signed distance is
1-Lipschitz, so no part of it can be on the other side (nearly so for an interpolated
field). Only the cells straddling the structure's surface are refined: the distance is sampled
at the centres of the cell's 8 octants and interpolated (trilinearly, exact for a plane) to its
sub-cells, and each sub-cell counts with the fraction ``clamp(1/2 - d / s, 0, 1)`` of its
volume, ``d`` its centre's signed distance and ``s`` its edge, which is exact for a surface
parallel to a face of the sub-cell and, summed over a lattice, for any plane; the
implant's own surface enters the same way (in the weights), scaled so that the weights add up
to the mesh's volume. On analytic intrusions of a 6.5 mm cylinder (its tip into a sphere, its
side grazing a sphere, tilted through a plane; 15-230 mm³) this is within 2 % (through a plane:
exact), where counting samples 1.25 mm apart is up to 36 % off; slivers under about 0.5 mm
thick stay several per cent off.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from surgtwin.geometry.mesh import Mesh

__all__ = ["InteriorCells", "interior_cells", "interior_samples", "surface_samples"]

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


@dataclass(eq=False)
class InteriorCells:
    """The interior of an implant as cubic cells with sub-cells, in its own frame (mm).

    Attributes
    ----------
    centres : numpy.ndarray, shape (n, 3)
        Centres of the cells holding part of the implant, mm.
    volumes : numpy.ndarray, shape (n,)
        Implant volume within each cell, mm³; ``volumes.sum()`` is the mesh's volume.
    sub_offsets : numpy.ndarray, shape (m, 3)
        Sub-cell centres relative to their cell's centre, mm (m = subdivisions³).
    sub_weights : numpy.ndarray, shape (n, m)
        Implant volume within each sub-cell, mm³ (rows add up to ``volumes``).
    octant_offsets : numpy.ndarray, shape (8, 3)
        Centres of a cell's octants relative to its centre, mm (where the distance is sampled).
    octant_to_sub : numpy.ndarray, shape (m, 8)
        Trilinear weights taking the 8 octant values to the m sub-cell centres.
    spacing_mm : float
        Cell edge, mm.
    sub_spacing_mm : float
        Sub-cell edge, mm.
    """

    centres: np.ndarray
    volumes: np.ndarray
    sub_offsets: np.ndarray
    sub_weights: np.ndarray
    octant_offsets: np.ndarray
    octant_to_sub: np.ndarray
    spacing_mm: float
    sub_spacing_mm: float

    @property
    def radius_mm(self) -> float:
        """Half the diagonal of a cell, mm."""
        return 0.5 * float(np.sqrt(3.0)) * self.spacing_mm

    @property
    def volume_mm3(self) -> float:
        return float(self.volumes.sum())

    def volume_inside(
        self, distance: Callable[[np.ndarray], np.ndarray], pose: np.ndarray | None = None
    ) -> float:
        """Volume of the posed implant inside a structure, mm³.

        Parameters
        ----------
        distance : callable
            ``distance(points (k, 3)) -> (k,)``: the structure's signed distance, mm, negative
            inside, at points in the structure's frame (e.g. a field's ``sample(...)[0]``).
        pose : numpy.ndarray, shape (4, 4), optional
            Implant frame to the structure's frame (default identity).
        """
        pose = np.eye(4) if pose is None else np.asarray(pose, dtype=np.float64)
        rot, shift = pose[:3, :3], pose[:3, 3]
        centres = self.centres @ rot.T + shift
        d = np.asarray(distance(centres), dtype=np.float64)
        r = self.radius_mm
        volume = float(self.volumes[d < -r].sum())
        mixed = np.flatnonzero(np.abs(d) <= r)
        if len(mixed):
            offsets = self.octant_offsets @ rot.T
            octants = (centres[mixed][:, None, :] + offsets[None, :, :]).reshape(-1, 3)
            do = np.asarray(distance(octants), dtype=np.float64).reshape(len(mixed), 8)
            ds = do @ self.octant_to_sub.T  # (mixed, m): the sub-cell centres' distances
            frac = np.clip(0.5 - ds / self.sub_spacing_mm, 0.0, 1.0)
            volume += float(np.einsum("ij,ij->", self.sub_weights[mixed], frac))
        return volume


def interior_cells(mesh: Mesh, spacing_mm: float = 1.25, subdivisions: int = 4) -> InteriorCells:
    """The adaptive interior cells of a closed mesh for the penetrating volume.

    Parameters
    ----------
    mesh : Mesh
        A closed, outward-oriented mesh in its own frame (mm).
    spacing_mm : float
        Cell edge, mm.
    subdivisions : int
        Sub-cells per cell edge (the sub-cell edge is ``spacing_mm / subdivisions``).

    Returns
    -------
    InteriorCells
        The implant's volume within cells and sub-cells from its exact signed distance
        (``vtkImplicitPolyDataDistance``) at their centres, with the same fractional rule as
        the structure's surface (see the module notes).
    """
    from surgtwin.geometry.sdf import _implicit_distance, mesh_signed_distance

    if spacing_mm <= 0 or subdivisions < 1:
        raise ValueError("the cell spacing must be positive and the subdivisions at least 1")
    h, m = float(spacing_mm), int(subdivisions)
    s = h / m
    lo, hi = mesh.points.min(axis=0), mesh.points.max(axis=0)
    counts = np.maximum(1, np.ceil((hi - lo) / h - 1e-9)).astype(int)
    start = 0.5 * (lo + hi) - 0.5 * counts * h
    axes = [start[a] + (np.arange(counts[a]) + 0.5) * h for a in range(3)]
    centres = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    implicit = _implicit_distance(mesh)
    r = 0.5 * np.sqrt(3.0) * h
    d = mesh_signed_distance(mesh, centres, implicit)
    keep = d < r
    centres, d = centres[keep], d[keep]
    sub = (np.arange(m) + 0.5) * s - 0.5 * h
    offsets = np.stack(np.meshgrid(sub, sub, sub, indexing="ij"), axis=-1).reshape(-1, 3)
    weights = np.full((len(centres), len(offsets)), s**3)
    edge = d > -r  # cells the implant's surface may cross
    if edge.any():
        pts = (centres[edge][:, None, :] + offsets[None, :, :]).reshape(-1, 3)
        ds = mesh_signed_distance(mesh, pts, implicit).reshape(-1, len(offsets))
        weights[edge] = s**3 * np.clip(0.5 - ds / s, 0.0, 1.0)
    volumes = weights.sum(axis=1)
    held = volumes > 0
    centres, weights = centres[held], weights[held]
    total = float(weights.sum())
    if total > 0:
        weights *= abs(mesh.volume_mm3()) / total
    # octant centres at -h/4, +h/4 per axis; a sub-cell centre's trilinear weights from them
    quarter = np.array([-0.25, 0.25]) * h
    octants = np.stack(np.meshgrid(quarter, quarter, quarter, indexing="ij"), -1).reshape(8, 3)
    t = (sub + 0.25 * h) / (0.5 * h)  # 0 at the lower octant centre, 1 at the upper
    w = np.stack([1.0 - t, t], axis=1)  # (m, 2)
    to_sub = np.einsum("ia,jb,kc->ijkabc", w, w, w).reshape(m**3, 8)
    return InteriorCells(centres, weights.sum(axis=1), offsets, weights, octants, to_sub, h, s)
