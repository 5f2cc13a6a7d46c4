"""Bone preset to a smoothed, watertight mesh: SurgTwin against a classic SimpleITK + VTK chain.

Usage: python benchmarks/bench_mesh.py [SERIES_DIR] [--runs N]

Both start from the same CT volume in memory. The peer chain: SimpleITK BinaryThreshold at
250 HU, ConnectedComponent + RelabelComponent (largest), vtkMarchingCubes, then
vtkWindowedSincPolyDataFilter with 20 iterations. SurgTwin: the bone preset (>= 226 HU, islands
with cortical bone, cavities filled) and its surface (flying edges + windowed sinc, 20
iterations). SurgTwin switches VTK's SMP backend to STDThread (all cores); the peer runs as
shipped (VTK wheels default to the Sequential backend), and again with STDThread for reference.
Peak memory is the growth of resident memory over the loaded volume, in a fresh subprocess for
each. The last line is ``ratio <project/peer>`` of the median times against the peer as shipped.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import peak_memory

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ct-abdomen-spine"

MEMORY_PROBE = r"""
sys.path.insert(0, sys.argv[3])
import bench_mesh
from surgtwin.imaging import load
vol = load(sys.argv[2], cache=None)
img = vol.to_sitk() if sys.argv[1] == "peer" else None
# import the VTK modules both use before the baseline (their code is not the workload's memory)
import vtkmodules.vtkFiltersCore, vtkmodules.vtkCommonDataModel, vtkmodules.util.numpy_support
import surgtwin.geometry.surface, surgtwin.segmentation.presets
base = hwm()
mesh = bench_mesh.project(vol) if sys.argv[1] == "project" else bench_mesh.peer(img, vol)
print(json.dumps({"peak_bytes": hwm() - base, "volume_bytes": vol.array.nbytes}))
"""


def project(vol):
    from surgtwin.geometry.surface import mask_to_mesh
    from surgtwin.segmentation.presets import bone

    return mask_to_mesh(bone(vol), vol.geometry, smooth_iterations=20, name="bone")


def peer(img, vol):
    import numpy as np
    import SimpleITK as sitk
    from vtkmodules.util import numpy_support
    from vtkmodules.vtkCommonDataModel import vtkImageData
    from vtkmodules.vtkFiltersCore import vtkMarchingCubes, vtkWindowedSincPolyDataFilter

    mask = sitk.BinaryThreshold(img, 250, 32767, 1, 0)
    largest = sitk.RelabelComponent(sitk.ConnectedComponent(mask), sortByObjectSize=True) == 1
    arr = sitk.GetArrayViewFromImage(largest).astype(np.uint8)
    image = vtkImageData()
    image.SetDimensions(arr.shape[2], arr.shape[1], arr.shape[0])
    image.SetSpacing(*vol.spacing)
    image.SetOrigin(*vol.origin)
    image.GetPointData().SetScalars(numpy_support.numpy_to_vtk(arr.reshape(-1), deep=True))
    mc = vtkMarchingCubes()
    mc.SetInputData(image)
    mc.SetValue(0, 0.5)
    mc.Update()
    sinc = vtkWindowedSincPolyDataFilter()
    sinc.SetInputConnection(mc.GetOutputPort())
    sinc.SetNumberOfIterations(20)
    sinc.SetPassBand(0.1)
    sinc.NormalizeCoordinatesOn()
    sinc.Update()
    return sinc.GetOutput()


def memory(which: str, folder: str) -> dict:
    return peak_memory.measure(MEMORY_PROBE, which, folder, str(Path(__file__).parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default=str(DEFAULT))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from vtkmodules.vtkCommonCore import vtkSMPTools

    from surgtwin.geometry.mesh import Mesh, edge_counts
    from surgtwin.imaging import load

    default_backend = vtkSMPTools.GetBackend()
    vol = load(args.folder, cache=None)
    img = vol.to_sitk()

    def timed(fn, backend):
        vtkSMPTools.SetBackend(backend)
        t = time.perf_counter()
        out = fn()
        return time.perf_counter() - t, out

    timed(lambda: project(vol), "STDThread")
    timed(lambda: peer(img, vol), default_backend)
    ours, theirs, theirs_mt = [], [], []
    for _ in range(max(5, args.runs)):
        dt, mesh = timed(lambda: project(vol), "STDThread")
        ours.append(dt)
        dt, poly = timed(lambda: peer(img, vol), default_backend)
        theirs.append(dt)
        theirs_mt.append(timed(lambda: peer(img, vol), "STDThread")[0])
    peer_mesh = Mesh.from_pyvista(__import__("pyvista").wrap(poly))
    st = mesh.stats()
    t_ours, t_theirs = statistics.median(ours), statistics.median(theirs)
    t_mt = statistics.median(theirs_mt)
    print(f"series: {args.folder} {vol.size} voxels, {vol.nbytes / 2**20:.1f} MiB")
    print(
        f"runs: {len(ours)} each, interleaved; VTK threads available: "
        f"{vtkSMPTools.GetEstimatedNumberOfThreads()}"
    )
    print(
        f"project (bone preset + flying edges + sinc 20, STDThread): median {t_ours:.3f} s "
        f"(min {min(ours):.3f}); {st.triangles} triangles, {st.volume_mm3 / 1000:.1f} cm3, "
        f"watertight {st.watertight}"
    )
    b, nm, _ = edge_counts(peer_mesh.faces)
    print(
        f"peer (sitk threshold 250 + largest component + marching cubes + sinc 20, VTK "
        f"{default_backend} as shipped): median {t_theirs:.3f} s (min {min(theirs):.3f}); "
        f"{peer_mesh.n_triangles} triangles, {abs(peer_mesh.volume_mm3()) / 1000:.1f} cm3, "
        f"watertight {b == 0 and nm == 0}"
    )
    print(
        f"peer with VTK STDThread (for reference): median {t_mt:.3f} s; "
        f"ratio project/peer-threaded {t_ours / t_mt:.2f}"
    )
    for name in ("project", "peer"):
        m = memory(name, args.folder)
        print(
            f"{name} peak memory: {m['peak_bytes'] / 2**20:.1f} MiB = "
            f"{m['peak_bytes'] / m['volume_bytes']:.2f}x the volume's bytes"
        )
    print(f"ratio {t_ours / t_theirs:.2f}")


if __name__ == "__main__":
    main()
