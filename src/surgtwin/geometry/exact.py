"""The exact path of the clearance engine: mesh-to-mesh queries with python-fcl.

Bounding volume hierarchies of OBBRSS nodes (oriented boxes plus rectangle swept spheres;
Larsen, Gottschalk, Lin and Manocha, "Fast proximity queries with swept sphere volumes", 2000;
Pan, Chitta and Manocha, "FCL: a general purpose library for collision and proximity
queries", ICRA 2012) are built once per mesh and cached for the mesh object's lifetime.

* No contact: ``fcl.distance`` with nearest points gives the exact separation (mm).
* Contact (``fcl.collide`` with contacts; or one surface wholly inside the other): fcl's
  mesh-mesh contacts carry no reliable penetration depth, so the depth, breached area and
  penetrating volume are computed from the exact signed distance to the structure's mesh
  (``vtkImplicitPolyDataDistance``) at the implant's surface samples and interior cells: the
  depth exact at the samples (within the sample spacing of the true maximum), the volume
  refined where the structure's surface crosses the cells (see
  :class:`~surgtwin.geometry.samples.InteriorCells`).
"""

from __future__ import annotations

import weakref

import fcl
import numpy as np

from surgtwin.geometry.mesh import Mesh
from surgtwin.geometry.samples import InteriorCells
from surgtwin.geometry.sdf import _implicit_distance, mesh_signed_distance

__all__ = ["bvh_model", "mesh_clearance"]

_BVH: weakref.WeakKeyDictionary[Mesh, fcl.BVHModel] = weakref.WeakKeyDictionary()
_IMPLICIT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def bvh_model(mesh: Mesh) -> fcl.BVHModel:
    """The fcl OBBRSS BVH of a mesh, built once and cached for the mesh object's lifetime."""
    model = _BVH.get(mesh)
    if model is None:
        model = fcl.BVHModel()
        model.beginModel(len(mesh.points), len(mesh.faces))
        model.addSubModel(
            np.ascontiguousarray(mesh.points, dtype=np.float64),
            np.ascontiguousarray(mesh.faces, dtype=np.int32),
        )
        model.endModel()
        _BVH[mesh] = model
    return model


def implicit_distance(mesh: Mesh):
    """A cached ``vtkImplicitPolyDataDistance`` of the mesh (exact signed distance)."""
    implicit = _IMPLICIT.get(mesh)
    if implicit is None:
        implicit = _implicit_distance(mesh)
        _IMPLICIT[mesh] = implicit
    return implicit


def _transform(pose: np.ndarray) -> fcl.Transform:
    pose = np.asarray(pose, dtype=np.float64)
    return fcl.Transform(pose[:3, :3].copy(), pose[:3, 3].copy())


def _apply(pose: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ pose[:3, :3].T + pose[:3, 3]


def mesh_clearance(
    mesh_a: Mesh,
    pose_a: np.ndarray,
    mesh_b: Mesh,
    pose_b: np.ndarray | None = None,
    *,
    samples_a: tuple[np.ndarray, np.ndarray] | None = None,
    interior_a: tuple[np.ndarray, np.ndarray] | InteriorCells | None = None,
) -> dict:
    """Exact clearance of mesh A (posed) against mesh B (posed, default identity).

    Parameters
    ----------
    mesh_a, mesh_b : Mesh
        Closed meshes in their own frames (mm).
    pose_a, pose_b : numpy.ndarray, shape (4, 4)
        Rigid transforms to LPS mm.
    samples_a : (points (n, 3), weights (n,)), optional
        A's surface samples in A's frame, mm and mm^2 (for the depth and breached area on
        contact; default: A's vertices with zero weight).
    interior_a : InteriorCells or (points (m, 3), weights (m,)), optional
        A's interior cells, or interior samples in A's frame (mm and mm^3, counted when
        inside), for the penetrating volume.

    Returns
    -------
    dict
        ``min_clearance_mm``, ``closest_point_implant``, ``closest_point_structure`` (LPS mm),
        ``breached_area_mm2``, ``penetrating_volume_mm3``, ``collides``, ``contacts``.
    """
    pose_a = np.asarray(pose_a, dtype=np.float64)
    pose_b = np.eye(4) if pose_b is None else np.asarray(pose_b, dtype=np.float64)
    obj_a = fcl.CollisionObject(bvh_model(mesh_a), _transform(pose_a))
    obj_b = fcl.CollisionObject(bvh_model(mesh_b), _transform(pose_b))
    creq = fcl.CollisionRequest(num_max_contacts=100000, enable_contact=True)
    cres = fcl.CollisionResult()
    n_contacts = fcl.collide(obj_a, obj_b, creq, cres)
    a_to_b = np.linalg.inv(pose_b) @ pose_a
    implicit = implicit_distance(mesh_b)
    contained = False
    if n_contacts == 0:
        # no surface crossing: A wholly inside B (or B inside A) is still a collision
        probe_a = mesh_signed_distance(mesh_b, _apply(a_to_b, mesh_a.points[:1]), implicit)
        probe_b = mesh_signed_distance(
            mesh_a, _apply(np.linalg.inv(a_to_b), mesh_b.points[:1]), implicit_distance(mesh_a)
        )
        contained = bool(probe_a[0] < 0 or probe_b[0] < 0)
    if n_contacts == 0 and not contained:
        dreq = fcl.DistanceRequest(enable_nearest_points=True)
        dres = fcl.DistanceResult()
        dist = fcl.distance(obj_a, obj_b, dreq, dres)
        return {
            "min_clearance_mm": float(dist),
            "closest_point_implant": np.asarray(dres.nearest_points[0], dtype=float),
            "closest_point_structure": np.asarray(dres.nearest_points[1], dtype=float),
            "breached_area_mm2": 0.0,
            "penetrating_volume_mm3": 0.0,
            "collides": False,
            "contacts": 0,
        }
    if samples_a is None:
        samples_a = (mesh_a.points, np.zeros(len(mesh_a.points)))
    pts, weights = samples_a
    in_b = _apply(a_to_b, np.asarray(pts, dtype=float))
    d = mesh_signed_distance(mesh_b, in_b, implicit)
    worst = int(np.argmin(d))
    closest_b = np.zeros(3)
    implicit.EvaluateFunctionAndGetClosestPoint(in_b[worst].tolist(), closest_b)
    volume = float("nan")
    if isinstance(interior_a, InteriorCells):
        volume = interior_a.volume_inside(
            lambda q: mesh_signed_distance(mesh_b, q, implicit), a_to_b
        )
    elif interior_a is not None and len(interior_a[0]):
        di = mesh_signed_distance(mesh_b, _apply(a_to_b, np.asarray(interior_a[0])), implicit)
        volume = float(np.asarray(interior_a[1])[di < 0].sum())
    return {
        "min_clearance_mm": float(min(d[worst], 0.0)),
        "closest_point_implant": _apply(pose_b, in_b[worst : worst + 1])[0],
        "closest_point_structure": _apply(pose_b, closest_b[None, :])[0],
        "breached_area_mm2": float(np.asarray(weights)[d < 0].sum()),
        "penetrating_volume_mm3": volume,
        "collides": True,
        "contacts": int(n_contacts),
    }
