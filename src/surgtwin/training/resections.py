"""What a set of cuts does to a structure and a target: the measures resections are scored by.

The cuts of a plan are recomputed here from their tool parameters
(:func:`surgtwin.geometry.resection.make_tool`) against the case's uncut structure, whatever
surfaces the trainee's plan holds: the part removed is the structure inside the union of the
tools (cuts of one structure remove ``structure ∩ (tool 1 ∪ tool 2 ∪ ...)``, in any order).

* ``target_removed``: no more than ``max(0.1 %, 1 mm³)`` of the target remains
  (:func:`~surgtwin.geometry.resection.target_fully_removed`).
* ``margin_mm``: the smallest gap between the target and the remaining part when the target
  is fully removed, else minus how deep the target reaches into the remaining part (the
  definition of :func:`~surgtwin.geometry.resection.margin_to_target`, computed with the
  exact mesh-to-mesh query of :mod:`surgtwin.geometry.exact`).
* ``healthy_removed_mm3``: the volume removed outside the target,
  ``vol(removed) - vol(removed ∩ target)``.
* ``overlap``: for cuts without a target (osteotomies), the Dice coefficient of two removed
  parts, ``2 vol(A ∩ B) / (vol(A) + vol(B))``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import manifold3d as mf
import numpy as np

from surgtwin.geometry.mesh import Mesh
from surgtwin.planning.plan import Cut

__all__ = ["ResectionMeasure", "cut_tools", "measure_resection", "overlap"]


@dataclass(frozen=True, eq=False)
class ResectionMeasure:
    """The effect of cuts on one structure (volumes mm³, distances mm, LPS).

    Attributes
    ----------
    structure_mm3, removed_mm3 : float
        The structure's volume and the volume removed.
    target_mm3, target_left_mm3 : float or None
        The target's volume and what of it remains (None without a target).
    target_removed : bool or None
    margin_mm : float or None
        ``inf`` when nothing remains near the target; None without a target.
    healthy_removed_mm3 : float
        Volume removed outside the target (all of ``removed_mm3`` without a target).
    left_offset : numpy.ndarray or None
        From the target's centroid to the centroid of what remains of it (LPS mm), when some
        remains.
    removed : manifold3d.Manifold
        The removed part (for :func:`overlap`).
    """

    structure_mm3: float
    removed_mm3: float
    target_mm3: float | None
    target_left_mm3: float | None
    target_removed: bool | None
    margin_mm: float | None
    healthy_removed_mm3: float
    left_offset: np.ndarray | None
    removed: mf.Manifold


def cut_tools(cuts: Sequence[Cut]) -> tuple[list, list[tuple[Cut, str]]]:
    """The tools of cuts, and the cuts whose parameters are invalid with the reason."""
    from surgtwin.geometry.resection import ResectionError, make_tool

    tools, bad = [], []
    for cut in cuts:
        try:
            tools.append(make_tool(cut.tool, cut.parameters))
        except (ResectionError, ValueError, TypeError) as exc:
            bad.append((cut, str(exc)))
    return tools, bad


def _centroid(m: mf.Manifold) -> np.ndarray:
    mesh = m.to_mesh64()
    v = np.asarray(mesh.vert_properties, dtype=float)[:, :3][np.asarray(mesh.tri_verts)]
    vol = np.einsum("ij,ij->i", v[:, 0], np.cross(v[:, 1], v[:, 2])) / 6.0
    total = float(vol.sum())
    return (v.sum(axis=1) / 4.0 * vol[:, None]).sum(axis=0) / total


@functools.lru_cache(maxsize=8)
def _manifold(mesh: Mesh) -> mf.Manifold:
    """A target's manifold, kept while the target mesh is in use (meshes hash by identity)."""
    from surgtwin.geometry.resection import mesh_to_manifold

    return mesh_to_manifold(mesh)


def _margin(remaining: Mesh, target: Mesh, fully_removed: bool) -> float:
    """The resection margin (:func:`~surgtwin.geometry.resection.margin_to_target`): the gap
    between the target and the remaining part when the target is fully removed, else minus how
    deep the target reaches into the remaining part."""
    from surgtwin.geometry.resection import margin_to_target

    if len(remaining.faces) == 0:
        return math.inf
    value = margin_to_target(remaining, target)
    return max(0.0, value) if fully_removed else min(0.0, value)


def measure_resection(structure: Mesh, tools: Sequence, target: Mesh | None) -> ResectionMeasure:
    """Cut ``structure`` with the union of ``tools`` and measure the result against ``target``.

    Parameters
    ----------
    structure : Mesh
        The uncut structure's closed surface (LPS mm).
    tools : sequence of Tool
        At least one.
    target : Mesh or None
        The target's closed surface.

    Raises
    ------
    ResectionError
        A surface is not a closed manifold.
    """
    from surgtwin.geometry.resection import mesh_to_manifold, resect, target_fully_removed

    if not tools:
        raise ValueError("measure_resection needs at least one tool")
    solid = functools.reduce(lambda a, b: a + b, (t.solid for t in tools))
    res = resect(structure, solid)
    removed = mesh_to_manifold(res.resected) if len(res.resected.faces) else mf.Manifold()
    structure_mm3 = res.remaining_mm3 + res.resected_mm3
    if target is None:
        return ResectionMeasure(
            structure_mm3, res.resected_mm3, None, None, None, None, res.resected_mm3, None, removed
        )
    tgt = _manifold(target)
    target_mm3 = float(tgt.volume())
    remaining = mesh_to_manifold(res.remaining) if len(res.remaining.faces) else None
    left = 0.0 if remaining is None else float((remaining ^ tgt).volume())
    taken = float((removed ^ tgt).volume()) if len(res.resected.faces) else 0.0
    fully = True if remaining is None else bool(target_fully_removed(remaining, tgt))
    margin = _margin(res.remaining, target, fully)
    offset = None
    if not fully and remaining is not None:
        offset = _centroid(remaining ^ tgt) - _centroid(tgt)
    return ResectionMeasure(
        structure_mm3=structure_mm3,
        removed_mm3=res.resected_mm3,
        target_mm3=target_mm3,
        target_left_mm3=left,
        target_removed=fully,
        margin_mm=float(margin),
        healthy_removed_mm3=max(0.0, res.resected_mm3 - taken),
        left_offset=offset,
        removed=removed,
    )


def overlap(a: ResectionMeasure, b: ResectionMeasure) -> float:
    """Dice coefficient (0..1) of the parts two resections removed."""
    total = float(a.removed.volume()) + float(b.removed.volume())
    if total <= 0:
        return 1.0
    both = float((a.removed ^ b.removed).volume())
    return max(0.0, min(1.0, 2.0 * both / total)) if math.isfinite(both) else 0.0
