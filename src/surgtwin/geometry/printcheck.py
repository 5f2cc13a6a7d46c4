"""Is a mesh fit for 3D printing? Checks, and a conservative repair.

Checks
------
Edges are counted with :func:`surgtwin.geometry.mesh.edge_counts`: an edge used by one triangle
is an open (boundary) edge, by more than two a non-manifold edge; on a consistently oriented
surface the two triangles sharing an edge run through it in opposite directions.

``watertight`` here means *closed*: no open and no non-manifold edges. Orientation is reported
separately as ``outward_normals``: every edge is traversed once in each direction and no shell
is inside out. A shell in open space must enclose positive volume; a shell inside a solid with
negative volume is the wall of a cavity (hollow part). A positive shell inside a solid is
ambiguous, a part embedded in the solid or a cavity wall facing the wrong way: it counts as
inside out only if its container is inside out too (the whole part was inverted), otherwise it
is reported as a problem and left alone by :func:`repair`. Which shells enclose which is found
by ray parity: rays from three points of a shell, in three fixed directions, cross an enclosing
shell an odd number of times (majority vote; coinciding hits at a shared edge or vertex count
once). (:meth:`Mesh.is_watertight` asks for both: closed and consistently oriented.)

Shells are the groups of triangles connected through shared edges.

Thinnest wall
-------------
Rays are cast from area-weighted random points of the surface (fixed seed, so reports are
reproducible) along the inward normal; the wall thickness at a point is the distance to the first
surface hit, found with VTK's uniform-bin :class:`vtkStaticCellLocator` (about 100 times
faster than :class:`vtkOBBTree` here). This is a single-ray variant of the shape diameter
function (Shapira, Shamir & Cohen-Or, Visual Computer 24:249, 2008). Where the opposite wall is
parallel this is the thickness, where it is oblique it overestimates, and in sharp concave
creases it underestimates; the report gives the 1st percentile, so a handful of samples in
creases do not decide the answer, while a thin region covering more than about 1 % of the
surface does. The wall is only measured when the normals face outward.

Repair
------
:func:`repair` merges duplicate vertices, removes degenerate and duplicate triangles, drops tiny
shells, orients triangles consistently and outward, and fills small holes. After every step it
re-counts open, non-manifold and misoriented edges and undoes the step if it made them worse,
so a watertight mesh is never made worse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from surgtwin.geometry.mesh import Mesh, edge_counts, merge_vertices

DEFAULT_MIN_WALL_MM = 1.0
_WALL_PERCENTILE = 1.0


@dataclass
class PrintReport:
    """What stands between a mesh and a good print.

    Attributes
    ----------
    watertight : bool
        Closed: no open and no non-manifold edges.
    manifold : bool
        No edge is shared by more than two triangles.
    outward_normals : bool
        Consistently oriented, and every shell faces outward (inner walls of hollow parts face
        into the cavity).
    degenerate_faces : int
        Triangles with a repeated vertex or zero area.
    shells : int
        Separate pieces (triangles connected through edges).
    boundary_edges : int
        Edges used by a single triangle (the rims of holes).
    nonmanifold_edges : int
        Edges used by more than two triangles.
    thinnest_wall_mm : float or None
        Low (1st) percentile of the wall thickness in mm, ``None`` if it could not be measured
        (no triangles, too few ray hits, or normals not facing outward).
    volume_mm3 : float
        Signed enclosed volume in mm³ (meaningful for a closed surface).
    problems : list of str
        One plain sentence per problem; empty when the mesh is ready to print.
    """

    watertight: bool
    manifold: bool
    outward_normals: bool
    degenerate_faces: int
    shells: int
    boundary_edges: int
    nonmanifold_edges: int
    thinnest_wall_mm: float | None
    volume_mm3: float
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems


def _count(n: int, noun: str, plural: str | None = None) -> str:
    """``"1 hole"``, ``"2 holes"``."""
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"


# --------------------------------------------------------------------------------------------
# topology helpers


def _components(n: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Connected-component label (0..k-1) of each of ``n`` nodes joined by edges ``u``-``v``.

    Vectorised union-find: roots are hooked under the smaller root, then pointers are jumped
    until every node points at its root; repeated until no edge joins two roots.
    """
    parent = np.arange(n)
    u = np.asarray(u, dtype=np.int64)
    v = np.asarray(v, dtype=np.int64)
    while u.size:
        pu, pv = parent[u], parent[v]
        join = pu != pv
        if not join.any():
            break
        lo = np.minimum(pu[join], pv[join])
        hi = np.maximum(pu[join], pv[join])
        np.minimum.at(parent, hi, lo)
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped
        u, v = u[join], v[join]
    return np.unique(parent, return_inverse=True)[1].reshape(-1)


