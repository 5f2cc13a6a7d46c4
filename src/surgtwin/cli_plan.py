"""``surgtwin plan new|add-implant|cut``, ``surgtwin check`` and ``surgtwin report``.

Argument parsing only; each command calls one core function of :mod:`surgtwin.planning.case`
or :mod:`surgtwin.planning.checks`. Points are patient LPS millimetres written ``x,y,z``.
Bad values (numbers, names, files) raise :class:`PlanArgumentError` or another
:class:`~surgtwin.errors.SurgTwinError`, which :func:`surgtwin.cli.main` prints as one line
with exit code 1. ``surgtwin check`` exits 1 when any check fails (a collision, a margin not
kept, a breach out of the bone, a target left behind), 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from surgtwin.errors import SurgTwinError

__all__ = ["PlanArgumentError", "parse_numbers", "register"]

EXIT_OK = 0
EXIT_FAILED = 1
#: Values like ``-20.2,10,2`` are numbers, not options (argparse only knows ``-20.2``).
_NEGATIVE_VALUE = re.compile(r"^-\.?\d[\d.eE+-]*(,[-+]?\.?\d[\d.eE+-]*)*$")


class PlanArgumentError(SurgTwinError):
    """A command-line value that cannot be used (the message names the option)."""


def parse_numbers(text: str, count: int, option: str, what: str = "x,y,z (LPS mm)") -> list[float]:
    """``count`` finite numbers separated by commas.

    Parameters
    ----------
    text : str
        E.g. ``"20.2,10,2"``.
    count : int
        How many numbers are needed.
    option : str
        The option named in the error (``"--entry"``).
    what : str
        What the numbers are, for the error message.

    Raises
    ------
    PlanArgumentError
    """
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != count or not all(math.isfinite(v) for v in values):
        need = "a number" if count == 1 else f"{count} numbers"
        raise PlanArgumentError(f"{option}: expected {need} {what}, got {text!r}")
    return values


def _positive(text: str | None, option: str) -> float | None:
    if text is None:
        return None
    value = parse_numbers(text, 1, option, "(mm)")[0]
    if value <= 0:
        raise PlanArgumentError(f"{option}: must be a positive number of mm, got {text!r}")
    return value


class _InOrder(argparse.Action):
    """Collect ``--critical`` and the options that belong to it, in command-line order."""

    def __call__(self, parser, namespace, values, option_string=None):
        items = list(getattr(namespace, "structure_items", None) or [])
        items.append((option_string, values))
        namespace.structure_items = items


def _critical_requests(items: Sequence[tuple[str, str]] | None):
    """The CriticalRequests of ``--critical NAME [--seed P]... [--hu LO,HI] [--mesh F]``;
    None when no ``--critical`` was given (then the phantom's canal, if any)."""
    from surgtwin.planning.case import DEFAULT_CRITICAL_HU, CriticalRequest

    if not items:
        return None
    groups: list[dict[str, Any]] = []
    for option, value in items:
        if option == "--critical":
            groups.append({"name": value, "seeds": [], "hu": None, "mesh": None, "role": None})
            continue
        if not groups:
            raise PlanArgumentError(f"{option} must follow a --critical NAME")
        g = groups[-1]
        if option == "--seed":
            g["seeds"].append(tuple(parse_numbers(value, 3, "--seed")))
        elif option == "--hu":
            lo, hi = parse_numbers(value, 2, "--hu", "lo,hi (HU)")
            if lo > hi:
                raise PlanArgumentError(f"--hu: the range {value!r} is empty (lo > hi)")
            g["hu"] = (lo, hi)
        elif g[option[2:]] is not None:
            raise PlanArgumentError(f"{option} given twice for --critical {g['name']!r}")
        else:
            g[option[2:]] = value
    return [
        CriticalRequest(
            g["name"],
            tuple(g["seeds"]),
            g["hu"] or DEFAULT_CRITICAL_HU,
            g["mesh"],
            g["role"] or "critical",
        )
        for g in groups
    ]


# ---------------------------------------------------------------------- commands


def cmd_plan_new(args: argparse.Namespace) -> int:
    from surgtwin.cli import TerminalProgress
    from surgtwin.planning.case import build_plan
    from surgtwin.planning.planfile import save_plan

    requests = _critical_requests(getattr(args, "structure_items", None))
    progress = TerminalProgress("loading")
    try:
        plan = build_plan(
            args.path,
            series_uid=args.series,
            presets=args.preset or ["bone"],
            critical=requests,
            progress=progress,
            name=Path(args.output).name.removesuffix(".surgplan") or "Plan",
        )
    finally:
        progress.close()
    path = save_plan(plan, args.output)
    for s in plan.structures.values():
        volume = abs(s.mesh.volume_mm3()) / 1000 if s.mesh is not None else float("nan")
        sys.stdout.write(f"{s.name} ({s.role}, margin {s.margin_mm:g} mm): {volume:.1f} cm3\n")
    sys.stdout.write(f"written {path}\n")
    return EXIT_OK


def cmd_plan_add_implant(args: argparse.Namespace) -> int:
    from surgtwin.planning.case import place_implant
    from surgtwin.planning.checks import entry_and_tip
    from surgtwin.planning.planfile import load_plan, save_plan

    entry = parse_numbers(args.entry, 3, "--entry")
    target = parse_numbers(args.target, 3, "--target")
    diameter = _positive(args.diameter, "--diameter")
    length = _positive(args.length, "--length")
    plan = load_plan(args.plan)
    record, spec = place_implant(
        plan,
        args.type,
        entry,
        target,
        diameter_mm=diameter,
        length_mm=length,
        name=args.name,
    )
    save_plan(plan, args.plan)
    head, tip = entry_and_tip(record)
    sys.stdout.write(
        f"added {record.name}: {spec.name} ({spec.key})\n"
        f"  entry {_fmt_point(head)} mm, tip {_fmt_point(tip)} mm (LPS)\n"
    )
    return EXIT_OK


def _cut_tool(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The tool and its parameters of ``--plane``, ``--box`` or ``--sphere`` (LPS mm)."""
    if args.plane is not None:
        v = parse_numbers(args.plane, 6, "--plane", "px,py,pz,nx,ny,nz (LPS mm)")
        return "plane", {"point": v[:3], "normal": v[3:]}
    if args.box is not None:
        v = parse_numbers(args.box, 6, "--box", "cx,cy,cz,sx,sy,sz (LPS mm)")
        if min(v[3:]) <= 0:
            raise PlanArgumentError(f"--box: the edges must be positive mm, got {args.box!r}")
        return "box", {"centre": v[:3], "size": v[3:]}
    v = parse_numbers(args.sphere, 4, "--sphere", "cx,cy,cz,r (LPS mm)")
    if v[3] <= 0:
        raise PlanArgumentError(f"--sphere: the radius must be positive mm, got {args.sphere!r}")
    return "sphere", {"centre": v[:3], "radius": v[3]}


def cmd_plan_cut(args: argparse.Namespace) -> int:
    from surgtwin.planning.commands import CommandStack
    from surgtwin.planning.cuts import cut_structure
    from surgtwin.planning.planfile import load_plan, save_plan

    tool, params = _cut_tool(args)
    plan = load_plan(args.plan)
    command = cut_structure(plan, args.structure, tool, params, name=args.name)
    CommandStack(plan).push(command)
    save_plan(plan, args.plan)
    cut = command.cut
    p = cut.parameters
    voxels = f", {p['voxels_removed']} voxels cleared" if p["voxels_removed"] else ""
    sys.stdout.write(
        f"{cut.name}: {cut.structure} {p['structure_mm3'] / 1000:.2f} cm3 -> removed "
        f"{p['removed_mm3'] / 1000:.2f} cm3, remaining {p['remaining_mm3'] / 1000:.2f} cm3"
        f"{voxels}\n"
    )
    return EXIT_OK


def cmd_plan_move(args: argparse.Namespace) -> int:
    """Move a placed implant: translate, slide along its axis, turn about its entry, snap the
    entry to the bone surface; one step each, applied in that order."""
    from surgtwin.planning.case import CaseGeometry
    from surgtwin.planning.checks import entry_and_tip
    from surgtwin.planning.commands import CommandStack, MoveImplant
    from surgtwin.planning.implants import pose_from_trajectory
    from surgtwin.planning.placement import (
        DIRECTIONS,
        rotate_about_entry,
        slide_along_axis,
        snap_entry_to_surface,
        translate,
    )
    from surgtwin.planning.planfile import load_plan, save_plan

    plan = load_plan(args.plan)
    if args.implant not in plan.implants:
        known = ", ".join(repr(k) for k in plan.implants) or "none"
        raise PlanArgumentError(f"no implant {args.implant!r} in the plan (implants: {known})")
    if not (args.translate or args.slide is not None or args.rotate or args.snap):
        raise PlanArgumentError("nothing to do: give --translate, --slide, --rotate or --snap")
    record = plan.implants[args.implant]
    pose = np.asarray(record.pose).copy()
    if args.translate:
        pose = translate(pose, parse_numbers(args.translate, 3, "--translate"))
    if args.slide is not None:
        pose = slide_along_axis(pose, float(args.slide))
    if args.rotate:
        letter, _, angle = args.rotate.partition(":")
        if letter.strip().upper() not in DIRECTIONS or not angle:
            raise PlanArgumentError(
                f"--rotate: expected DIRECTION:DEGREES like S:5 (about the patient axis "
                f"towards L, R, A, P, S or I through the entry), got {args.rotate!r}"
            )
        entry, _tip = entry_and_tip(record.with_pose(pose))
        axis = np.asarray(DIRECTIONS[letter.strip().upper()], dtype=float)
        pose = rotate_about_entry(pose, axis, float(angle), entry)
    if args.snap:
        geo = CaseGeometry(plan)
        bones = [s for s in plan.structures.values() if s.role == "bone"]
        field = geo.field(bones[0]) if bones else None
        if field is None:
            raise PlanArgumentError("--snap needs a segmented bone structure in the plan")
        entry, tip = entry_and_tip(record.with_pose(pose))
        new_entry = snap_entry_to_surface(entry, tip, field)
        pose = pose_from_trajectory(
            new_entry, tip + (new_entry - entry), float(np.linalg.norm(tip - entry))
        )
    CommandStack(plan).push(MoveImplant(plan, record.name, pose))
    save_plan(plan, args.plan)
    head, tip = entry_and_tip(plan.implants[record.name])
    sys.stdout.write(
        f"moved {record.name}: entry {_fmt_point(head)} mm, tip {_fmt_point(tip)} mm (LPS)\n"
    )
    return EXIT_OK


def _fmt_point(p) -> str:
    return "(" + ", ".join(f"{float(v):.2f}" for v in p) + ")"


def _print_report(doc: dict[str, Any], out: TextIO) -> None:
    header = ("structure", "role", "clearance mm", "margin mm", "status", "grade", "method")
    for imp in doc["implants"]:
        out.write(
            f"{imp['name']} ({imp['type']}): entry {_fmt_point(imp['entry_lps'])} -> "
            f"tip {_fmt_point(imp['tip_lps'])} mm (LPS)\n"
        )
        rows = [
            (
                c["structure"],
                c["role"],
                f"{c['min_clearance_mm']:.2f}",
                f"{c['margin_mm']:g}",
                c["status"].upper() if c["status"] == "fail" else c["status"],
                c["grade"] or "-",
                c["method"],
            )
            for c in imp["checks"]
        ]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            line = "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True))
            out.write("  " + line.rstrip() + "\n")
        for c in imp["checks"]:
            if c.get("purchase"):
                b = c["purchase"]
                out.write(
                    f"  purchase in {c['structure']}: {b['axis_in_bone_mm']:.1f} of "
                    f"{b['axis_length_mm']:.1f} mm of axis, "
                    f"{100 * b['surface_in_bone_fraction']:.0f}% of the surface\n"
                )
    if not doc["implants"]:
        out.write("no implants\n")
    for r in doc["resections"]:
        margin = "-" if r["margin_mm"] is None else f"{r['margin_mm']:.2f} mm"
        removed = "-" if r["target_removed"] is None else ("yes" if r["target_removed"] else "NO")
        out.write(
            f"{r['name']}: {r['structure']} removed {r['removed_mm3'] / 1000:.2f} cm3, "
            f"remaining {r['remaining_mm3'] / 1000:.2f} cm3, target removed {removed}, "
            f"margin {margin}\n"
        )
    out.write("all checks passed\n" if doc["passed"] else "CHECK FAILED\n")


def cmd_check(args: argparse.Namespace) -> int:
    from surgtwin.planning.checks import check_plan
    from surgtwin.planning.planfile import load_plan

    report = check_plan(load_plan(args.plan))
    doc = report.to_dict()
    if args.json:
        json.dump(doc, sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
    else:
        _print_report(doc, sys.stdout)
    return EXIT_OK if report.passed else EXIT_FAILED


def cmd_report(args: argparse.Namespace) -> int:
    from surgtwin.planning.planfile import load_plan
    from surgtwin.planning.report import write_report

    path, data = write_report(
        load_plan(args.plan), args.output, include_patient=args.include_patient
    )
    for note in data.notes:
        sys.stdout.write(f"note: {note}\n")
    sys.stdout.write(f"written {path}\n")
    return EXIT_OK


# ---------------------------------------------------------------------- parser


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``plan`` (with ``new``, ``add-implant``, ``cut``), ``check`` and ``report``."""
    from surgtwin.segmentation.presets import PRESETS

    plan = sub.add_parser("plan", help="create and edit a surgical plan (.surgplan)")
    psub = plan.add_subparsers(dest="plan_command", metavar="PLAN_COMMAND", required=True)

    p = psub.add_parser(
        "new",
        help="segment a series into a new plan (bone preset; the phantom's spinal canal)",
        description=(
            "Segment a series with presets and add critical structures: --critical NAME "
            "--seed x,y,z [--seed ...] [--hu lo,hi] grows a region (default -50,45 HU: CSF) "
            "from LPS seeds; --critical NAME --mesh FILE imports a surface in LPS mm. For the "
            "bundled phantom (ground_truth.json beside the DICOM), without --critical the "
            "spinal canal is grown from the ground truth's canal centres."
        ),
    )
    p.add_argument("path", help="a DICOM folder, file, .zip or DICOMDIR")
    p.add_argument("--series", metavar="UID", help="series UID (default: the largest)")
    p.add_argument(
        "--preset",
        action="append",
        choices=sorted(PRESETS),
        help="segmentation preset (repeat for several; default: bone)",
    )
    p.add_argument("--critical", metavar="NAME", action=_InOrder, help="a critical structure")
    p.add_argument("--seed", metavar="X,Y,Z", action=_InOrder, help="seed point, LPS mm")
    p.add_argument("--hu", metavar="LO,HI", action=_InOrder, help="region growing window, HU")
    p.add_argument("--mesh", metavar="FILE", action=_InOrder, help="surface file in LPS mm")
    p.add_argument(
        "--role", choices=["critical", "target"], action=_InOrder, help="role of the structure"
    )
    p.add_argument("-o", "--output", required=True, help="the plan file to write (.surgplan)")
    p.set_defaults(func=cmd_plan_new, structure_items=None)

    p = psub.add_parser("add-implant", help="place a catalogue implant along a trajectory")
    p.add_argument("plan", help="the plan file (.surgplan), updated in place")
    p.add_argument("--type", default="pedicle_screw", help="implant kind (default pedicle_screw)")
    p.add_argument("--entry", required=True, metavar="X,Y,Z", help="entry point, LPS mm")
    p.add_argument("--target", required=True, metavar="X,Y,Z", help="aim point, LPS mm")
    p.add_argument("--diameter", metavar="D", help="wanted diameter, mm (nearest size)")
    p.add_argument("--length", metavar="L", help="wanted length, mm (nearest size)")
    p.add_argument("--name", metavar="N", help='implant name (default "Pedicle screw <n>")')
    p.set_defaults(func=cmd_plan_add_implant)

    p = psub.add_parser(
        "cut",
        help="resect a structure with a plane, box or sphere",
        description=(
            "Cut a structure: its surface becomes the part outside the tool, and for a "
            "segmented structure the voxels whose centres lie inside the tool are cleared. "
            "Later checks see the cut structure."
        ),
    )
    p.add_argument("plan", help="the plan file (.surgplan), updated in place")
    p.add_argument("--structure", required=True, metavar="NAME", help="structure to cut")
    tools = p.add_mutually_exclusive_group(required=True)
    tools.add_argument(
        "--plane",
        metavar="PX,PY,PZ,NX,NY,NZ",
        help="a point on the plane and the normal towards the part removed, LPS mm",
    )
    tools.add_argument(
        "--box",
        metavar="CX,CY,CZ,SX,SY,SZ",
        help="remove a box: its centre and its edges along x, y, z, LPS mm",
    )
    tools.add_argument(
        "--sphere", metavar="CX,CY,CZ,R", help="remove a sphere: its centre and radius, LPS mm"
    )
    p.add_argument("--name", metavar="N", help='cut name (default "Cut <n>")')
    p.set_defaults(func=cmd_plan_cut)

    p = psub.add_parser(
        "move",
        help="move a placed implant (translate, slide, turn about its entry, snap to bone)",
    )
    p.add_argument("plan", help="the plan file (.surgplan), updated in place")
    p.add_argument("--implant", required=True, metavar="NAME", help="the implant to move")
    p.add_argument("--translate", metavar="DX,DY,DZ", help="shift, LPS mm")
    p.add_argument("--slide", metavar="MM", type=float, help="along the axis, + towards the tip")
    p.add_argument(
        "--rotate",
        metavar="DIR:DEG",
        help="turn about the patient axis towards DIR (L R A P S I) through the entry, degrees",
    )
    p.add_argument(
        "--snap", action="store_true", help="slide the entry along the axis onto the bone surface"
    )
    p.set_defaults(func=cmd_plan_move)

    p = sub.add_parser(
        "check",
        help="clearance table of a plan; exit 1 when a margin fails or anything collides",
    )
    p.add_argument("plan", help="the plan file (.surgplan)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=cmd_check)

    r = sub.add_parser(
        "report",
        help="write a plan report (.pdf or .html): case, images, implants, clearances",
        description=(
            "A report of the plan: the case (anonymised unless --include-patient), a 3D "
            "overview, CT slices along each implant, the implant and clearance tables, "
            "resections and measurements. The format follows the extension of -o."
        ),
    )
    r.add_argument("plan", help="the plan file (.surgplan)")
    r.add_argument("-o", "--output", required=True, help="the report to write (.pdf or .html)")
    r.add_argument(
        "--include-patient",
        action="store_true",
        help="show the patient's name, ID and birth date (default: anonymised)",
    )
    r.set_defaults(func=cmd_report)
    for parser in (plan, *psub.choices.values(), p, r):
        parser._negative_number_matcher = _NEGATIVE_VALUE
