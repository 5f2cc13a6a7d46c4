"""Clearance engine: live signed-distance path against VTK's collision and distance filters.

Usage: python benchmarks/bench_clearance.py [SERIES_DIR] [--poses N] [--vtk-poses M]

The bone of the ct-abdomen-spine CT (bone preset, ``mask_to_mesh`` with default smoothing)
and a 6.5 x 45 mm screw (closed cylinder). ``--poses`` random poses near the bone (seeded):
the screw's head on a random bone surface vertex; 3 in 4 pushed out along the vertex normal by
0.5-5 mm and pointing away from the bone (mostly clear), 1 in 4 on the surface pointing
anywhere (mostly penetrating). Per pose, timed: SurgTwin's live path (field of the bone mask built
once, its build time reported; the narrow band refined with the exact mesh distance), against
``vtkCollisionDetectionFilter`` (all contacts) and ``vtkImplicitPolyDataDistance`` at the
screw's vertices (locators built once, outside the timing). Accuracy: the live clearance
against the exact fcl path, for non-penetrating and penetrating poses separately; the
penetrating volume (live: adaptive interior cells; before: interior samples counted) against
the exact volume of the screw mesh inside the bone mesh (manifold3d intersection, not timed).
The last line is ``ms_per_pose <median> speedup_vs_vtk_collision <ratio> max_error_mm <e>``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ct-abdomen-spine"


def _polydata(points: np.ndarray, faces: np.ndarray):
    from vtkmodules.util import numpy_support
    from vtkmodules.vtkCommonCore import vtkPoints
    from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData

    poly = vtkPolyData()
    pts = vtkPoints()
    pts.SetData(numpy_support.numpy_to_vtk(np.ascontiguousarray(points), deep=True))
    poly.SetPoints(pts)
    cells = vtkCellArray()
    offsets = np.arange(0, 3 * len(faces) + 1, 3, dtype=np.int64)
    cells.SetData(
        numpy_support.numpy_to_vtkIdTypeArray(offsets, deep=True),
        numpy_support.numpy_to_vtkIdTypeArray(faces.reshape(-1).astype(np.int64), deep=True),
    )
    poly.SetPolys(cells)
    return poly


def _vtk_matrix(pose: np.ndarray):
    from vtkmodules.vtkCommonMath import vtkMatrix4x4

    m = vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            m.SetElement(r, c, float(pose[r, c]))
    return m


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("series", nargs="?", default=str(DEFAULT))
    ap.add_argument("--poses", type=int, default=200)
    ap.add_argument("--vtk-poses", type=int, default=20)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    import trimesh
    from vtkmodules.vtkCommonCore import vtkSMPTools
    from vtkmodules.vtkFiltersCore import vtkImplicitPolyDataDistance
    from vtkmodules.vtkFiltersModeling import vtkCollisionDetectionFilter

    from surgtwin.geometry import clearance as C
    from surgtwin.geometry.mesh import Mesh
    from surgtwin.geometry.surface import mask_to_mesh
    from surgtwin.imaging import load
    from surgtwin.segmentation.presets import bone

    vtkSMPTools.SetBackend("STDThread")
    vol = load(args.series, cache=None)
    mask = bone(vol)
    t = time.perf_counter()
    bone_mesh = mask_to_mesh(mask, vol.geometry, name="bone")
    print(f"bone mesh: {bone_mesh.n_triangles} triangles in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    field = C.StructureField.from_mask(mask, vol.geometry, margin_mm=10.0, name="bone")
    t_maurer = time.perf_counter() - t
    t = time.perf_counter()
    refined = field.refine_with_surface(bone_mesh)
    t_refine = time.perf_counter() - t
    t = time.perf_counter()
    fine = field.refine_slices(bone_mesh)
    t_fine = time.perf_counter() - t
    print(
        f"field: {field.values.shape} voxels, {field.nbytes / 1e6:.0f} MB; Maurer maps "
        f"{t_maurer:.1f} s, exact narrow band ({refined} points) {t_refine:.1f} s, "
        f"{field.slab_factor}x finer slices in the band ({fine} exact points) {t_fine:.1f} s; "
        f"build total {t_maurer + t_refine + t_fine:.1f} s"
    )
    cyl = trimesh.creation.cylinder(radius=3.25, height=45.0, sections=64)
    cyl.apply_translation([0.0, 0.0, 22.5])
    screw_mesh = Mesh(cyl.vertices, cyl.faces, name="screw", role="implant")
    t = time.perf_counter()
    screw = C.ImplantSamples.from_mesh(screw_mesh, axis=[[0, 0, 0], [0, 0, 45]])
    cells = screw.cells
    print(
        f"screw: {len(screw.points)} surface samples, {len(cells.centres)} interior cells of "
        f"{cells.spacing_mm:g} mm ({cells.sub_offsets.shape[0]} sub-cells each where a surface "
        f"crosses), {time.perf_counter() - t:.2f} s"
    )
    # the former penetrating volume: interior samples every 1.25 mm, counted when inside
    counted_interior = C.interior_samples(screw_mesh, 1.25)

    rng = np.random.default_rng(args.seed)
    tri = bone_mesh.points[bone_mesh.faces]
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    vertex_n = np.zeros_like(bone_mesh.points)
    for c in range(3):
        np.add.at(vertex_n, bone_mesh.faces[:, c], face_n)
    vertex_n /= np.maximum(np.linalg.norm(vertex_n, axis=1, keepdims=True), 1e-12)
    poses = []
    for n in range(args.poses):
        i = rng.integers(len(bone_mesh.points))
        v, normal = bone_mesh.points[i], vertex_n[i]
        direction = rng.normal(size=3)
        if n % 4:  # 3 in 4: head 0.5-5 mm off the surface, pointing away from it
            head = v + normal * rng.uniform(0.5, 5.0)
            direction = direction if direction @ normal > 0 else -direction
        else:  # 1 in 4: head on the surface, any direction (mostly penetrating)
            head = v
        poses.append(C.pose_from_axis(head, head + direction, rng.uniform(0, 360)))

    live_ms, results = [], []
    C.live_clearance(field, screw, pose=poses[0])  # warm up
    for pose in poses:
        t = time.perf_counter()
        results.append(C.live_clearance(field, screw, pose=pose))
        live_ms.append((time.perf_counter() - t) * 1e3)

    t = time.perf_counter()
    C.exact_clearance(screw, poses[0], bone_mesh)
    print(f"fcl OBBRSS tree + VTK locator of the bone: {time.perf_counter() - t:.1f} s (once)")
    exact_ms, exact = [], []
    for pose in poses:
        t = time.perf_counter()
        exact.append(C.exact_clearance(screw, pose, bone_mesh))
        exact_ms.append((time.perf_counter() - t) * 1e3)

    # VTK peers on a subset of the poses (same meshes)
    bone_poly = _polydata(bone_mesh.points, bone_mesh.faces)
    screw_poly = _polydata(screw_mesh.points, screw_mesh.faces)
    subset = poses[: args.vtk_poses]
    coll = vtkCollisionDetectionFilter()
    coll.SetCollisionModeToAllContacts()
    coll.SetInputData(0, screw_poly)
    coll.SetInputData(1, bone_poly)
    coll.SetMatrix(1, _vtk_matrix(np.eye(4)))
    coll.SetMatrix(0, _vtk_matrix(subset[0]))
    t = time.perf_counter()
    coll.Update()  # builds the OBB trees
    print(f"vtkCollisionDetectionFilter first update (OBB trees): {time.perf_counter() - t:.1f} s")
    coll_ms, coll_hits = [], []
    for pose in subset:
        coll.SetMatrix(0, _vtk_matrix(pose))
        t = time.perf_counter()
        coll.Update()
        coll_ms.append((time.perf_counter() - t) * 1e3)
        coll_hits.append(coll.GetNumberOfContacts() > 0)
    implicit = vtkImplicitPolyDataDistance()
    implicit.SetInput(bone_poly)
    implicit.EvaluateFunction(0.0, 0.0, 0.0)  # builds the locator
    from vtkmodules.util import numpy_support

    dist_ms = []
    for pose in subset:
        t = time.perf_counter()
        pts = screw_mesh.points @ pose[:3, :3].T + pose[:3, 3]
        out = numpy_support.numpy_to_vtk(np.zeros(len(pts)), deep=True)
        implicit.FunctionValue(numpy_support.numpy_to_vtk(pts, deep=True), out)
        dist_ms.append((time.perf_counter() - t) * 1e3)

    vol = np.array([r.penetrating_volume_mm3 for r in results])
    vol_counted = np.array(
        [
            C.live_clearance(
                field, screw, pose=pose, interior=counted_interior
            ).penetrating_volume_mm3
            for pose in poses
        ]
    )
    vol_exact_path = np.array([r.penetrating_volume_mm3 for r in exact])
    # reference: the exact volume of the posed screw mesh inside the bone mesh
    from surgtwin.geometry.resection import mesh_to_manifold

    bone_mf, screw_mf = mesh_to_manifold(bone_mesh), mesh_to_manifold(screw_mesh)
    vol_ref = np.array(
        [
            float((screw_mf.transform(pose[:3, :4]) ^ bone_mf).volume()) if r.collides else 0.0
            for pose, r in zip(poses, exact, strict=True)
        ]
    )
    live_d = np.array([r.min_clearance_mm for r in results])
    exact_d = np.array([r.min_clearance_mm for r in exact])
    collide_live = np.array([r.collides for r in results])
    collide_exact = np.array([r.collides for r in exact])
    free = ~collide_exact
    err_free = np.abs(live_d[free] - exact_d[free])
    near = free & (exact_d < 2.0 * float(field.spacing.max()))
    err_pen = np.abs(live_d[~free] - exact_d[~free])
    agree = np.mean(collide_live == collide_exact) * 100
    vtk_agree = np.mean(np.array(coll_hits) == collide_exact[: len(subset)]) * 100
    med, p95 = statistics.median(live_ms), _pct(live_ms, 95)
    med_coll = statistics.median(coll_ms)
    print(f"poses: {len(poses)} ({int(free.sum())} clear, {int((~free).sum())} penetrating)")
    live_arr = np.asarray(live_ms)
    print(f"live (SDF) path: median {med:.3f} ms, p95 {p95:.3f} ms per pose")
    for label, sel in (("clear", free), ("penetrating", ~free)):
        if sel.any():
            print(
                f"  {label} poses ({int(sel.sum())}): median {np.median(live_arr[sel]):.3f} ms, "
                f"p95 {np.percentile(live_arr[sel], 95):.3f} ms"
            )
    for lo, hi in ((50.0, np.inf), (10.0, 50.0)):
        sel = (vol_ref > lo) & (vol_ref <= hi)
        if not sel.any():
            continue
        print(
            f"penetrating volume vs the exact mesh intersection (manifold3d), {int(sel.sum())} "
            f"poses of {lo:g}-{hi:g} mm^3: median / max error"
        )
        for label, v in (
            ("live, adaptive cells", vol),
            ("exact path, adaptive cells", vol_exact_path),
            ("before: samples every 1.25 mm counted", vol_counted),
        ):
            rel = np.abs(v[sel] - vol_ref[sel]) / vol_ref[sel] * 100
            print(f"  {label}: {np.median(rel):.2f} % / {rel.max():.2f} %")
    print(
        f"exact (fcl) path: median {statistics.median(exact_ms):.1f} ms, "
        f"p95 {_pct(exact_ms, 95):.1f} ms per pose"
    )
    print(
        f"vtkCollisionDetectionFilter (all contacts, the first {len(subset)} of the same "
        f"poses, same meshes): median "
        f"{med_coll:.1f} ms -> live is {med_coll / med:.0f}x faster; "
        f"collide agrees with fcl on {vtk_agree:.0f}%"
    )
    print(
        f"vtkImplicitPolyDataDistance at the {len(screw_mesh.points)} screw vertices "
        f"({len(subset)} poses): median {statistics.median(dist_ms):.2f} ms -> live is "
        f"{statistics.median(dist_ms) / med:.1f}x faster (and samples "
        f"{len(screw.points)} points, not the vertices only)"
    )
    print(f"collides: live agrees with fcl on {agree:.1f}% of poses")
    if free.any():
        print(
            f"non-penetrating: max |live - exact| {err_free.max():.3f} mm, median "
            f"{np.median(err_free):.3f} mm; within {2 * field.spacing.max():.1f} mm of the bone "
            f"(the refined band): max {np.abs(live_d[near] - exact_d[near]).max():.3f} mm "
            f"over {int(near.sum())} poses"
        )
    if (~free).any():
        print(
            f"penetrating: max |live - exact| {err_pen.max():.3f} mm, median "
            f"{np.median(err_pen):.3f} mm (exact depth: signed distance to the mesh at the "
            f"samples)"
        )
    max_err = float(err_free.max()) if free.any() else float("nan")
    print(
        f"ms_per_pose {med:.3f} speedup_vs_vtk_collision {med_coll / med:.0f} "
        f"max_error_mm {max_err:.3f}"
    )


if __name__ == "__main__":
    main()