@dataclass
class _Edges:
    """Half-edge bookkeeping: half-edge ``h`` is edge ``h % 3`` of face ``h // 3``."""

    start: np.ndarray  # (3m,) first vertex of each half-edge
    order: np.ndarray  # half-edges sorted by undirected edge
    group_start: np.ndarray  # index into ``order`` where each undirected edge begins
    counts: np.ndarray  # uses of each undirected edge
    use_count: np.ndarray  # (3m,) uses of the undirected edge of each half-edge


def _edges(faces: np.ndarray) -> _Edges:
    a = faces.reshape(-1)
    b = np.roll(faces, -1, axis=1).reshape(-1)
    n = int(faces.max()) + 1 if len(faces) else 1
    key = np.minimum(a, b) * n + np.maximum(a, b)
    order = np.argsort(key, kind="stable")
    key_s = key[order]
    group_start = np.flatnonzero(np.r_[True, key_s[1:] != key_s[:-1]])
    counts = np.diff(np.r_[group_start, key_s.size])
    use_count = np.empty(key.size, dtype=np.int64)
    use_count[order] = np.repeat(counts, counts)
    return _Edges(a, order, group_start, counts, use_count)


def _face_shells(
    faces: np.ndarray, e: _Edges | None = None, manifold_only: bool = False
) -> np.ndarray:
    """Shell label of each face: faces sharing an edge (any, or only 2-use edges) are joined."""
    if len(faces) == 0:
        return np.zeros(0, dtype=np.int64)
    e = _edges(faces) if e is None else e
    # consecutive half-edges in sorted order that belong to the same undirected edge
    group_id = np.repeat(np.arange(e.counts.size), e.counts)
    link = group_id[1:] == group_id[:-1]
    if manifold_only:
        link &= np.repeat(e.counts == 2, e.counts)[1:]
    idx = np.flatnonzero(link)
    u = e.order[idx] // 3
    v = e.order[idx + 1] // 3
    return _components(len(faces), u, v)


def _signed_volumes(
    points: np.ndarray, faces: np.ndarray, labels: np.ndarray, k: int
) -> np.ndarray:
    """Signed volume of each of ``k`` labelled shells (relative to its own centroid)."""
    v = points[faces]
    centre = np.zeros((k, 3))
    cnt = np.bincount(labels, minlength=k).astype(float)
    for axis in range(3):
        centre[:, axis] = np.bincount(labels, weights=v[:, 0, axis], minlength=k)
    centre /= np.maximum(cnt, 1)[:, None]
    v = v - centre[labels][:, None, :]
    det = np.einsum("ij,ij->i", v[:, 0], np.cross(v[:, 1], v[:, 2])) / 6.0
    return np.bincount(labels, weights=det, minlength=k)


