"""``surgtwin train list|score|author|results``: the training mode, headless.

Argument parsing only; each command calls one function of :mod:`surgtwin.training`. Errors
are :class:`~surgtwin.errors.SurgTwinError`, which :func:`surgtwin.cli.main` prints as one
line with exit code 1. ``surgtwin train score`` exits 0 when the attempt passes and 1 when it
fails, like ``surgtwin check``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, TextIO

from surgtwin.cli_plan import _NEGATIVE_VALUE, PlanArgumentError, parse_numbers

__all__ = ["register"]

EXIT_OK = 0
EXIT_FAILED = 1


def cmd_list(args: argparse.Namespace) -> int:
    from surgtwin.training.bundled import list_scenarios

    infos = list_scenarios(tuple(args.dir or ()))
    if args.json:
        doc = [
            {
                "key": i.key,
                "title": i.title,
                "task": i.task,
                "source": i.source,
                "time_limit_s": i.time_limit_s,
            }
            for i in infos
        ]
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    for i in infos:
        limit = "" if i.time_limit_s is None else f", {i.time_limit_s / 60:g} min"
        where = "" if i.source == "bundled" else f"  [{i.source}]"
        sys.stdout.write(f"{i.key}: {i.title}{limit}{where}\n    {i.task}\n")
    return EXIT_OK


def _num(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]], out: TextIO) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        out.write("  " + "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        out.write("\n")


def _print_result(doc: dict[str, Any], out: TextIO) -> None:
    sc = doc["scenario"]
    verdict = "PASSED" if doc["passed"] else "FAILED"
    out.write(f"{sc['title']} ({sc['key']}): score {doc['score']:.1f}/100, {verdict}\n")
    if doc["implants"]:
        header = ("implant", "status", "entry mm", "tip mm", "angle deg", "grade", "clear. mm")
        rows = [
            (
                i["name"],
                i["status"],
                _num(i["entry_error_mm"]),
                _num(i["tip_error_mm"]),
                _num(i["angle_error_deg"]),
                i["grade"] or "-",
                _num(i["min_clearance_mm"]),
            )
            for i in doc["implants"]
        ]
        _table(header, rows, out)
    if doc["resections"]:
        header = ("resection", "status", "removed", "margin mm", "healthy cm3", "expert cm3")
        rows = [
            (
                r["name"],
                r["status"],
                "-" if r["target_removed"] is None else ("yes" if r["target_removed"] else "NO"),
                _num(r["margin_mm"]),
                _num(
                    None
                    if r["healthy_bone_removed_mm3"] is None
                    else r["healthy_bone_removed_mm3"] / 1000,
                    2,
                ),
                _num(
                    None
                    if r["expert_healthy_bone_removed_mm3"] is None
                    else r["expert_healthy_bone_removed_mm3"] / 1000,
                    2,
                ),
            )
            for r in doc["resections"]
        ]
        _table(header, rows, out)
    for text in doc["feedback"]:
        out.write(f"- {text}\n")


def cmd_score(args: argparse.Namespace) -> int:
    from surgtwin.training.attempt import load_attempt, with_overrides
    from surgtwin.training.scenario import load_scenario
    from surgtwin.training.scoring import score_attempt

    scenario = load_scenario(args.scenario)
    plan, meta = load_attempt(args.attempt)
    if meta is not None and meta.scenario_key and meta.scenario_key != scenario.key:
        sys.stderr.write(
            f"surgtwin: note: {args.attempt} was made for scenario {meta.scenario_key!r}, "
            f"scored here against {scenario.key!r}\n"
        )
    time_taken = None
    if args.time_taken is not None:
        time_taken = parse_numbers(args.time_taken, 1, "--time-taken", "(seconds)")[0]
        if time_taken < 0:
            raise PlanArgumentError("--time-taken: must be 0 or more seconds")
    meta = with_overrides(
        meta, trainee=args.trainee, time_taken_s=time_taken, undo_count=args.undos
    )
    result = score_attempt(plan, scenario, meta)
    doc = result.to_dict()
    if args.record:
        from surgtwin.training.progress import ProgressStore

        attempt_id = ProgressStore().record(
            result, meta, attempt_file=str(Path(args.attempt).resolve())
        )
        doc["attempt_id"] = attempt_id
    if args.json:
        json.dump(doc, sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
    else:
        _print_result(doc, sys.stdout)
        if args.record:
            sys.stdout.write(f"recorded as attempt {doc['attempt_id']}\n")
    return EXIT_OK if result.passed else EXIT_FAILED


def cmd_author(args: argparse.Namespace) -> int:
    from surgtwin.planning.planfile import load_plan
    from surgtwin.training.scenario import Tolerances, author_scenario, save_scenario

    expert = load_plan(args.plan)
    case = load_plan(args.case) if args.case else None
    tolerances = Tolerances()
    if args.margin is not None:
        margin = parse_numbers(args.margin, 1, "--margin", "(mm)")[0]
        if margin < 0:
            raise PlanArgumentError("--margin: must be 0 or more mm")
        tolerances = Tolerances(margin_mm=margin)
    time_limit = None
    if args.time_limit is not None:
        minutes = parse_numbers(args.time_limit, 1, "--time-limit", "(minutes)")[0]
        if minutes <= 0:
            raise PlanArgumentError("--time-limit: must be a positive number of minutes")
        time_limit = minutes * 60.0
    midline = None
    if args.midline_x is not None:
        midline = parse_numbers(args.midline_x, 1, "--midline-x", "(LPS mm)")[0]
    scenario = author_scenario(
        expert,
        args.task,
        case=case,
        key=args.key,
        title=args.title,
        allowed_implants=args.allow,
        any_implant=args.any_implant,
        tolerances=tolerances,
        time_limit_s=time_limit,
        midline_x_mm=midline,
    )
    path = save_scenario(scenario, args.output)
    implants, cuts = scenario.expert_counts()
    info = scenario.info
    allowed = "any" if info.allowed_implants is None else str(len(info.allowed_implants))
    sys.stdout.write(
        f"{info.key}: {info.title}\n"
        f"  expert plan: {implants} implant(s), {cuts} cut(s) (hidden from trainees)\n"
        f"  allowed catalogue entries: {allowed}; midline x = {info.midline_x_mm:.1f} mm (LPS)\n"
        f"written {path}\n"
    )
    return EXIT_OK


def cmd_results(args: argparse.Namespace) -> int:
    from surgtwin.training.progress import ProgressStore

    store = ProgressStore()
    if args.csv:
        path = store.export_csv(args.csv, trainee=args.trainee, scenario_key=args.scenario)
        sys.stdout.write(f"written {path}\n")
        return EXIT_OK
    rows = [
        r for r in store.latest_results(args.trainee) if args.scenario in (None, r.scenario_key)
    ]
    if args.json:
        doc = [
            {
                "trainee": r.trainee,
                "scenario": r.scenario_key,
                "attempts": r.attempts,
                "latest_score": r.latest.score,
                "latest_passed": r.latest.passed,
                "latest_at": r.latest.recorded_at,
                "best_score": r.best_score,
                "passed_ever": r.passed_ever,
            }
            for r in rows
        ]
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    if not rows:
        sys.stdout.write(f"no attempts recorded in {store.path}\n")
        return EXIT_OK
    header = ("trainee", "scenario", "attempts", "latest", "passed", "best", "when (UTC)")
    table = [
        (
            r.trainee,
            r.scenario_key,
            str(r.attempts),
            f"{r.latest.score:.1f}",
            "yes" if r.latest.passed else "no",
            f"{r.best_score:.1f}",
            r.latest.recorded_at,
        )
        for r in rows
    ]
    _table(header, table, sys.stdout)
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``train`` with ``list``, ``score``, ``author`` and ``results``."""
    train = sub.add_parser("train", help="training mode: scenarios, scoring, progress")
    tsub = train.add_subparsers(dest="train_command", metavar="TRAIN_COMMAND", required=True)

    p = tsub.add_parser(
        "list",
        help="list the training scenarios (bundled, then yours in <data folder>/scenarios)",
    )
    p.add_argument(
        "--dir",
        action="append",
        metavar="FOLDER",
        help="also list the .surgscn files and scenario folders in FOLDER (repeatable)",
    )
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=cmd_list)

    p = tsub.add_parser(
        "score",
        help="score an attempt against a scenario's expert plan (exit 1 if it fails)",
        description=(
            "Score a trainee's plan against the hidden expert plan of a scenario: per implant "
            "the entry, tip and angle errors, breach grade and clearances; per resection the "
            "margin, whether the target is removed and the healthy bone removed; a total 0-100, "
            "pass/fail and feedback. The numbers are those the application shows."
        ),
    )
    p.add_argument("attempt", help="the trainee's plan (.surgplan)")
    p.add_argument(
        "--scenario",
        required=True,
        metavar="S",
        help="a bundled scenario key (e.g. l4-bilateral), a .surgscn file or a scenario folder",
    )
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument("--trainee", metavar="NAME", help="the trainee (default: the attempt's)")
    p.add_argument("--time-taken", metavar="SECONDS", help="time taken (default: the attempt's)")
    p.add_argument("--undos", type=int, metavar="N", help="undos made (default: the attempt's)")
    p.add_argument("--record", action="store_true", help="store the result in the progress store")
    p.set_defaults(func=cmd_score)

    p = tsub.add_parser(
        "author",
        help="make a scenario from a saved plan (its implants and cuts: the expert plan)",
        description=(
            "Make a training scenario from a saved plan: the plan's implants and cuts become "
            "the hidden expert plan; the trainee starts from its structures. A plan with cuts "
            "needs --case (the plan saved before the cuts, e.g. from surgtwin plan new), "
            "because a cut changes the structure it cuts. -o NAME.surgscn writes one file, any "
            "other name a folder."
        ),
    )
    p.add_argument("plan", help="the expert plan (.surgplan)")
    p.add_argument("--task", required=True, help="the task shown to the trainee")
    p.add_argument("-o", "--output", required=True, help="the scenario (.surgscn or folder)")
    p.add_argument("--case", metavar="PLAN", help="the plan the trainee starts from")
    p.add_argument("--key", help="short identifier (default: from the title)")
    p.add_argument("--title", help="title (default: the plan's name)")
    p.add_argument(
        "--allow",
        action="append",
        metavar="KEY",
        help="a catalogue entry the trainee may use (repeatable; default: every entry of the "
        "kinds the expert used)",
    )
    p.add_argument("--any-implant", action="store_true", help="allow every catalogue entry")
    p.add_argument("--time-limit", metavar="MIN", help="time limit in minutes (default: none)")
    p.add_argument("--margin", metavar="MM", help="resection margin required, mm (default 5)")
    p.add_argument("--midline-x", metavar="X", help="LPS x of the midline, mm (default: found)")
    p.set_defaults(func=cmd_author)

    p = tsub.add_parser(
        "results",
        help="the instructor's view: every trainee's latest result per scenario; CSV export",
    )
    p.add_argument("--trainee", metavar="NAME", help="only this trainee")
    p.add_argument("--scenario", metavar="KEY", help="only this scenario")
    p.add_argument("--csv", metavar="FILE", help="write every attempt's measures as CSV")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=cmd_results)
    for parser in (train, *tsub.choices.values()):
        parser._negative_number_matcher = _NEGATIVE_VALUE
