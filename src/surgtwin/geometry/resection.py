"""Virtual resection: cut a structure's mesh with a tool solid, in patient LPS millimetres.

Tools are closed solids (``manifold3d.Manifold``): a half-space (:func:`plane_tool`), a box
(:func:`box_tool`), a sphere (:func:`sphere_tool`) and a polygon drawn on a view and extruded
along the viewing direction (:func:`polygon_tool`). :func:`resect` splits a closed mesh into the
part outside the tool (*remaining*) and the part inside it (*resected*) with one call to
``Manifold.split``, which "cuts this manifold in two using the cutter manifold. The first result
is the intersection, second is the difference" (manifold3d docstring). Manifold's Booleans are
guaranteed to return closed 2-manifolds (Lalish, *Manifold* library, github.com/elalish/manifold;
robust Booleans after Smith & Dodgson, "A topologically robust algorithm for Boolean operations on
polyhedral shapes using approximate arithmetic", CAD 39, 2007), and since manifold3d 3.0 it
computes in double precision; meshes go in and out through ``manifold3d.Mesh64`` (float64
vertex properties), so no precision is lost to float32 ``MeshGL``.

Margins
-------
For a target structure (a tumour) the quantities reported are:

* :func:`target_fully_removed`: the volume of the target still inside the *remaining* part,
  ``vol(target ∩ remaining)``, is below ``max(0.1 % of the target volume, 1 mm³)``.
* :func:`margin_to_target` (mm): if the target is fully removed, the smallest distance from the
  target surface to the surface of the remaining part (the nearest tissue left behind: the cut
  surface, or the structure's own outer surface where the resection reaches it), computed as
  the exact triangle-to-triangle gap (``Manifold.min_gap``). If the target is not fully removed,
  the margin is ``<= 0``: minus the deepest reach of the target into the remaining part,
  measured at the target's vertices with the exact signed distance to the remaining surface
  (``vtkImplicitPolyDataDistance``, see :mod:`surgtwin.geometry.sdf`), and 0 when the overlap
  is only a touch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import manifold3d as mf
import numpy as np

from surgtwin.errors import SurgTwinError
from surgtwin.geometry.mesh import Mesh

__all__ = [
    "Resection",
    "ResectionError",
    "Tool",
    "box_tool",
    "make_tool",
    "margin_to_target",
    "mesh_to_manifold",
    "plane_tool",
    "polygon_tool",
    "resect",
    "sphere_tool",
    "target_fully_removed",
    "target_left_mm3",
]

DEFAULT_TOOL_SIZE_MM = 2000.0  # larger than any patient: a half-space for clinical purposes
REMOVED_FRACTION = 1e-3  # target volume left behind, as a fraction of the target ...
REMOVED_MM3 = 1.0  # ... or in mm³, whichever is larger


class ResectionError(SurgTwinError, ValueError):
    """A resection cannot be computed (open or non-manifold input, bad tool parameters)."""


@dataclass(frozen=True)
class Tool:
    """A cutting tool: a closed solid in LPS mm.

    Attributes
    ----------
    solid : manifold3d.Manifold
        The region removed by the tool.
    kind : str
        ``"plane"``, ``"box"``, ``"sphere"`` or ``"polygon"``.
    description : str
        A short plain description (for logs and plan reports).
    inside : callable, optional
        ``inside(points (n, 3) LPS mm) -> bool (n,)``: the exact shape's point test (the tool
        factories give one); without it :meth:`contains` tests against the solid's surface.
    """

    solid: mf.Manifold
    kind: str
    description: str
    inside: Callable[[np.ndarray], np.ndarray] | None = field(
        default=None, compare=False, repr=False
    )

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Which points (n, 3), LPS mm, lie inside the tool (the region it removes).

        Points on the tool's boundary may fall either way.
        """
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        if self.inside is not None:
            return np.asarray(self.inside(pts), dtype=bool)
        from surgtwin.geometry.sdf import mesh_signed_distance

        return mesh_signed_distance(self.to_mesh(), pts) < 0

    def volume_mm3(self) -> float:
        """Volume of the tool solid in mm³."""
        return float(self.solid.volume())

    def to_mesh(self) -> Mesh:
        """The tool's surface as a :class:`Mesh` (for display)."""
        return _to_mesh(self.solid, f"{self.kind} tool", (1.0, 0.6, 0.0), "tool", {})