def _locator(points: np.ndarray, faces: np.ndarray):
    """A VTK static cell locator (uniform bins) over the triangles, ready for ray queries."""
    from vtkmodules.util import numpy_support
    from vtkmodules.vtkCommonCore import vtkPoints
    from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData, vtkStaticCellLocator

    id_type = numpy_support.get_vtk_array_type(np.int64)
    poly = vtkPolyData()
    pts = vtkPoints()
    pts.SetData(numpy_support.numpy_to_vtk(np.ascontiguousarray(points, dtype=float), deep=1))
    poly.SetPoints(pts)
    cells = vtkCellArray()
    offsets = np.arange(0, 3 * len(faces) + 1, 3, dtype=np.int64)
    conn = np.ascontiguousarray(faces, dtype=np.int64).reshape(-1)
    cells.SetData(
        numpy_support.numpy_to_vtk(offsets, deep=1, array_type=id_type),
        numpy_support.numpy_to_vtk(conn, deep=1, array_type=id_type),
    )
    poly.SetPolys(cells)
    locator = vtkStaticCellLocator()
    locator.SetDataSet(poly)
    locator.BuildLocator()
    return locator


# fixed, generic ray directions for the inside/outside vote (no axis alignment, so rays rarely
# run exactly along edges of voxel-derived meshes)
_PROBE_DIRECTIONS = np.array(
    [[0.5773, 0.5774, 0.5775], [-0.2672, 0.5345, -0.8018], [0.8729, -0.4364, 0.2182]]
)


