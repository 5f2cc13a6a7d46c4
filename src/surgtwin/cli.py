"""``surgtwin <command>``: argument parsing only; each command calls one core function.

Errors are printed as one clear line on stderr with a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from surgtwin import __version__
from surgtwin.errors import SurgTwinError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_NOTHING_LOADABLE = 2


class TerminalProgress:
    """A one-line progress bar on stderr, shown only on a terminal and after one second."""

    def __init__(self, label: str, stream=None):
        self.label = label
        self.stream = stream or sys.stderr
        self.start = time.monotonic()
        self.shown = False
        self.enabled = hasattr(self.stream, "isatty") and self.stream.isatty()

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or time.monotonic() - self.start < 1.0:
            return
        width = 30
        filled = int(width * done / max(total, 1))
        bar = "#" * filled + "-" * (width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {done}/{total}")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


def _fmt_list(values, digits: int | None = None) -> str:
    if values is None:
        return "-"
    if digits is None:
        return "x".join(str(v) for v in values)
    return " x ".join(f"{v:.{digits}f}".rstrip("0").rstrip(".") for v in values)


def info_report(path: str) -> dict:
    """Scan ``path`` and return the ``surgtwin info --json`` document."""
    from surgtwin.imaging import scan

    progress = TerminalProgress("reading headers")
    try:
        index = scan(path, progress=progress)
    finally:
        progress.close()
    series = [s.summary() for s in index.series]
    return {
        "path": index.root,
        "series": series,
        "non_images": [
            {"path": n.ref.name, "kind": n.kind, "modality": n.modality, "series_uid": n.series_uid}
            for n in index.non_images
        ],
        "skipped": [s.to_dict() for s in index.skipped],
    }


def _print_info(report: dict, out) -> None:
    series = report["series"]
    out.write(f"SurgTwin {__version__}: {report['path']}\n")
    if series:
        header = (
            "#",
            "modality",
            "size (cols x rows x slices)",
            "spacing mm (x y z)",
            "files",
            "status",
        )
        rows = []
        for k, s in enumerate(series, start=1):
            status = "ok" if s["loadable"] else "NOT LOADABLE"
            rows.append(
                (
                    str(k),
                    s["modality"] or "?",
                    _fmt_list(s["size"]),
                    _fmt_list(s["spacing"], 3),
                    str(s["n_files"]),
                    status,
                )
            )
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        out.write("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + "\n")
        for k, (row, s) in enumerate(zip(rows, series, strict=True), start=1):
            out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + "\n")
            out.write(f"    uid: {s['uid']}\n")
            if s["description"]:
                out.write(f"    description: {s['description']}\n")
            for f in s["findings"]:
                out.write(f"    [{f['severity']}] {f['code']}: {f['message']}\n")
            if k < len(series):
                out.write("\n")
    else:
        out.write("no image series found\n")
    if report["non_images"]:
        out.write(f"\n{len(report['non_images'])} non-image object(s), listed but not loaded:\n")
        for n in report["non_images"]:
            out.write(f"  {n['path']}: {n['kind']}\n")
    if report["skipped"]:
        out.write(f"\n{len(report['skipped'])} file(s) skipped:\n")
        for s in report["skipped"]:
            out.write(f"  {s['path']}: {s['reason']}\n")


def cmd_info(args: argparse.Namespace) -> int:
    report = info_report(args.path)
    loadable = [s for s in report["series"] if s["loadable"]]
    if args.json:
        json.dump(
            {"series": report["series"], "skipped": report["skipped"], **_extra(report)},
            sys.stdout,
            indent=2,
        )
        sys.stdout.write("\n")
    else:
        _print_info(report, sys.stdout)
    if not loadable:
        if not report["series"]:
            reason = "no DICOM image series found"
            if report["skipped"]:
                reason += f" ({len(report['skipped'])} file(s) skipped, see above)"
        else:
            reason = (
                "; ".join(
                    f"{s['uid']}: "
                    + next(f["message"] for f in s["findings"] if f["severity"] == "error")
                    for s in report["series"]
                    if any(f["severity"] == "error" for f in s["findings"])
                )
                or "no series has usable geometry"
            )
        sys.stderr.write(f"surgtwin: {args.path}: no series can be loaded: {reason}\n")
        return EXIT_NOTHING_LOADABLE
    return EXIT_OK


def load_report(path: str, uid: str | None, resample: bool) -> dict:
    """Load one series and describe the volume (geometry in LPS mm, value range)."""
    from surgtwin.imaging import load

    progress = TerminalProgress("loading")
    try:
        vol = load(path, uid=uid, resample=resample, progress=progress)
    finally:
        progress.close()
    arr = vol.array
    return {
        "uid": vol.info.series_uid,
        "modality": vol.info.modality,
        "description": vol.info.description,
        "size": list(vol.size),
        "spacing": [float(v) for v in vol.spacing],
        "origin_lps": [float(v) for v in vol.origin],
        "direction": [float(v) for v in vol.direction.reshape(-1)],
        "bounds_lps": [float(v) for v in vol.bounds()],
        "units": vol.info.units,
        "dtype": str(arr.dtype),
        "min": float(arr.min()),
        "max": float(arr.max()),
        "findings": [f.to_dict() for f in vol.findings],
    }


def cmd_load(args: argparse.Namespace) -> int:
    report = load_report(args.path, args.series, args.resample)
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    unit = f" {report['units']}" if report["units"] else ""
    sys.stdout.write(
        f"{report['modality']} {report['description']!r}\n"
        f"  size      {_fmt_list(report['size'])} voxels\n"
        f"  spacing   {_fmt_list(report['spacing'], 4)} mm\n"
        f"  origin    {_fmt_list(report['origin_lps'], 2)} mm (LPS)\n"
        f"  values    {report['min']:g} .. {report['max']:g}{unit} ({report['dtype']})\n"
    )
    for f in report["findings"]:
        sys.stdout.write(f"  [{f['severity']}] {f['code']}: {f['message']}\n")
    return EXIT_OK


def _segment(args: argparse.Namespace):
    """Load the series and apply the presets: (volume, label map)."""
    from surgtwin.imaging import load
    from surgtwin.segmentation import LabelMap, apply_preset

    progress = TerminalProgress("loading")
    try:
        vol = load(args.path, uid=args.series, resample=args.resample, progress=progress)
    finally:
        progress.close()
    labelmap = LabelMap.for_volume(vol)
    for key in args.preset:
        apply_preset(labelmap, vol, key)
    return vol, labelmap


def export_report(args: argparse.Namespace) -> dict:
    """Segment with presets, build the meshes and write them; the ``--json`` document."""
    from surgtwin.geometry.mesh_io import export_meshes
    from surgtwin.geometry.surface import labelmap_to_meshes

    vol, labelmap = _segment(args)
    progress = TerminalProgress("building surfaces")
    try:
        meshes = labelmap_to_meshes(
            labelmap, smooth_iterations=args.smooth, decimate=args.decimate, progress=progress
        )
    finally:
        progress.close()
    files = export_meshes(
        meshes,
        args.output,
        fmt=args.format,
        space=args.space,
        patient=vol.patient,
        include_patient=args.include_patient,
    )
    if len(files) == 1 and len(meshes) > 1:
        files = files * len(meshes)
    rows = []
    for mesh, path in zip(meshes, files, strict=True):
        st = mesh.stats()
        rows.append(
            {
                "name": mesh.name,
                "file": str(path),
                "triangles": st.triangles,
                "volume_mm3": round(st.volume_mm3, 3),
                "area_mm2": round(st.area_mm2, 3),
                "watertight": st.watertight,
                "bounds_lps": [round(v, 4) for v in st.bounds_lps],
            }
        )
    return {"meshes": rows, "space": args.space, "format": args.format}


def cmd_export(args: argparse.Namespace) -> int:
    report = export_report(args)
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    for m in report["meshes"]:
        sys.stdout.write(
            f"{m['name']}: {m['file']}  {m['triangles']} triangles, "
            f"{m['volume_mm3'] / 1000:.1f} cm3, "
            f"{'watertight' if m['watertight'] else 'NOT watertight'}\n"
        )
    return EXIT_OK


def cmd_segment(args: argparse.Namespace) -> int:
    from surgtwin.segmentation import seg_io

    vol, labelmap = _segment(args)
    out = str(args.output)
    if out.endswith(".dcm"):
        seg_io.write_dicom_seg(labelmap, vol, out, include_patient=args.include_patient)
    elif out.endswith((".nii", ".nii.gz")):
        seg_io.write_nifti(labelmap, out)
    elif out.endswith(".nrrd"):
        seg_io.write_seg_nrrd(labelmap, out)
    else:
        raise SurgTwinError(f"{out}: unknown segmentation format (use .seg.nrrd, .nii.gz or .dcm)")
    for label in labelmap.labels.values():
        sys.stdout.write(
            f"{label.name} ({label.role}): {labelmap.volume_mm3(label.value) / 1000:.1f} cm3\n"
        )
    sys.stdout.write(f"written {out}\n")
    return EXIT_OK


def _extra(report: dict) -> dict:
    return {"path": report["path"], "non_images": report["non_images"]}


def cmd_gui(args: argparse.Namespace) -> int:
    if args.path is not None and not Path(args.path).exists():
        raise SurgTwinError(f"{args.path}: no such file or folder")
    from surgtwin.app.main import run_gui

    return run_gui(args.path, args.screenshot)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="surgtwin",
        description="SurgTwin: surgical planning on a patient's digital twin (CT/MR).",
    )
    parser.add_argument("--version", action="version", version=f"surgtwin {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser(
        "info",
        help="list the series in a folder, zip or DICOMDIR, with findings and skipped files",
    )
    p.add_argument("path", help="a DICOM folder (searched recursively), file, .zip or DICOMDIR")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=cmd_info)
    p = sub.add_parser("load", help="load one series as a volume and describe it")
    p.add_argument("path", help="a DICOM folder, file, .zip or DICOMDIR")
    p.add_argument("--series", metavar="UID", help="series UID (default: the largest loadable)")
    p.add_argument(
        "--resample",
        action="store_true",
        help="interpolate missing slices / uneven spacing onto a uniform grid",
    )
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=cmd_load)

    def segmentation_args(p: argparse.ArgumentParser) -> None:
        from surgtwin.segmentation.presets import PRESETS

        p.add_argument("path", help="a DICOM folder, file, .zip or DICOMDIR")
        p.add_argument("--series", metavar="UID", help="series UID (default: the largest)")
        p.add_argument(
            "--preset",
            action="append",
            required=True,
            choices=sorted(PRESETS),
            help="segmentation preset (repeat for several structures)",
        )
        p.add_argument("--resample", action="store_true", help="resample uneven slice spacing")
        p.add_argument(
            "--include-patient",
            action="store_true",
            help="keep patient identifiers in the written files (default: anonymised)",
        )

    p = sub.add_parser("export", help="segment with presets and export watertight meshes")
    segmentation_args(p)
    p.add_argument("--format", default="stl", choices=["stl", "obj", "ply", "vtp", "glb", "3mf"])
    p.add_argument("--space", default="LPS", choices=["LPS", "RAS"], type=str.upper)
    p.add_argument("--smooth", type=int, default=20, metavar="N", help="smoothing iterations")
    p.add_argument(
        "--decimate", type=float, default=None, metavar="F", help="fraction of triangles to remove"
    )
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("segment", help="segment with presets and write .seg.nrrd, .nii.gz or .dcm")
    segmentation_args(p)
    p.add_argument("-o", "--output", required=True, help="output file (.seg.nrrd, .nii.gz, .dcm)")
    p.set_defaults(func=cmd_segment)

    p = sub.add_parser("gui", help="open the workstation window (on a DICOM folder or plan)")
    p.add_argument("path", nargs="?", help="a DICOM folder, .zip, DICOMDIR or .surgplan")
    p.add_argument(
        "--screenshot",
        metavar="FILE.png",
        help="open PATH as `make run` does, save a screenshot of the window and exit",
    )
    p.set_defaults(func=cmd_gui)

    from surgtwin.cli_plan import register as register_plan_commands
    from surgtwin.cli_train import register as register_train_commands

    register_plan_commands(sub)
    register_train_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        args = parser.parse_args(["gui"])
    try:
        return int(args.func(args))
    except SurgTwinError as exc:
        sys.stderr.write(f"surgtwin: {exc}\n")
        return EXIT_NOTHING_LOADABLE if args.command == "info" else EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("surgtwin: interrupted\n")
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except SystemExit:
        raise
    except BaseException as exc:  # the CLI must never end in a traceback (incl. Rust panics)
        sys.stderr.write(
            f"surgtwin: internal error ({type(exc).__name__}: {exc}); please report this\n"
        )
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