@dataclass
class Resection:
    """The result of :func:`resect`.

    Attributes
    ----------
    remaining, resected : Mesh
        The parts outside and inside the tool; closed and consistently oriented, or empty
        (no triangles) when nothing is left on that side.
    remaining_mm3, resected_mm3 : float
        Their enclosed volumes in mm³ (0 for an empty part).
    changes : list of str
        What was repaired in the input before cutting; empty if it was already closed.
    """

    remaining: Mesh
    resected: Mesh
    remaining_mm3: float
    resected_mm3: float
    changes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# conversions


def _affine(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """The 3x4 matrix ``[R | t]`` manifold3d's ``transform`` takes."""
    m = np.zeros((3, 4))
    m[:, :3] = rotation
    m[:, 3] = translation
    return m


def mesh_to_manifold(mesh: Mesh) -> mf.Manifold:
    """A closed :class:`Mesh` as a ``manifold3d.Manifold`` (float64 vertices, ``Mesh64``).

    Raises
    ------
    ResectionError
        manifold3d rejects the mesh (not a closed, oriented 2-manifold).
    """
    m = mf.Manifold(
        mf.Mesh64(
            # nanobind refuses read-only arrays: ask for writeable C-contiguous ones
            vert_properties=np.require(mesh.points, np.float64, ("C", "W")),
            tri_verts=np.require(mesh.faces, np.uint64, ("C", "W")),
        )
    )
    status = m.status()
    if status != mf.Error.NoError:
        raise ResectionError(
            f"{mesh.name}: the surface is not a closed manifold and cannot be cut "
            f"(manifold3d: {status.name})"
        )
    return m


def _to_mesh(
    m: mf.Manifold, name: str, color: tuple[float, float, float], role: str, meta: dict
) -> Mesh:
    if m.is_empty():
        return Mesh(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64), name, color, role, meta)
    out = m.to_mesh64()
    pts = np.array(np.asarray(out.vert_properties)[:, :3], dtype=np.float64)  # own, writeable
    return Mesh(pts, np.array(out.tri_verts, dtype=np.int64), name, color, role, meta)


# --------------------------------------------------------------------------------------------
# tools


def _unit(v, what: str) -> np.ndarray:
    v = np.asarray(v, dtype=float).reshape(3)
    n = float(np.linalg.norm(v))
    if not np.isfinite(n) or n < 1e-12:
        raise ResectionError(f"the {what} must be a non-zero vector, got {v.tolist()}")
    return v / n


def _frame(w: np.ndarray, up=None) -> np.ndarray:
    """A right-handed orthonormal frame, columns ``(a, b, w)``, with ``b`` closest to ``up``."""
    if up is None:
        up = np.eye(3)[int(np.argmin(np.abs(w)))]
    b = np.asarray(up, dtype=float) - np.dot(up, w) * w
    if np.linalg.norm(b) < 1e-9:
        raise ResectionError("the view-up vector is parallel to the view direction")
    b /= np.linalg.norm(b)
    a = np.cross(b, w)
    return np.column_stack([a, b, w])


def plane_tool(point, normal, size: float = DEFAULT_TOOL_SIZE_MM) -> Tool:
    """A half-space: everything on the side of the plane the normal points to is removed.

    Parameters
    ----------
    point : array_like, shape (3,)
        A point on the cutting plane, LPS mm.
    normal : array_like, shape (3,)
        Plane normal (any length), pointing into the part to remove.
    size : float
        Edge of the cube standing in for the half-space, mm; its face lies on the plane and it
        is centred on ``point`` sideways, so it must exceed twice the structure's extent.
    """
    if size <= 0:
        raise ResectionError(f"the tool size must be positive, got {size} mm")
    n = _unit(normal, "plane normal")
    p = np.asarray(point, dtype=float).reshape(3)
    cube = mf.Manifold.cube((size, size, size), False).translate((-size / 2, -size / 2, 0.0))
    solid = cube.transform(_affine(_frame(n), p))
    return Tool(
        solid,
        "plane",
        f"plane through {np.round(p, 2).tolist()} mm, normal {np.round(n, 3).tolist()}",
        lambda q: (q - p) @ n > 0.0,
    )


