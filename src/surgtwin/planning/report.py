"""The plan report: one HTML file or a PDF with the case, images, implants and checks.

:func:`build_report` gathers everything (:class:`ReportData`); :func:`write_report` writes it
as a self-contained HTML file (images inlined as base64 PNG) or an A4 PDF (Matplotlib
``PdfPages``: text pages with the tables, then image pages), chosen by the file extension.

Contents: the case (anonymised by default: no patient name, ID, birth date, sex, study date,
UIDs or source path; ``include_patient=True`` adds them), a 3D overview (off screen, see
:func:`~surgtwin.planning.report_render.render_overview`; a note replaces it when it cannot be
rendered), for every implant an axial-oblique and a sagittal-oblique CT slice through its axis
with the implant and structure outlines, the implant table (type, size, entry and tip LPS mm,
axial and sagittal angles of :func:`~surgtwin.planning.implants.angulation`, the midline taken
as the centre of the bone structures), the clearance table of
:func:`~surgtwin.planning.checks.check_plan`, resections, measurements, the software version
and the date. When the CT cannot be loaded from the plan's source path the slices are left out
with a note.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from surgtwin import __version__
from surgtwin.errors import SurgTwinError
from surgtwin.planning.checks import PlanReport, check_plan
from surgtwin.planning.plan import Plan
from surgtwin.planning.report_render import SliceImage

__all__ = ["ReportData", "ReportError", "build_report", "write_report"]

FORMATS = {".html": "html", ".htm": "html", ".pdf": "pdf"}
_A4_IN = (8.27, 11.69)
_LINES_PER_PAGE = 78


class ReportError(SurgTwinError):
    """A report cannot be written (unknown format)."""


@dataclass
class ReportData:
    """Everything in a report, as text rows and PNG images."""

    title: str
    generated: str
    software: str
    case: list[tuple[str, str]]
    implants: list[dict[str, str]]
    checks: PlanReport
    measurements: list[tuple[str, str, str]]
    overview_png: bytes | None = None
    slices: list[SliceImage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------- gathering


def _fmt(p) -> str:
    return "(" + ", ".join(f"{float(v):.2f}" for v in p) + ")"


def _load_volume(plan: Plan):
    from surgtwin.imaging import load

    src = plan.case.source_path
    if not src or not Path(src).exists():
        return None, "the CT was not found at the plan's source path: no slices"
    uid = plan.case.series_uids[0] if plan.case.series_uids else None
    try:
        return load(src, uid=uid), ""
    except SurgTwinError as exc:
        return None, f"the CT could not be loaded ({exc}): no slices"


def _case_rows(plan: Plan, volume, include_patient: bool) -> list[tuple[str, str]]:
    rows = [("Plan", plan.name)]
    if volume is not None:
        info = volume.info
        rows += [
            ("Modality", info.modality),
            ("Series", info.description),
            ("Study", info.study_description),
            ("Body part", info.body_part),
        ]
        if include_patient:
            pat = volume.patient
            rows += [
                ("Patient name", pat.name),
                ("Patient ID", pat.patient_id),
                ("Birth date", pat.birth_date),
                ("Sex", pat.sex),
                ("Study date", info.study_date),
            ]
    if include_patient:
        rows += [
            ("Study UID", plan.case.study_uid),
            ("Series UID", ", ".join(plan.case.series_uids)),
            ("Source", plan.case.source_path),
        ]
    else:
        rows.append(("Patient", "anonymised (identifiers, dates and UIDs left out)"))
    if plan.notes:
        rows.append(("Notes", plan.notes))
    return [(k, v) for k, v in rows if v]


def _midline_x(plan: Plan) -> float:
    xs = [
        s.mesh.bounds()
        for s in plan.structures.values()
        if s.role == "bone" and s.mesh is not None and len(s.mesh.points)
    ]
    if not xs:
        return 0.0
    return float((min(b[0] for b in xs) + max(b[1] for b in xs)) / 2)


def _placed(record):
    """The plan record as a placed :class:`~surgtwin.planning.implants.Implant`."""
    from surgtwin.planning.checks import _spec
    from surgtwin.planning.implants import Implant

    return Implant(record.name, _spec(record), np.asarray(record.pose))


def _implant_rows(plan: Plan, checks: PlanReport) -> list[dict[str, str]]:
    from surgtwin.planning.implants import angulation

    midline = _midline_x(plan)
    rows = []
    for rep in checks.implants:
        record = plan.implants[rep.name]
        p = record.parameters
        size = " x ".join(
            f"{float(p[k]):g} mm" for k in ("diameter_mm", "length_mm") if k in p
        ) or (record.spec_key or "-")
        try:
            axial, sagittal = angulation(_placed(record), midline)
            angles = (f"{axial:+.1f}", f"{sagittal:+.1f}")
        except (ValueError, SurgTwinError):
            angles = ("-", "-")
        rows.append(
            {
                "name": rep.name,
                "type": rep.type,
                "model": record.spec_key,
                "size": size,
                "entry": _fmt(rep.entry_lps),
                "tip": _fmt(rep.tip_lps),
                "axial": angles[0],
                "sagittal": angles[1],
            }
        )
    return rows


def _images(plan: Plan, checks: PlanReport, volume, data: ReportData) -> None:
    from surgtwin.planning import report_render as R
    from surgtwin.planning.checks import _spec

    structures = [
        (s.mesh, s.color, 0.35 if s.role == "bone" else 1.0)
        for s in plan.structures.values()
        if s.mesh is not None and s.visible
    ]
    meshes = {}
    for rep in checks.implants:
        record = plan.implants[rep.name]
        meshes[rep.name] = _spec(record).local_mesh().transformed(np.asarray(record.pose))
    data.overview_png, note = R.render_overview(structures, list(meshes.values()))
    if note:
        data.notes.append(note)
    if volume is None:
        return
    for rep in checks.implants:
        entry, tip = np.asarray(rep.entry_lps), np.asarray(rep.tip_lps)
        half = max(40.0, float(np.linalg.norm(tip - entry)) / 2 + 15.0)
        for name, centre, h, v, letters in R.oblique_planes(entry, tip):
            img = R.resample_plane(volume.array, volume.lps_to_index, centre, h, v, half)
            outlines = [
                (R.plane_segments(s.mesh, centre, h, v), s.color, s.name)
                for s in plan.structures.values()
                if s.mesh is not None and s.role != "bone"
            ]
            outlines.append(
                (R.plane_segments(meshes[rep.name], centre, h, v), R.IMPLANT_COLOUR, rep.name)
            )
            title = f"{rep.name}: {name} plane through the axis"
            png = R.render_slice(img, half, outlines, title, letters)
            data.slices.append(SliceImage(rep.name, name, title, png))


def build_report(plan: Plan, *, include_patient: bool = False, images: bool = True) -> ReportData:
    """Gather the report of a plan.

    Parameters
    ----------
    plan : Plan
    include_patient : bool
        Add the patient's name, ID, birth date, sex, the study date, UIDs and source path.
    images : bool
        Render the 3D overview and the slices (False: tables only).

    Returns
    -------
    ReportData
    """
    checks = check_plan(plan)
    volume, note = _load_volume(plan) if (images or include_patient) else (None, "")
    data = ReportData(
        title=f"Surgical plan report: {plan.name}",
        generated=_dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z").strip(),
        software=f"SurgTwin {__version__}",
        case=_case_rows(plan, volume, include_patient),
        implants=_implant_rows(plan, checks),
        checks=checks,
        measurements=[
            (m.name, m.kind, f"{m.value:.2f} {m.unit}") for m in plan.measurements.values()
        ],
    )
    if note and plan.implants:
        data.notes.append(note)
    if images:
        _images(plan, checks, volume, data)
    return data


# ---------------------------------------------------------------------- tables as rows


def _check_rows(data: ReportData) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    header = (
        "implant",
        "structure",
        "role",
        "clearance mm",
        "margin mm",
        "status",
        "grade",
        "method",
    )
    rows = [
        (
            imp.name,
            c.structure,
            c.role,
            f"{c.min_clearance_mm:.2f}",
            f"{c.margin_mm:g}",
            c.status.upper() if c.status == "fail" else c.status,
            c.grade or "-",
            c.method,
        )
        for imp in data.checks.implants
        for c in imp.checks
    ]
    return header, rows


def _implant_table(data: ReportData) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    header = ("implant", "type", "size", "entry LPS mm", "tip LPS mm", "axial deg", "sagittal deg")
    keys = ("name", "type", "size", "entry", "tip", "axial", "sagittal")
    return header, [tuple(r[k] for k in keys) for r in data.implants]


def _resection_table(data: ReportData) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    header = ("cut", "structure", "removed cm3", "remaining cm3", "target removed", "margin mm")
    rows = []
    for r in data.checks.resections:
        removed = "-" if r.target_removed is None else ("yes" if r.target_removed else "NO")
        margin = "-" if r.margin_mm is None else f"{r.margin_mm:.2f}"
        rows.append(
            (
                r.name,
                r.structure,
                f"{r.removed_mm3 / 1000:.2f}",
                f"{r.remaining_mm3 / 1000:.2f}",
                removed,
                margin,
            )
        )
    return header, rows


def _verdict(data: ReportData) -> str:
    return "all checks passed" if data.checks.passed else "CHECK FAILED"


def _sections(data: ReportData):
    """(title, header, rows) of every table, in report order."""
    yield "Case", ("field", "value"), data.case
    yield "Implants", *_implant_table(data)
    yield "Clearances", *_check_rows(data)
    yield "Resections", *_resection_table(data)
    yield "Measurements", ("name", "kind", "value"), data.measurements


# ---------------------------------------------------------------------- HTML

_CSS = """body{font-family:sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #aaa;padding:3px 8px;
font-size:13px;text-align:left}th{background:#eee}.fail{color:#b00;font-weight:bold}
.warn{color:#b60}.note{color:#555;font-style:italic}img{max-width:100%;border:1px solid #ccc}
figure{display:inline-block;margin:.5em}"""


_CLASSES = {"FAIL": "fail", "warn": "warn", "NO": "fail"}


def _img(png: bytes, alt: str) -> str:
    b64 = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


def to_html(data: ReportData) -> str:
    """The report as one self-contained HTML document."""
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        f'<html lang="en"><head><meta charset="utf-8"><title>{e(data.title)}</title>',
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{e(data.title)}</h1>",
        f"<p>{e(data.software)}, generated {e(data.generated)}. "
        f"<strong>{e(_verdict(data))}</strong></p>",
    ]
    out += [f'<p class="note">{e(n)}</p>' for n in data.notes]
    for title, header, rows in _sections(data):
        out.append(f"<h2>{e(title)}</h2>")
        if not rows:
            out.append("<p>none</p>")
            continue
        out.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
        for row in rows:
            cells = "".join(
                f'<td class="{_CLASSES[v]}">{e(v)}</td>'
                if v in _CLASSES
                else f"<td>{e(str(v))}</td>"
                for v in row
            )
            out.append(f"<tr>{cells}</tr>")
        out.append("</table>")
    out.append("<h2>3D overview</h2>")
    if data.overview_png is not None:
        out.append(f"<figure>{_img(data.overview_png, '3D overview')}</figure>")
    else:
        out.append('<p class="note">not available</p>')
    if data.slices:
        out.append("<h2>Slices along the implant axes</h2>")
        for s in data.slices:
            out.append(
                f"<figure>{_img(s.png, s.caption)}<figcaption>{e(s.caption)}</figcaption></figure>"
            )
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------- PDF


def _text_lines(data: ReportData) -> list[str]:
    lines = [data.title, "", f"{data.software}, generated {data.generated}", _verdict(data), ""]
    lines += [f"Note: {n}" for n in data.notes]
    for title, header, rows in _sections(data):
        lines += ["", title, "-" * len(title)]
        if not rows:
            lines.append("none")
            continue
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            lines.append("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)))
    return lines


def _wrap(lines: list[str], width: int = 128) -> list[str]:
    out = []
    for line in lines:
        while len(line) > width:
            out.append(line[:width])
            line = "    " + line[width:]
        out.append(line)
    return out


def to_pdf(data: ReportData) -> bytes:
    """The report as A4 PDF pages (text and tables first, then the images)."""
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure
    from matplotlib.image import imread

    buf = io.BytesIO()
    lines = _wrap(_text_lines(data))
    with PdfPages(buf, metadata={"Title": data.title, "Creator": data.software}) as pdf:
        for start in range(0, len(lines), _LINES_PER_PAGE):
            fig = Figure(figsize=_A4_IN)
            chunk = "\n".join(lines[start : start + _LINES_PER_PAGE])
            fig.text(0.06, 0.96, chunk, family="monospace", fontsize=6.6, va="top")
            pdf.savefig(fig)
        images = []
        if data.overview_png is not None:
            images.append([("3D overview", data.overview_png)])
        # the slice PNGs carry their own title
        for i in range(0, len(data.slices), 2):
            images.append([("", s.png) for s in data.slices[i : i + 2]])
        for page in images:
            fig = Figure(figsize=_A4_IN)
            fig.suptitle(data.title, fontsize=9)
            for n, (caption, png) in enumerate(page):
                ax = fig.add_axes((0.06, 0.52 - 0.47 * n, 0.88, 0.42))
                ax.imshow(imread(io.BytesIO(png), format="png"))
                ax.set_axis_off()
                ax.set_title(caption, fontsize=8)
            pdf.savefig(fig)
    return buf.getvalue()


# ---------------------------------------------------------------------- writing


def write_report(
    plan: Plan,
    path: str | os.PathLike,
    *,
    include_patient: bool = False,
    images: bool = True,
) -> tuple[Path, ReportData]:
    """Write the report of ``plan`` to ``path`` (``.html``/``.htm`` or ``.pdf``), atomically.

    Raises
    ------
    ReportError
        Unknown extension.
    FileError
        The file cannot be written.
    """
    from surgtwin.fileio import atomic_write

    path = Path(path)
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ReportError(f"{path}: unknown report format (use .pdf or .html)")
    data = build_report(plan, include_patient=include_patient, images=images)
    payload = to_html(data).encode("utf-8") if kind == "html" else to_pdf(data)
    with atomic_write([path]) as (tmp,):
        tmp.write_bytes(payload)
    return path, data
