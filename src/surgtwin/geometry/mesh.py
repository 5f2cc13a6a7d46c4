"""The Mesh: a triangle surface in patient LPS millimetres, with a name, colour and role."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def merge_vertices(
    points: np.ndarray, faces: np.ndarray, decimals: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Merge vertices at the same position (exactly, or to ``decimals`` decimals of a mm),
    keeping the first occurrence and the order of first occurrences."""
    key = (points if decimals is None else np.round(points, decimals)) + 0.0  # -0.0 -> 0.0
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return points[first[order]] + 0.0, rank[inverse][faces]


@dataclass(frozen=True)
class MeshStats:
    """What a radiologist checks before exporting a mesh."""

    triangles: int
    vertices: int
    volume_mm3: float
    area_mm2: float
    watertight: bool
    bounds_lps: tuple[float, float, float, float, float, float]


def edge_counts(faces: np.ndarray) -> tuple[int, int, int]:
    """(boundary edges, non-manifold edges, edges used twice in the same direction).

    A closed, oriented 2-manifold has every undirected edge in exactly two faces, once in each
    direction; this is checked with integer keys and one sort, without building a graph.
    """
    if len(faces) == 0:
        return 0, 0, 0
    f = np.asarray(faces, dtype=np.int64)
    a = f.reshape(-1)
    b = np.roll(f, -1, axis=1).reshape(-1)
    n = int(f.max()) + 1
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    key = lo * n + hi
    order = np.argsort(key, kind="stable")
    key_s = key[order]
    starts = np.flatnonzero(np.r_[True, key_s[1:] != key_s[:-1]])
    counts = np.diff(np.r_[starts, key_s.size])
    boundary = int(np.count_nonzero(counts == 1))
    nonmanifold = int(np.count_nonzero(counts > 2))
    # orientation: of the two uses of an edge, one must be a->b with a<b and the other b->a
    forward = (a < b)[order]
    pairs = starts[counts == 2]
    same_direction = int(np.count_nonzero(forward[pairs] == forward[pairs + 1]))
    return boundary, nonmanifold, same_direction


@dataclass(eq=False)
class Mesh:
    """A triangle mesh in LPS mm.

    Attributes
    ----------
    points : numpy.ndarray, shape (n, 3)
        Vertex positions, patient LPS mm.
    faces : numpy.ndarray, shape (m, 3)
        Vertex indices of each triangle, counter-clockwise seen from outside.
    name, color, role
        What the structure is (``color`` RGB 0..1; ``role`` as in the label map).
    """

    points: np.ndarray
    faces: np.ndarray
    name: str = "mesh"
    color: tuple[float, float, float] = (0.9, 0.9, 0.9)
    role: str = "other"
    metadata: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.points = np.ascontiguousarray(self.points, dtype=np.float64).reshape(-1, 3)
        self.faces = np.ascontiguousarray(self.faces, dtype=np.int64).reshape(-1, 3)

    @property
    def n_triangles(self) -> int:
        return len(self.faces)

    def bounds(self) -> tuple[float, float, float, float, float, float]:
        """(xmin, xmax, ymin, ymax, zmin, zmax) in LPS mm."""
        if len(self.points) == 0:
            return (0.0,) * 6
        lo, hi = self.points.min(axis=0), self.points.max(axis=0)
        return (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]), float(lo[2]), float(hi[2]))

    def area_mm2(self) -> float:
        v = self.points[self.faces]
        return float(
            0.5 * np.linalg.norm(np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]), axis=1).sum()
        )

    def volume_mm3(self) -> float:
        """Signed volume by the divergence theorem (positive for outward-facing triangles)."""
        v = self.points[self.faces]
        return float(np.einsum("ij,ij->i", v[:, 0], np.cross(v[:, 1], v[:, 2])).sum() / 6.0)

    def is_watertight(self) -> bool:
        """Closed, 2-manifold and consistently oriented."""
        return len(self.faces) > 0 and edge_counts(self.faces) == (0, 0, 0)

    def stats(self) -> MeshStats:
        return MeshStats(
            triangles=self.n_triangles,
            vertices=len(self.points),
            volume_mm3=self.volume_mm3(),
            area_mm2=self.area_mm2(),
            watertight=self.is_watertight(),
            bounds_lps=self.bounds(),
        )

    def transformed(self, matrix: np.ndarray) -> Mesh:
        """A copy with a 4x4 transform applied (faces flipped if it mirrors)."""
        m = np.asarray(matrix, dtype=float)
        pts = self.points @ m[:3, :3].T + m[:3, 3]
        faces = self.faces[:, ::-1] if np.linalg.det(m[:3, :3]) < 0 else self.faces
        return Mesh(pts, faces.copy(), self.name, self.color, self.role, dict(self.metadata))

    def to_pyvista(self):
        import pyvista as pv

        cells = np.empty((len(self.faces), 4), dtype=np.int64)
        cells[:, 0] = 3
        cells[:, 1:] = self.faces
        return pv.PolyData(self.points, cells.reshape(-1))

    def to_trimesh(self):
        import trimesh

        return trimesh.Trimesh(self.points, self.faces, process=False)

    @classmethod
    def from_pyvista(cls, poly, **kwargs) -> Mesh:
        tri = poly.triangulate() if not poly.is_all_triangles else poly
        faces = np.asarray(tri.faces).reshape(-1, 4)[:, 1:]
        return cls(np.asarray(tri.points, dtype=np.float64), faces, **kwargs)