def box_tool(centre, size_xyz, rotation=None) -> Tool:
    """A box (osteotomy block).

    Parameters
    ----------
    centre : array_like, shape (3,)
        Box centre, LPS mm.
    size_xyz : array_like, shape (3,)
        Edge lengths along the box's own axes, mm.
    rotation : array_like, shape (3, 3) or (4, 4), optional
        Orientation of the box axes in LPS (columns); a 4x4 matrix's translation is ignored
        (``centre`` places the box). Default: aligned with LPS.
    """
    size = np.asarray(size_xyz, dtype=float).reshape(3)
    if np.any(size <= 0):
        raise ResectionError(f"box edges must be positive, got {size.tolist()} mm")
    r = np.eye(3) if rotation is None else np.asarray(rotation, dtype=float)[:3, :3]
    if not np.allclose(r @ r.T, np.eye(3), atol=1e-6) or np.linalg.det(r) < 0:
        raise ResectionError("the box rotation must be a proper rotation matrix")
    c = np.asarray(centre, dtype=float).reshape(3)
    solid = mf.Manifold.cube(tuple(size), True).transform(_affine(r, c))

    def inside(q: np.ndarray) -> np.ndarray:
        return np.all(np.abs((q - c) @ r) < size / 2, axis=1)

    desc = f"box {np.round(size, 2).tolist()} mm at {np.round(c, 2).tolist()}"
    return Tool(solid, "box", desc, inside)


def sphere_tool(centre, radius: float, segments: int = 128) -> Tool:
    """A sphere (burr, or a tumour with its margin).

    Parameters
    ----------
    centre : array_like, shape (3,)
        LPS mm.
    radius : float
        mm; the vertices lie on the sphere, the flat faces slightly inside (by
        ``r (1 - cos(pi / segments))``, 0.03 % of r at 128 segments).
    segments : int
        Segments around a great circle (rounded up to a multiple of 4 by manifold3d).
    """
    if radius <= 0:
        raise ResectionError(f"the sphere radius must be positive, got {radius} mm")
    c = np.asarray(centre, dtype=float).reshape(3)
    solid = mf.Manifold.sphere(float(radius), int(segments)).translate(tuple(c))
    r2 = float(radius) ** 2
    return Tool(
        solid,
        "sphere",
        f"sphere r={radius:g} mm at {np.round(c, 2).tolist()}",
        lambda q: np.einsum("ij,ij->i", q - c, q - c) < r2,
    )


