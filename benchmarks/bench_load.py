"""Load a DICOM series: SurgTwin (scan + load) against SimpleITK's ImageSeriesReader.

Usage: python benchmarks/bench_load.py SERIES_DIR [--runs N]

Both run in this process, interleaved, on a warm file cache; SurgTwin's volume cache is off so
every run reads and decodes the files. Peak memory is measured in a fresh subprocess for each
reader (peak RSS growth over the interpreter with its libraries loaded). The last line is
``ratio <project/peer>`` of the median times.
"""

from __future__ import annotations

import argparse
import statistics
import time

import peak_memory

MEMORY_PROBE = r"""
import numpy as np, SimpleITK as sitk
from surgtwin.imaging import load, scan
which, folder = sys.argv[1], sys.argv[2]
base = hwm()
if which == "project":
    vol = load(scan(folder).loadable()[0], cache=None)
    nbytes = vol.array.nbytes
else:
    r = sitk.ImageSeriesReader()
    r.SetFileNames(r.GetGDCMSeriesFileNames(folder))
    img = r.Execute()
    nbytes = sitk.GetArrayViewFromImage(img).nbytes
print(json.dumps({"peak_bytes": hwm() - base, "volume_bytes": nbytes}))
"""


def project_once(folder: str):
    from surgtwin.imaging import load, scan

    t = time.perf_counter()
    vol = load(scan(folder).loadable()[0], cache=None)
    return time.perf_counter() - t, vol


def peer_once(folder: str):
    import SimpleITK as sitk

    t = time.perf_counter()
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(folder))
    img = reader.Execute()
    return time.perf_counter() - t, img


def memory(which: str, folder: str) -> dict:
    return peak_memory.measure(MEMORY_PROBE, which, folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    import numpy as np
    import SimpleITK as sitk

    # warm-up (file cache, imports) for both
    _, vol = project_once(args.folder)
    _, img = peer_once(args.folder)
    same = np.array_equal(sitk.GetArrayViewFromImage(img).astype(np.float32), vol.array)
    ours, theirs = [], []
    for _ in range(max(5, args.runs)):
        ours.append(project_once(args.folder)[0])
        theirs.append(peer_once(args.folder)[0])
    t_ours, t_theirs = statistics.median(ours), statistics.median(theirs)
    mem_ours = memory("project", args.folder)
    mem_theirs = memory("peer", args.folder)
    print(f"series: {args.folder}")
    print(
        f"volume: {vol.size} voxels, spacing {tuple(round(v, 4) for v in vol.spacing)} mm, "
        f"{vol.array.dtype}, {vol.nbytes / 2**20:.1f} MiB; identical to SimpleITK: {same}"
    )
    print(f"runs: {len(ours)} each, interleaved")
    print(
        f"project (surgtwin scan + load): median {t_ours * 1000:.1f} ms "
        f"(min {min(ours) * 1000:.1f}, max {max(ours) * 1000:.1f})"
    )
    print(
        f"peer (SimpleITK ImageSeriesReader): median {t_theirs * 1000:.1f} ms "
        f"(min {min(theirs) * 1000:.1f}, max {max(theirs) * 1000:.1f})"
    )
    for name, m in (("project", mem_ours), ("peer", mem_theirs)):
        peak, vol_bytes = m["peak_bytes"], m["volume_bytes"]
        print(
            f"{name} peak memory: {peak / 2**20:.1f} MiB = {peak / vol_bytes:.2f}x "
            f"the volume's {vol_bytes / 2**20:.1f} MiB"
        )
    print(f"ratio {t_ours / t_theirs:.2f}")


if __name__ == "__main__":
    main()
