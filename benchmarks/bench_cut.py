"""Resection cuts on a bone mesh: SurgTwin (manifold3d) against vtkBooleanOperationPolyDataFilter.

Usage: python benchmarks/bench_cut.py [SERIES_DIR] [--timeout S] [--runs N]

The bone mesh of the CT (bone preset, ``mask_to_mesh`` defaults; about 600k triangles for
ct-abdomen-spine) is cut by a plane (axial, through the middle of the mesh's bounding box) and
by a 40 mm box at the same place. SurgTwin: :func:`surgtwin.geometry.resection.resect` (both
parts from one ``Manifold.split``, conversion in and out included). Peer: VTK's
``vtkBooleanOperationPolyDataFilter`` computing the difference and the intersection with the
same tool surface (two filter runs), as PyVista's boolean filters do. The peer runs in a
subprocess with a time limit, on the full mesh and on coarser copies (the same mask on every
2nd / 4th voxel; the same copy for both), smallest first; after a timeout the larger sizes are
skipped. Each output is checked
with ``Mesh.is_watertight``, as returned and after merging coincident points (VTK may duplicate
points along the intersection curve). The last line is ``ratio <project/peer>`` of the plane
cut times on the full mesh, or says that the peer failed there.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ct-abdomen-spine"


def _check(points: np.ndarray, faces: np.ndarray) -> dict:
    from surgtwin.geometry.mesh import Mesh, merge_vertices

    mesh = Mesh(points, faces)
    merged = Mesh(*merge_vertices(points, faces)) if len(faces) else mesh
    return {
        "triangles": len(faces),
        "volume_mm3": mesh.volume_mm3() if len(faces) else 0.0,
        "watertight": bool(mesh.is_watertight()),
        "watertight_merged": bool(merged.is_watertight()),
    }


def peer_worker(npz: str) -> None:
    """Run the VTK Booleans on the saved body and tool; print one JSON line."""
    from vtkmodules.util import numpy_support
    from vtkmodules.vtkFiltersGeneral import vtkBooleanOperationPolyDataFilter

    from surgtwin.geometry.mesh import Mesh

    data = np.load(npz)
    body = Mesh(data["body_points"], data["body_faces"]).to_pyvista()
    tool = Mesh(data["tool_points"], data["tool_faces"]).to_pyvista()
    out = {}
    t0 = time.perf_counter()
    for label, op in (("remaining", 2), ("resected", 1)):  # VTK_DIFFERENCE, VTK_INTERSECTION
        f = vtkBooleanOperationPolyDataFilter()
        f.SetOperation(op)
        f.SetInputData(0, body)
        f.SetInputData(1, tool)
        f.Update()
        poly = f.GetOutput()
        if poly.GetNumberOfCells() == 0:
            out[label] = _check(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64))
            continue
        pts = numpy_support.vtk_to_numpy(poly.GetPoints().GetData()).astype(float)
        conn = numpy_support.vtk_to_numpy(poly.GetPolys().GetConnectivityArray())
        out[label] = _check(pts, conn.reshape(-1, 3).astype(np.int64))
    out["seconds"] = time.perf_counter() - t0
    print(json.dumps(out))


def run_peer(body, tool, timeout: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        npz = str(Path(tmp) / "case.npz")
        np.savez(
            npz,
            body_points=body.points,
            body_faces=body.faces,
            tool_points=tool.points,
            tool_faces=tool.faces,
        )
        cmd = [sys.executable, __file__, "--peer-worker", npz]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"status": f"timed out after {timeout:g} s"}
    if proc.returncode != 0:
        return {"status": f"crashed (exit {proc.returncode}): {proc.stderr.strip()[-200:]}"}
    return {"status": "ok", **json.loads(proc.stdout.strip().splitlines()[-1])}


def run_project(body, tool, runs: int) -> dict:
    from surgtwin.geometry.resection import resect

    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        r = resect(body, tool)
        times.append(time.perf_counter() - t0)
    return {
        "status": "ok",
        "seconds": statistics.median(times),
        "remaining": _check(r.remaining.points, r.remaining.faces),
        "resected": _check(r.resected.points, r.resected.faces),
    }


def _fmt(res: dict, original_mm3: float) -> str:
    if res["status"] != "ok":
        return res["status"]
    rem, res_ = res["remaining"], res["resected"]
    total = rem["volume_mm3"] + res_["volume_mm3"]
    return (
        f"{res['seconds']:8.3f} s  watertight remaining/resected: {rem['watertight']}/"
        f"{res_['watertight']} (after merging points: {rem['watertight_merged']}/"
        f"{res_['watertight_merged']})  volumes {rem['volume_mm3']:.0f} + "
        f"{res_['volume_mm3']:.0f} mm^3 = {total / original_mm3:.4%} of the original"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("series", nargs="?", default=str(DEFAULT))
    ap.add_argument("--timeout", type=float, default=120.0, help="peer time limit per run, s")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--peer-worker")
    args = ap.parse_args()
    if args.peer_worker:
        peer_worker(args.peer_worker)
        return

    from surgtwin.geometry.resection import box_tool, plane_tool
    from surgtwin.geometry.surface import mask_to_mesh
    from surgtwin.imaging import load
    from surgtwin.imaging.volume import ImageGeometry
    from surgtwin.segmentation.presets import bone

    vol = load(args.series, cache=None)
    mask = bone(vol)
    full = mask_to_mesh(mask, vol.geometry, name="bone", role="bone")
    lo, hi = full.points.min(axis=0), full.points.max(axis=0)
    mid = (lo + hi) / 2
    print(
        f"bone mesh: {full.n_triangles} triangles, watertight {full.is_watertight()}, "
        f"{full.volume_mm3():.0f} mm^3, extent {np.round(hi - lo, 1).tolist()} mm"
    )
    tools = {
        "plane": plane_tool(mid, (0.0, 0.0, 1.0)),
        "box": box_tool(mid, (40.0, 40.0, 40.0)),
    }
    # coarser copies: the same mask on every 4th / 2nd voxel (watertight by construction;
    # quadric decimation of this mesh leaves non-manifold edges, which neither method accepts)
    bodies = {}
    for label, step in (("coarse 4x", 4), ("coarse 2x", 2)):
        g = ImageGeometry(
            tuple(-(-n // step) for n in vol.geometry.shape),
            tuple(float(sp) * step for sp in vol.geometry.spacing),
            vol.geometry.origin,
            vol.geometry.direction,
        )
        sub = mask[::step, ::step, ::step]
        bodies[label] = mask_to_mesh(sub, g, name="bone", role="bone")
    bodies["full"] = full
    sizes = list(bodies)
    results: dict = {}
    for tname, tool in tools.items():
        tool_mesh = tool.to_mesh()
        peer_gave_up = None
        for label in sizes:
            body = bodies[label]
            vol0 = body.volume_mm3()
            print(
                f"\n{tname} cut, {label} ({body.n_triangles} triangles, "
                f"watertight {body.is_watertight()})"
            )
            proj = run_project(body, tool, args.runs)
            print(f"  project (manifold3d): {_fmt(proj, vol0)}")
            if peer_gave_up:
                peer = {"status": f"skipped: {peer_gave_up} on a smaller mesh"}
            else:
                peer = run_peer(body, tool_mesh, args.timeout)
                if peer["status"] != "ok":
                    peer_gave_up = peer["status"]
            print(f"  peer (vtkBooleanOperationPolyDataFilter): {_fmt(peer, vol0)}")
            results[(tname, label)] = (proj, peer)

    proj, peer = results[("plane", "full")]
    if peer["status"] == "ok":
        print(f"ratio {proj['seconds'] / peer['seconds']:.4g}")
    else:
        done = [k for k in ("coarse 2x", "coarse 4x") if results[("plane", k)][1]["status"] == "ok"]
        extra = ""
        if done:
            p, q = results[("plane", done[0])]
            extra = f"; on the {done[0]} mesh: ratio {p['seconds'] / q['seconds']:.4g}"
        print(f"ratio n/a: the peer failed on the full mesh plane cut ({peer['status']}){extra}")


if __name__ == "__main__":
    main()