def polygon_tool(
    points,
    view_direction,
    depth: float | None = None,
    *,
    origin=(0.0, 0.0, 0.0),
    view_up=None,
) -> Tool:
    """A closed polygon drawn on a view, extruded along the viewing direction.

    Parameters
    ----------
    points : array_like, shape (k, 2) or (k, 3)
        The polygon (k >= 3; closed implicitly; self-intersections are resolved with the
        non-zero winding rule). ``(k, 2)``: screen coordinates in mm, x to the right and y up,
        relative to ``origin``. ``(k, 3)``: LPS mm; they are projected along the view
        direction, and the drawing plane passes through their mean.
    view_direction : array_like, shape (3,)
        Direction the viewer looks in (into the scene), LPS.
    depth : float, optional
        How far the cut goes, mm, from the drawing plane along ``view_direction``. ``None``
        cuts through everything, in front of and behind the drawing plane.
    origin : array_like, shape (3,)
        LPS position of the screen point (0, 0) (2-D points only).
    view_up : array_like, shape (3,), optional
        The screen's up direction in LPS (2-D points: required for a meaningful orientation;
        default: the LPS axis most perpendicular to the view direction).
    """
    w = _unit(view_direction, "view direction")
    frame = _frame(w, view_up)  # columns: a = up x w = -right, b = up, w
    pts = np.asarray(points, dtype=float)
    if pts.ndim != 2 or pts.shape[0] < 3 or pts.shape[1] not in (2, 3):
        raise ResectionError("the polygon needs at least 3 points of 2 or 3 coordinates")
    if pts.shape[1] == 2:
        poly = np.column_stack([-pts[:, 0], pts[:, 1]])  # screen right = -a
        base = np.asarray(origin, dtype=float).reshape(3)
    else:
        local = pts @ frame
        poly = local[:, :2]
        base = float(local[:, 2].mean()) * w
    section = mf.CrossSection([np.ascontiguousarray(poly)], mf.FillRule.NonZero)
    if section.area() <= 1e-9:
        raise ResectionError("the polygon encloses no area")
    if depth is None:
        start, length = -DEFAULT_TOOL_SIZE_MM / 2, DEFAULT_TOOL_SIZE_MM
    elif depth > 0:
        start, length = 0.0, float(depth)
    else:
        raise ResectionError(f"the cut depth must be positive, got {depth} mm")
    prism = mf.Manifold.extrude(section, length).translate((0.0, 0.0, start))
    solid = prism.transform(_affine(frame, base))
    reach = "through" if depth is None else f"{depth:g} mm deep"

    def inside(q: np.ndarray) -> np.ndarray:
        local = (q - base) @ frame
        within = (local[:, 2] > start) & (local[:, 2] < start + length)
        return within & (_winding_2d(poly, local[:, :2]) != 0)

    desc = f"{len(pts)}-point polygon, {section.area():.1f} mm², {reach}"
    return Tool(solid, "polygon", desc, inside)


def _winding_2d(polygon: np.ndarray, points: np.ndarray, chunk: int = 1 << 16) -> np.ndarray:
    """Winding numbers of 2-D points about a closed polygon (Sunday's crossing rule)."""
    a = np.asarray(polygon, dtype=float)
    b = np.roll(a, -1, axis=0)
    out = np.zeros(len(points), dtype=np.int64)
    for s in range(0, len(points), chunk):
        p = points[s : s + chunk, None, :]
        cross = (b[:, 0] - a[:, 0]) * (p[..., 1] - a[:, 1]) - (p[..., 0] - a[:, 0]) * (
            b[:, 1] - a[:, 1]
        )
        up = (a[:, 1] <= p[..., 1]) & (b[:, 1] > p[..., 1]) & (cross > 0)
        down = (a[:, 1] > p[..., 1]) & (b[:, 1] <= p[..., 1]) & (cross < 0)
        out[s : s + chunk] = up.sum(axis=1) - down.sum(axis=1)
    return out


def _vector(parameters: Mapping[str, Any], key: str, n: int | None = 3) -> np.ndarray:
    if key not in parameters:
        raise ResectionError(f"the tool needs {key!r}")
    try:
        v = np.asarray(parameters[key], dtype=float)
    except (TypeError, ValueError):
        raise ResectionError(f"{key!r} must be numbers, not {parameters[key]!r}") from None
    if (n is not None and v.shape != (n,)) or not np.isfinite(v).all():
        raise ResectionError(f"{key!r} must be {n} finite numbers, not {parameters[key]!r}")
    return v


#: The parameters each tool kind takes (LPS mm), for :func:`make_tool` and error messages.
TOOL_PARAMETERS: dict[str, tuple[str, ...]] = {
    "plane": ("point", "normal"),
    "box": ("centre", "size", "rotation (optional 3x3)"),
    "sphere": ("centre", "radius"),
    "polygon": ("points", "direction", "depth (optional)", "view_up (optional)"),
}


