"""``surgtwin report`` on the bundled lumbar phantom with the ideal L4 left screw."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from surgtwin import __version__
from surgtwin.cli import main
from surgtwin.planning.checks import entry_and_tip
from surgtwin.planning.planfile import load_plan
from testdata import REPO

PHANTOM = REPO / "sample_dicom"
PATIENT_NAME = "PHANTOM^LUMBAR"


def _csv(p) -> str:
    return ",".join(f"{float(v):.4f}" for v in p)


@pytest.fixture(scope="module")
def plan_file(tmp_path_factory) -> Path:
    """The phantom plan with the ideal L4 left screw (6.5 x 45 mm)."""
    path = tmp_path_factory.mktemp("report") / "case.surgplan"
    assert main(["plan", "new", str(PHANTOM), "-o", str(path)]) == 0
    truth = json.loads((PHANTOM / "ground_truth.json").read_text())
    screw = truth["levels"]["L4"]["pedicle_screws"]["left"]
    argv = ["plan", "add-implant", str(path), "--entry", _csv(screw["entry"])]
    argv += ["--target", _csv(screw["target"]), "--diameter", "6.5", "--length", "45"]
    assert main(argv) == 0
    return path


@pytest.fixture(scope="module")
def html_report(plan_file) -> str:
    out = plan_file.parent / "report.html"
    assert main(["report", str(plan_file), "-o", str(out)]) == 0
    return out.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def pdf_report(plan_file) -> Path:
    out = plan_file.parent / "report.pdf"
    assert main(["report", str(plan_file), "-o", str(out)]) == 0
    return out


def pdf_text(data: bytes) -> str:
    """The text drawn on the pages of a (matplotlib-written) PDF: the string operands of each
    text object, streams inflated."""
    import zlib

    out = []
    for m in re.finditer(rb"stream\r?\n(.*?)endstream", data, re.S):
        raw = m.group(1)
        # a decompressor object ignores the end-of-line bytes before "endstream"
        with contextlib.suppress(zlib.error):  # not deflated
            raw = zlib.decompressobj().decompress(raw)
        for block in re.findall(rb"BT(.*?)ET", raw, re.S):
            parts = re.findall(rb"\(((?:\\.|[^\\)])*)\)", block)
            text = b"".join(re.sub(rb"\\(.)", rb"\1", p) for p in parts)
            out.append(text.decode("latin-1"))
    return "\n".join(out)


def _pngs(text: str) -> list[bytes]:
    return [
        base64.b64decode(b) for b in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", text)
    ]


def test_html_holds_the_plan(html_report, plan_file):
    plan = load_plan(plan_file)
    (record,) = plan.implants.values()
    entry, tip = entry_and_tip(record)
    assert record.name in html_report
    for p in (entry, tip):
        assert "(" + ", ".join(f"{v:.2f}" for v in p) + ")" in html_report
    # the clearance table: canal ok (2.9 mm > 2 mm margin), Gertzbein-Robbins grade A in bone
    assert "Spinal canal" in html_report and "<td>ok</td>" in html_report
    assert "<td>A</td>" in html_report and "all checks passed" in html_report
    assert f"SurgTwin {__version__}" in html_report
    assert "6.5 mm x 45 mm" in html_report
    # anonymised by default
    assert PATIENT_NAME not in html_report and "PHANTOM-0001" not in html_report
    assert "19700101" not in html_report
    # self-contained: the overview and two slices per implant, inlined
    assert "<img" in html_report and 'src="http' not in html_report
    assert len(_pngs(html_report)) == 3
    assert "could not be rendered" not in html_report  # pytest-xvfb gives a display


def test_slice_images_show_the_ct(html_report):
    from matplotlib.image import imread

    for png in _pngs(html_report)[1:]:
        img = imread(io.BytesIO(png), format="png")
        assert img.ndim == 3 and min(img.shape[:2]) > 300
        assert np.asarray(img[..., :3]).var() > 0.01


def test_include_patient(plan_file):
    out = plan_file.parent / "named.html"
    assert main(["report", str(plan_file), "-o", str(out), "--include-patient"]) == 0
    text = out.read_text(encoding="utf-8")
    assert PATIENT_NAME in text and "PHANTOM-0001" in text


def test_pdf_pages(pdf_report, tmp_path):
    data = pdf_report.read_bytes()
    assert data.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page\b", data)) >= 2
    assert PATIENT_NAME.encode() not in data
    if shutil.which("pdftoppm") is None:
        return
    subprocess.run(
        [
            "pdftoppm",
            "-png",
            "-r",
            "40",
            "-f",
            "1",
            "-l",
            "1",
            str(pdf_report),
            str(tmp_path / "p"),
        ],
        check=True,
    )
    assert list(tmp_path.glob("p*.png"))


def test_pdf_text_is_anonymised(pdf_report, plan_file):
    """The PDF's page text (not just its raw bytes, which are compressed) carries no patient
    identifiers by default, and does with --include-patient (the check can see them)."""
    text = pdf_text(pdf_report.read_bytes())
    assert "Surgical plan report" in text and "Pedicle screw" in text
    assert PATIENT_NAME not in text and "PHANTOM-0001" not in text
    named = plan_file.parent / "named.pdf"
    assert main(["report", str(plan_file), "-o", str(named), "--include-patient"]) == 0
    named_text = pdf_text(named.read_bytes())
    assert PATIENT_NAME in named_text and "PHANTOM-0001" in named_text


def test_no_display_gives_a_note(plan_file, tmp_path, monkeypatch):
    import pyvista

    def broken(*args, **kwargs):
        raise RuntimeError("no OpenGL")

    monkeypatch.setattr(pyvista, "Plotter", broken)
    from surgtwin.planning.report import write_report

    path, data = write_report(load_plan(plan_file), tmp_path / "r.html")
    text = path.read_text(encoding="utf-8")
    assert data.overview_png is None and "could not be rendered" in text
    assert len(data.slices) == 2 and len(_pngs(text)) == 2


def test_missing_plan_is_one_line(tmp_path, capsys):
    out = tmp_path / "r.pdf"
    assert main(["report", str(tmp_path / "missing.surgplan"), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("surgtwin: ") and err.count("\n") == 1
    assert not out.exists()


def test_unknown_format(plan_file, tmp_path, capsys):
    assert main(["report", str(plan_file), "-o", str(tmp_path / "r.txt")]) == 1
    assert "unknown report format" in capsys.readouterr().err