def _containers(
    points: np.ndarray, faces: np.ndarray, labels: np.ndarray, k: int, locator=None
) -> list[set[int]]:
    """The shells that enclose each shell.

    From (up to) three points of the shell, rays are cast in three fixed directions and their
    crossings with every other shell are counted (coinciding hits, at a shared edge or vertex,
    count once); an odd count means inside that shell. The majority of the rays decides.
    """
    from vtkmodules.vtkCommonCore import vtkIdList, vtkPoints

    out: list[set[int]] = [set() for _ in range(k)]
    if k < 2:
        return out
    locator = _locator(points, faces) if locator is None else locator
    diag = float(np.linalg.norm(points.max(axis=0) - points.min(axis=0)))
    merge_tol = 1e-9 * diag + 1e-12
    dirs = _PROBE_DIRECTIONS / np.linalg.norm(_PROBE_DIRECTIONS, axis=1, keepdims=True)
    by_shell = np.argsort(labels, kind="stable")
    first = np.searchsorted(labels[by_shell], np.arange(k))
    last = np.r_[first[1:], len(labels)] - 1
    hit_pts, hit_ids = vtkPoints(), vtkIdList()
    for s in range(k):
        probes = by_shell[np.unique([first[s], (first[s] + last[s]) // 2, last[s]])]
        votes: dict[int, int] = {}
        for f, d in zip(probes, dirs, strict=False):
            p = points[faces[f]].mean(axis=0)
            locator.IntersectWithLine(p, p + 2.0 * (diag + 1.0) * d, 0.0, hit_pts, hit_ids)
            hits: dict[int, list[float]] = {}
            for i in range(hit_pts.GetNumberOfPoints()):
                other = int(labels[hit_ids.GetId(i)])
                if other != s:
                    t = float(np.dot(np.asarray(hit_pts.GetPoint(i)) - p, d))
                    hits.setdefault(other, []).append(t)
            for other, ts in hits.items():
                ts.sort()
                crossings = 1 + sum(1 for a, b in pairwise(ts) if b - a > merge_tol)
                if crossings % 2:
                    votes[other] = votes.get(other, 0) + 1
        out[s] = {other for other, v in votes.items() if 2 * v > len(probes)}
    return out


def _orientation_state(
    points: np.ndarray, faces: np.ndarray, e: _Edges | None = None, locator=None
) -> tuple[np.ndarray, bool, int]:
    """Which faces to flip so that every shell is consistent and faces outward.

    Returns
    -------
    flip : numpy.ndarray of bool, shape (m,)
    consistent : bool
        Whether the input already was consistently oriented.
    embedded : int
        Shells facing outward although they lie inside a solid (left as they are).
    """
    m = len(faces)
    e = _edges(faces) if e is None else e
    # neighbour across each half-edge used by exactly two faces, and whether it runs the
    # shared edge in the same direction (then one of the two must be flipped)
    nbr = np.full(3 * m, -1, dtype=np.int64)
    same = np.zeros(3 * m, dtype=bool)
    pairs = e.group_start[e.counts == 2]
    h1, h2 = e.order[pairs], e.order[pairs + 1]
    nbr[h1], nbr[h2] = h2 // 3, h1 // 3
    same[h1] = same[h2] = e.start[h1] == e.start[h2]
    consistent = not same.any()
    nbr = nbr.reshape(m, 3)
    same = same.reshape(m, 3)

    labels = _face_shells(faces, e, manifold_only=True)
    k = int(labels.max()) + 1 if m else 0
    state = np.full(m, -1, dtype=np.int8)
    seeds = np.unique(labels, return_index=True)[1]
    state[seeds] = 0
    frontier = seeds
    while frontier.size:
        nb = nbr[frontier]
        parity = state[frontier][:, None] ^ same[frontier].astype(np.int8)
        valid = nb >= 0
        valid[valid] = state[nb[valid]] < 0
        cand, cand_parity = nb[valid], parity[valid]
        frontier, first = np.unique(cand, return_index=True)
        state[frontier] = cand_parity[first]
    flip = state == 1

    oriented = np.where(flip[:, None], faces[:, ::-1], faces)
    vol = _signed_volumes(points, oriented, labels, k)
    containers = _containers(points, faces, labels, k, locator)
    depth = np.array([len(c) for c in containers], dtype=np.int64)
    odd = depth % 2 == 1
    # A shell at even depth (in open space, or in a cavity) must enclose positive volume, else
    # it is inside out. At odd depth (inside a solid) a negative shell is a cavity's wall; a
    # positive one is a cavity wall facing the wrong way if its container is inside out too
    # (the whole part was inverted), otherwise it is ambiguous (maybe a part embedded in the
    # solid) and left alone.
    inside_out = (vol < 0) & ~odd
    for s in np.flatnonzero((vol > 0) & odd):
        parent = max(containers[s], key=lambda c: depth[c])
        inside_out[s] = inside_out[parent]
    embedded = (vol > 0) & odd & ~inside_out
    flip ^= inside_out[labels]
    return flip, consistent, int(embedded.sum())


def _degenerate(points: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Faces with a repeated vertex or (numerically) zero area."""
    if len(faces) == 0:
        return np.zeros(0, dtype=bool)
    repeated = (
        (faces[:, 0] == faces[:, 1]) | (faces[:, 1] == faces[:, 2]) | (faces[:, 0] == faces[:, 2])
    )
    v = points[faces]
    area2 = np.linalg.norm(np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]), axis=1)
    diag = float(np.linalg.norm(points.max(axis=0) - points.min(axis=0))) if len(points) else 0.0
    return repeated | (area2 <= 1e-12 * max(diag, 1e-3) ** 2)


# --------------------------------------------------------------------------------------------
# wall thickness


def _thinnest_wall(
    points: np.ndarray, faces: np.ndarray, samples: int, locator=None
) -> float | None:
    """1st percentile of the inward ray distance to the next surface, in mm (see module doc)."""
    from vtkmodules.vtkCommonCore import vtkIdList, vtkPoints

    v = points[faces]
    cross = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    area = 0.5 * np.linalg.norm(cross, axis=1)
    if samples <= 0 or area.sum() <= 0:
        return None
    rng = np.random.default_rng(20240611)
    chosen = rng.choice(len(faces), size=int(samples), p=area / area.sum())
    r1, r2 = rng.random(samples), rng.random(samples)
    fold = r1 + r2 > 1
    r1[fold], r2[fold] = 1 - r1[fold], 1 - r2[fold]
    tri = v[chosen]
    origin = (
        tri[:, 0] + r1[:, None] * (tri[:, 1] - tri[:, 0]) + r2[:, None] * (tri[:, 2] - tri[:, 0])
    )
    normal = cross[chosen] / (2.0 * area[chosen])[:, None]

    diag = float(np.linalg.norm(points.max(axis=0) - points.min(axis=0)))
    eps = 1e-7 * diag + 1e-9
    locator = _locator(points, faces) if locator is None else locator
    hits_pts, hits_ids = vtkPoints(), vtkIdList()
    dist = []
    for p, n, f in zip(origin, normal, chosen, strict=True):
        start = p - eps * n
        end = p - (1.01 * diag + eps) * n
        locator.IntersectWithLine(start, end, 1e-9, hits_pts, hits_ids)
        best = np.inf
        for i in range(hits_pts.GetNumberOfPoints()):
            if hits_ids.GetId(i) == f:
                continue
            d = float(np.dot(np.asarray(hits_pts.GetPoint(i)) - p, -n))
            if eps < d < best:
                best = d
        if np.isfinite(best):
            dist.append(best)
    if len(dist) < max(10, samples // 20):
        return None
    return float(np.percentile(dist, _WALL_PERCENTILE))


# --------------------------------------------------------------------------------------------
# check


def check_print(
    mesh: Mesh,
    wall_samples: int = 2000,
    *,
    min_wall_mm: float = DEFAULT_MIN_WALL_MM,
    min_shell_fraction: float = 0.001,
) -> PrintReport:
    """Check a mesh for 3D printing.

    Parameters
    ----------
    mesh : Mesh
        Surface in mm.
    wall_samples : int
        Number of surface points from which the wall thickness is probed (0: skip).
    min_wall_mm : float
        Thinner walls are reported as a problem (mm).
    min_shell_fraction : float
        Shells with fewer triangles than this fraction of all are reported as tiny (noise).

    Returns
    -------
    PrintReport
    """
    points, faces = mesh.points, mesh.faces
    if len(faces) == 0:
        return PrintReport(
            False, False, False, 0, 0, 0, 0, None, 0.0, ["the mesh has no triangles"]
        )
    boundary, nonmanifold, same_dir = edge_counts(faces)
    degenerate = int(_degenerate(points, faces).sum())
    e = _edges(faces)
    labels = _face_shells(faces, e)
    k = int(labels.max()) + 1
    sizes = np.bincount(labels, minlength=k)
    tiny = sizes < min_shell_fraction * len(faces)
    tiny[np.argmax(sizes)] = False
    locator = _locator(points, faces)
    flip, consistent, embedded = _orientation_state(points, faces, e, locator)
    outward = consistent and not flip.any()
    volume = mesh.volume_mm3()
    watertight = boundary == 0 and nonmanifold == 0
    wall = None
    if outward and wall_samples > 0:
        wall = _thinnest_wall(points, faces, wall_samples, locator)

    problems = []
    if boundary:
        problems.append(
            f"{_count(boundary, 'open edge')}: the surface has holes and is not watertight"
        )
    if nonmanifold:
        problems.append(
            f"{_count(nonmanifold, 'non-manifold edge')} (shared by more than two triangles)"
        )
    if same_dir:
        problems.append(
            f"{_count(same_dir, 'edge')} between triangles facing opposite ways: "
            "normals are inconsistent"
        )
    elif not outward:
        problems.append("normals point inward on some shells (the surface is inside out)")
    if embedded:
        problems.append(
            f"{_count(embedded, 'shell')} inside another solid with normals facing outward: "
            "parts embedded in the solid, or cavity walls facing the wrong way"
        )
    if degenerate:
        problems.append(f"{_count(degenerate, 'degenerate triangle')} (zero area)")
    if tiny.any():
        problems.append(
            f"{_count(int(tiny.sum()), 'tiny shell')} "
            f"({_count(int(sizes[tiny].sum()), 'triangle')}), probably noise"
        )
    if wall is not None and wall < min_wall_mm:
        problems.append(
            f"thinnest wall about {wall:.2f} mm, below the {min_wall_mm:g} mm that prints reliably"
        )
    return PrintReport(
        watertight=watertight,
        manifold=nonmanifold == 0,
        outward_normals=outward,
        degenerate_faces=degenerate,
        shells=k,
        boundary_edges=boundary,
        nonmanifold_edges=nonmanifold,
        thinnest_wall_mm=wall,
        volume_mm3=volume,
        problems=problems,
    )


# --------------------------------------------------------------------------------------------
# repair


def _badness(faces: np.ndarray) -> int:
    """Open + non-manifold + misoriented edges (0 for a watertight, oriented surface)."""
    return sum(edge_counts(faces)) if len(faces) else 0


def _compact(points: np.ndarray, faces: np.ndarray):
    """Drop vertices no triangle uses."""
    used = np.zeros(len(points), dtype=bool)
    used[faces.reshape(-1)] = True
    remap = np.cumsum(used) - 1
    return points[used], remap[faces], int((~used).sum())


def _boundary_loops(faces: np.ndarray) -> list[list[int]]:
    """Closed loops of open edges, each as its vertices in half-edge order.

    The open half-edges are split into simple cycles, so a rim that touches itself at a vertex
    (two holes sharing a corner) gives two loops. Open chains that do not close are skipped.
    """
    e = _edges(faces)
    open_h = np.flatnonzero(e.use_count == 1)
    if open_h.size == 0:
        return []
    a = e.start[open_h].tolist()
    b = np.roll(faces, -1, axis=1).reshape(-1)[open_h].tolist()
    out: dict[int, list[int]] = {}
    for s, t in zip(a, b, strict=True):
        out.setdefault(s, []).append(t)
    loops = []
    for first in a:
        if not out.get(first):
            continue
        path, pos, cur = [first], {first: 0}, first
        while out.get(cur):
            nxt = out[cur].pop()
            if nxt in pos:  # closed a cycle: cut it off the path
                i = pos[nxt]
                if len(path) - i >= 3:
                    loops.append(path[i:])
                for v in path[i + 1 :]:
                    del pos[v]
                path = path[: i + 1]
            else:
                pos[nxt] = len(path)
                path.append(nxt)
            cur = nxt
    return loops


def _fill_holes(points: np.ndarray, faces: np.ndarray, max_edges: int):
    """Close open loops of at most ``max_edges`` edges; (points, faces, holes, triangles)."""
    new_pts, new_faces = [], []
    n = len(points)
    holes = 0
    for loop in _boundary_loops(faces):
        if len(loop) > max_edges:
            continue
        holes += 1
        if len(loop) == 3:
            new_faces.append([loop[0], loop[2], loop[1]])
            continue
        c = n + len(new_pts)
        new_pts.append(points[loop].mean(axis=0))
        ring = np.asarray(loop)
        # the open half-edges run a -> b; the new triangles use them as b -> a
        new_faces.extend([int(b), int(a), c] for a, b in zip(ring, np.roll(ring, -1), strict=True))
    if not holes:
        return points, faces, 0, 0
    pts = np.vstack([points, np.asarray(new_pts).reshape(-1, 3)])
    out = np.vstack([faces, np.asarray(new_faces, dtype=np.int64)])
    return pts, out, holes, len(new_faces)


def repair(
    mesh: Mesh, min_shell_fraction: float = 0.001, *, max_hole_edges: int = 200
) -> tuple[Mesh, list[str]]:
    """Fix what can be fixed safely for printing.

    Steps: merge duplicate vertices (coinciding to 1e-6 mm), remove degenerate and duplicate
    triangles, drop tiny shells, orient triangles consistently and outward, fill holes of at
    most ``max_hole_edges`` edges (a fan around the rim's centroid), drop unused vertices. A
    step that would increase the number of open, non-manifold or misoriented edges is undone.

    Parameters
    ----------
    mesh : Mesh
        Surface in mm.
    min_shell_fraction : float
        Shells with fewer triangles than this fraction of the total are dropped (the largest
        shell is always kept).
    max_hole_edges : int
        Larger openings are left open.

    Returns
    -------
    mesh : Mesh
        The repaired copy (name, colour, role, metadata kept).
    changes : list of str
        What was done, in plain words; empty if nothing needed fixing.
    """
    points, faces = mesh.points.copy(), mesh.faces.copy()
    changes: list[str] = []
    if len(faces) == 0:
        return Mesh(points, faces, mesh.name, mesh.color, mesh.role, dict(mesh.metadata)), []

    # 1. duplicate vertices
    p2, f2 = merge_vertices(points, faces, decimals=6)
    merged = len(np.unique(faces)) - len(np.unique(f2))
    if merged:
        if _badness(f2) <= _badness(faces):
            points, faces = p2, f2
            changes.append(f"merged {_count(merged, 'duplicate vertex', 'duplicate vertices')}")
        else:
            changes.append(
                f"left {_count(merged, 'coinciding vertex', 'coinciding vertices')} apart: "
                "merging would join separate surfaces along an edge"
            )

    # 2. degenerate triangles
    bad = _degenerate(points, faces)
    if bad.any():
        repeated = (
            (faces[:, 0] == faces[:, 1])
            | (faces[:, 1] == faces[:, 2])
            | (faces[:, 0] == faces[:, 2])
        )
        if _badness(faces[~bad]) <= _badness(faces):
            faces = faces[~bad]
            changes.append(f"removed {_count(int(bad.sum()), 'degenerate triangle')}")
        elif repeated.any() and _badness(faces[~repeated]) <= _badness(faces):
            faces = faces[~repeated]
            changes.append(
                f"removed {_count(int(repeated.sum()), 'degenerate triangle')}; kept "
                f"{_count(int((bad & ~repeated).sum()), 'zero-area triangle')} whose removal "
                "would open the surface"
            )

    # 3. duplicate triangles (same three vertices, whatever the order)
    if len(faces):
        _, first = np.unique(np.sort(faces, axis=1), axis=0, return_index=True)
        if len(first) < len(faces):
            keep = np.sort(first)
            if _badness(faces[keep]) <= _badness(faces):
                changes.append(f"removed {_count(len(faces) - len(keep), 'duplicate triangle')}")
                faces = faces[keep]

    # 4. tiny shells
    if len(faces):
        labels = _face_shells(faces)
        sizes = np.bincount(labels)
        tiny = sizes < min_shell_fraction * len(faces)
        tiny[np.argmax(sizes)] = False
        if tiny.any():
            drop = tiny[labels]
            changes.append(
                f"dropped {_count(int(tiny.sum()), 'shell')} with "
                f"{_count(int(drop.sum()), 'triangle')} "
                f"(each under {min_shell_fraction:.2%} of the surface)"
            )
            faces = faces[~drop]

    # 5. orientation
    def orient(label: str) -> None:
        nonlocal faces
        if not len(faces):
            return
        flip, _, _ = _orientation_state(points, faces)
        if flip.any():
            candidate = np.where(flip[:, None], faces[:, ::-1], faces)
            if _badness(candidate) <= _badness(faces):
                faces = candidate
                changes.append(f"flipped {_count(int(flip.sum()), 'triangle')} {label}")

    orient("so that the normals face outward")

    # 6. holes
    if len(faces) and max_hole_edges >= 3:
        p2, f2, holes, added = _fill_holes(points, faces, max_hole_edges)
        if holes and _badness(f2) < _badness(faces):
            points, faces = p2, f2
            changes.append(f"filled {_count(holes, 'hole')} ({_count(added, 'triangle')} added)")
            orient("of filled shells so that the normals face outward")

    points, faces, unused = _compact(points, faces) if len(faces) else (points[:0], faces, 0)
    if unused and len(faces):
        changes.append(f"removed {_count(unused, 'unused vertex', 'unused vertices')}")
    return Mesh(points, faces, mesh.name, mesh.color, mesh.role, dict(mesh.metadata)), changes