def make_tool(kind: str, parameters: Mapping[str, Any]) -> Tool:
    """A tool from plain data (as stored in a plan's cut record), LPS mm.

    Parameters
    ----------
    kind : {"plane", "box", "sphere", "polygon"}
    parameters : mapping
        ``plane``: ``point`` (3), ``normal`` (3, towards the part removed); ``box``:
        ``centre`` (3), ``size`` (3 edges, mm), optional ``rotation`` (3x3, box axes as
        columns); ``sphere``: ``centre`` (3), ``radius`` (mm); ``polygon``: ``points``
        (k x 3, LPS, or k x 2 screen mm), ``direction`` (3, the viewing direction), optional
        ``depth`` (mm; absent or None: through everything) and ``view_up`` (3). Other keys are
        ignored.

    Raises
    ------
    ResectionError
        Unknown kind, or a parameter missing or invalid.
    """
    if kind == "plane":
        return plane_tool(_vector(parameters, "point"), _vector(parameters, "normal"))
    if kind == "box":
        rotation = parameters.get("rotation")
        if rotation is not None:
            rotation = np.asarray(rotation, dtype=float)
            if rotation.shape not in ((3, 3), (4, 4)):
                raise ResectionError("'rotation' must be a 3x3 matrix")
        return box_tool(_vector(parameters, "centre"), _vector(parameters, "size"), rotation)
    if kind == "sphere":
        radius = _vector(parameters, "radius", None)
        if radius.shape != ():
            raise ResectionError(f"'radius' must be one number of mm, not {radius.tolist()}")
        return sphere_tool(_vector(parameters, "centre"), float(radius))
    if kind == "polygon":
        points = _vector(parameters, "points", None)
        depth = None if parameters.get("depth") is None else _vector(parameters, "depth", None)
        if depth is not None and depth.shape != ():
            raise ResectionError(f"'depth' must be one number of mm, not {depth.tolist()}")
        up = parameters.get("view_up")
        return polygon_tool(
            points,
            _vector(parameters, "direction"),
            None if depth is None else float(depth),
            view_up=None if up is None else _vector(parameters, "view_up"),
        )
    known = ", ".join(TOOL_PARAMETERS)
    raise ResectionError(f"unknown cutting tool {kind!r} (tools: {known})")


# --------------------------------------------------------------------------------------------
# resection


def _prepare(mesh: Mesh, repair_first: bool) -> tuple[Mesh, list[str]]:
    changes: list[str] = []
    if len(mesh.faces) == 0:
        raise ResectionError(f"{mesh.name}: the mesh has no triangles")
    if not mesh.is_watertight() or mesh.volume_mm3() <= 0:
        if not repair_first:
            raise ResectionError(
                f"{mesh.name}: the surface is not closed and consistently oriented; "
                "repair it first (or pass repair_first=True)"
            )
        from surgtwin.geometry.printcheck import repair

        mesh, changes = repair(mesh)
        if not mesh.is_watertight() or mesh.volume_mm3() <= 0:
            done = "; ".join(changes) if changes else "nothing could be fixed"
            raise ResectionError(
                f"{mesh.name}: the surface is still not closed after repair ({done}); "
                "a resection needs a closed surface"
            )
    return mesh, changes


