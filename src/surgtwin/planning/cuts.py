"""Virtual cuts of a plan's structures as undoable edits (osteotomies, resections).

:func:`cut_structure` prepares one cut of a structure with a tool (plane, box, sphere or
polygon; :func:`surgtwin.geometry.resection.make_tool`) and returns a :class:`CutStructure`
command, which the caller pushes onto the plan's
:class:`~surgtwin.planning.commands.CommandStack` (the CLI and the app alike). Doing it, in one
undo step:

* adds the :class:`~surgtwin.planning.plan.Cut` record, with the volumes (mm³) and, when the
  plan has target structures, whether they are fully removed and the margin around them;
* replaces the structure's surface by the part outside the tool (a closed manifold from
  manifold3d, :func:`~surgtwin.geometry.resection.resect`), so that later checks, the 3D view
  and the plan file see the cut structure;
* for a label structure, clears the voxels of that label whose centres lie inside the tool,
  as a bounding-box delta of the label map
  (:class:`~surgtwin.planning.commands.LabelEditCommand`), so that the distance field of the
  checks is cut as well and undo restores the voxels exactly.

Preparing the command changes nothing in the plan; the work (the Boolean and the voxel test)
is done once, when it is prepared, so do, undo and redo are instant.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from surgtwin.geometry.mesh import Mesh
from surgtwin.geometry.resection import Tool, make_tool
from surgtwin.planning.case import CaseError, CaseGeometry
from surgtwin.planning.commands import (
    AddCut,
    Command,
    CompoundCommand,
    LabelEditCommand,
    SetStructureProperty,
)
from surgtwin.planning.plan import CUT_TOOLS, Cut, Plan, Structure, plain_data

__all__ = ["CutStructure", "cut_structure", "default_cut_name", "label_voxels_inside", "plane_cut"]


class CutStructure(CompoundCommand):
    """One cut as one undo step: the cut record, the cut surface and the cleared voxels.

    Made by :func:`cut_structure`; push it onto the plan's command stack (or call :meth:`do`).

    Attributes
    ----------
    cut : Cut
        The record added (tool parameters, volumes in mm³, target margin in mm).
    structure : str
        The name of the structure cut.
    remaining, resected : Mesh
        The parts of the surface outside and inside the tool (LPS mm).
    original : Mesh
        The surface that was cut.
    voxels_removed : int
        Label voxels cleared (0 for a mesh structure).
    """

    def __init__(
        self,
        plan: Plan,
        name: str,
        commands: Sequence[Command],
        cut: Cut,
        original: Mesh,
        remaining: Mesh,
        resected: Mesh,
        voxels_removed: int,
    ):
        super().__init__(plan, name, commands)
        self.cut = cut
        self.structure = cut.structure
        self.original = original
        self.remaining = remaining
        self.resected = resected
        self.voxels_removed = voxels_removed

    @property
    def nbytes(self) -> int:
        # the replaced surface and the new one are both held for undo/redo
        meshes = (self.original, self.remaining)
        return super().nbytes + sum(m.points.nbytes + m.faces.nbytes for m in meshes)


def default_cut_name(plan: Plan) -> str:
    """``"Cut <n>"`` with the first number from the count of cuts + 1 not in use."""
    n = len(plan.cuts) + 1
    while f"Cut {n}" in plan.cuts:
        n += 1
    return f"Cut {n}"


def label_voxels_inside(
    plan: Plan, value: int, tool: Tool
) -> tuple[tuple[slice, slice, slice], np.ndarray] | None:
    """The voxels of label ``value`` whose centres lie inside ``tool``.

    Returns
    -------
    (box, mask) or None
        ``box``: (k, j, i) slices of the label map; ``mask``: bool of the box's shape. None when
        no voxel of the label lies inside the tool.
    """
    lm = plan.labelmap
    if lm is None:
        return None
    g = lm.geometry
    arr = lm.array
    # the tool's bounding box in voxel indices, clipped to the grid
    b = np.asarray(tool.solid.bounding_box(), dtype=float)
    corners = np.array([[x, y, z] for x in b[0::3] for y in b[1::3] for z in b[2::3]])
    ijk = g.lps_to_index(corners)
    lo = np.maximum(np.floor(ijk.min(axis=0)).astype(int), 0)[::-1]  # k, j, i
    hi = np.minimum(np.ceil(ijk.max(axis=0)).astype(int) + 1, np.asarray(g.size))[::-1]
    if np.any(hi <= lo):
        return None
    box = tuple(slice(int(a), int(c)) for a, c in zip(lo, hi, strict=True))
    sel = arr[box] == value
    if not sel.any():
        return None
    # shrink the box to the label's voxels in it
    inner = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        idx = np.flatnonzero(sel.any(axis=other))
        inner.append(slice(int(idx[0]), int(idx[-1]) + 1))
    sel = sel[tuple(inner)]
    box = tuple(
        slice(outer.start + s.start, outer.start + s.stop)
        for outer, s in zip(box, inner, strict=True)
    )
    k, j, i = np.nonzero(sel)
    origin = np.array([box[2].start, box[1].start, box[0].start], dtype=float)
    centres = g.index_to_lps(np.stack([i, j, k], axis=1).astype(float) + origin)
    inside = tool.contains(centres)
    if not inside.any():
        return None
    mask = np.zeros(sel.shape, dtype=bool)
    mask[k[inside], j[inside], i[inside]] = True
    return box, mask  # type: ignore[return-value]


def cut_structure(
    plan: Plan,
    structure: str,
    tool: str,
    parameters: Mapping[str, Any],
    *,
    name: str | None = None,
    geometry: CaseGeometry | None = None,
) -> CutStructure:
    """Prepare the cut of a structure with a tool, as an undoable command (not yet done).

    Parameters
    ----------
    plan : Plan
    structure : str
        The structure's name (case-insensitive).
    tool : {"plane", "box", "sphere", "polygon"}
    parameters : mapping
        The tool's plain parameters, LPS mm (see
        :func:`~surgtwin.geometry.resection.make_tool`): ``plane`` ``point``, ``normal``
        (towards the part removed); ``box`` ``centre``, ``size`` (edges), optional
        ``rotation``; ``sphere`` ``centre``, ``radius``; ``polygon`` ``points``,
        ``direction`` (the viewing direction), optional ``depth``.
    name : str, optional
        The cut's name (default ``"Cut <n>"``).
    geometry : CaseGeometry, optional
        Reuse the plan's surfaces already built.

    Returns
    -------
    CutStructure
        Push it onto the plan's command stack. Its :attr:`~CutStructure.cut` holds in
        ``parameters`` the tool's parameters and ``structure_mm3``, ``removed_mm3``,
        ``remaining_mm3`` (mm³, of the surface), ``voxels_removed`` and
        ``voxels_removed_mm3`` (label structures), ``margin_mm`` (smallest margin around the
        plan's target structures, mm; None without targets), ``target_removed`` (None without
        targets) and ``targets``.

    Raises
    ------
    CaseError
        Unknown structure or tool, name in use, the tool misses the structure or removes all
        of it.
    ResectionError
        Bad tool parameters, or the surface cannot be cut (not closed).
    """
    from surgtwin.geometry.resection import margin_to_target, resect, target_fully_removed

    geo = geometry or CaseGeometry(plan)
    s = geo.structure(structure)
    if tool not in CUT_TOOLS:
        raise CaseError(f"unknown cutting tool {tool!r} (tools: {', '.join(CUT_TOOLS)})")
    if name is None:
        name = default_cut_name(plan)
    elif not name.strip():
        raise CaseError("a cut needs a non-empty name")
    elif name in plan.cuts:
        raise CaseError(f"a cut named {name!r} exists already")
    params = plain_data(dict(parameters), "parameters")
    solid = make_tool(tool, params)
    mesh = geo.mesh(s)
    res = resect(mesh, solid)
    if res.resected_mm3 <= 0.0:
        raise CaseError(f"the {tool} does not cut structure {s.name!r}: nothing would be removed")
    if res.remaining_mm3 <= 0.0 or len(res.remaining.faces) == 0:
        raise CaseError(
            f"the {tool} removes all of structure {s.name!r}; remove the structure instead"
        )
    targets = [t for t in plan.structures.values() if t.role == "target" and t.name != s.name]
    removed: bool | None = None
    margin: float | None = None
    if targets:
        removed = all(target_fully_removed(res.remaining, geo.mesh(t)) for t in targets)
        margin = min(margin_to_target(res.remaining, geo.mesh(t)) for t in targets)
        margin = None if not math.isfinite(margin) else margin

    commands: list[Command] = []
    voxels = 0
    if s.source == "label" and plan.labelmap is not None:
        assert s.label_value is not None
        found = label_voxels_inside(plan, s.label_value, solid)
        if found is not None:
            box, mask = found
            edit = plan.labelmap.change(
                f"{name}: {s.name}", s.label_value, mask, box=box, mode="remove", apply=False
            )
            if edit is not None:
                voxels = int(mask.sum())
                commands.append(LabelEditCommand(plan, edit))
    surface = _remaining_surface(s, mesh, res.remaining)
    commands.append(SetStructureProperty(plan, s.name, mesh=surface))
    voxel_mm3 = plan.labelmap.geometry.voxel_volume_mm3 if plan.labelmap is not None else 0.0
    record = Cut(
        name,
        s.name,
        tool,
        {
            **params,
            "structure_mm3": abs(mesh.volume_mm3()),
            "removed_mm3": res.resected_mm3,
            "remaining_mm3": res.remaining_mm3,
            "voxels_removed": voxels,
            "voxels_removed_mm3": voxels * voxel_mm3,
            "margin_mm": margin,
            "target_removed": removed,
            "targets": [t.name for t in targets],
        },
    )
    commands.append(AddCut(plan, record))
    return CutStructure(
        plan, f"Cut {s.name} ({tool})", commands, record, mesh, surface, res.resected, voxels
    )


def _remaining_surface(s: Structure, original: Mesh, remaining: Mesh) -> Mesh:
    """The remaining part named and coloured like the structure's surface."""
    meta = {k: str(v) for k, v in remaining.metadata.items()}
    return dataclasses.replace(
        remaining, name=original.name or s.name, color=original.color, metadata=meta
    )


def plane_cut(
    plan: Plan,
    structure: str,
    point: Sequence[float],
    normal: Sequence[float],
    *,
    name: str | None = None,
    geometry: CaseGeometry | None = None,
) -> CutStructure:
    """:func:`cut_structure` with a plane: ``point`` on it and ``normal`` towards the part
    removed (LPS mm)."""
    params = {"point": [float(v) for v in point], "normal": [float(v) for v in normal]}
    return cut_structure(plan, structure, "plane", params, name=name, geometry=geometry)