def resect(mesh: Mesh, tool: Tool | mf.Manifold, *, repair_first: bool = True) -> Resection:
    """Cut ``mesh`` with ``tool``: the part inside the tool is resected, the rest remains.

    Parameters
    ----------
    mesh : Mesh
        A closed surface in LPS mm (repaired with :func:`surgtwin.geometry.printcheck.repair`
        first if it is not, when ``repair_first``).
    tool : Tool or manifold3d.Manifold
        The solid to remove, LPS mm.
    repair_first : bool
        Try to repair an open or misoriented input instead of refusing it.

    Returns
    -------
    Resection
        ``remaining`` named ``"<name> (remaining)"`` and ``resected`` ``"<name> (resected)"``,
        both with the input's colour and role; volumes in mm³. A tool that misses leaves
        ``remaining`` equal to the input (volume-wise) and an empty ``resected``; a tool that
        covers the whole structure gives the opposite.

    Raises
    ------
    ResectionError
        The input is not (and cannot be repaired into) a closed manifold, or a result is not.
    """
    solid = tool.solid if isinstance(tool, Tool) else tool
    mesh, changes = _prepare(mesh, repair_first)
    body = mesh_to_manifold(mesh)
    inside, outside = body.split(solid)
    parts = []
    for m, label in ((outside, "remaining"), (inside, "resected")):
        meta = {**mesh.metadata, "resection": label}
        if isinstance(tool, Tool):
            meta["resection_tool"] = tool.description
        part = _to_mesh(m, f"{mesh.name} ({label})", mesh.color, mesh.role, meta)
        if len(part.faces) and not part.is_watertight():  # pragma: no cover - manifold guarantee
            raise ResectionError(f"{mesh.name}: the {label} part is not closed (internal error)")
        parts.append(part)
    remaining, resected = parts
    return Resection(
        remaining=remaining,
        resected=resected,
        remaining_mm3=float(outside.volume()),
        resected_mm3=float(inside.volume()),
        changes=changes,
    )


# --------------------------------------------------------------------------------------------
# target structures


def _as_manifold(m: Mesh | mf.Manifold) -> mf.Manifold:
    return m if isinstance(m, mf.Manifold) else mesh_to_manifold(m)


def target_left_mm3(remaining: Mesh | mf.Manifold, target: Mesh | mf.Manifold) -> float:
    """Volume of the target still inside the remaining part, mm³ (``vol(target ∩ remaining)``)."""
    rem = _as_manifold(remaining) if not _is_empty(remaining) else None
    if rem is None:
        return 0.0
    return float((rem ^ _as_manifold(target)).volume())


def _is_empty(m: Mesh | mf.Manifold) -> bool:
    return m.is_empty() if isinstance(m, mf.Manifold) else len(m.faces) == 0


def target_fully_removed(remaining: Mesh | mf.Manifold, target: Mesh | mf.Manifold) -> bool:
    """Whether no more than ``max(0.1 % of the target, 1 mm³)`` of the target remains.

    Parameters
    ----------
    remaining : Mesh or manifold3d.Manifold
        The remaining part of the resected structure (closed, LPS mm; may be empty).
    target : Mesh or manifold3d.Manifold
        The target (tumour), closed, LPS mm.
    """
    tgt = _as_manifold(target)
    limit = max(REMOVED_FRACTION * float(tgt.volume()), REMOVED_MM3)
    return target_left_mm3(remaining, tgt) <= limit


def margin_to_target(remaining: Mesh, target: Mesh, *, max_search_mm: float = 200.0) -> float:
    """The resection margin around a target, mm (see the module notes).

    Parameters
    ----------
    remaining : Mesh
        The remaining part after the resection (closed, LPS mm; may be empty).
    target : Mesh
        The target (tumour), closed, LPS mm.
    max_search_mm : float
        Gaps larger than this are reported as ``inf`` (nothing left near the target).

    Returns
    -------
    float
        Fully removed: the smallest gap between the target and the remaining surface, >= 0
        (``inf`` when nothing remains within ``max_search_mm``). Otherwise ``<= 0``: minus how
        deep the target's vertices reach into the remaining part.
    """
    if len(remaining.faces) == 0:
        return float("inf")
    rem, tgt = mesh_to_manifold(remaining), mesh_to_manifold(target)
    if not target_fully_removed(rem, tgt):
        from surgtwin.geometry.sdf import mesh_signed_distance

        d = mesh_signed_distance(remaining, target.points)
        return float(min(0.0, d.min()))
    # the exact mesh-to-mesh distance of the clearance engine (python-fcl BVH): about a second
    # on a lumbar spine, where manifold3d's min_gap needs ten or more for margins over 5 mm
    from surgtwin.geometry.exact import mesh_clearance

    gap = max(0.0, float(mesh_clearance(target, np.eye(4), remaining)["min_clearance_mm"]))
    return gap if gap <= max_search_mm else float("inf")
