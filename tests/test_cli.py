"""The CLI contract: commands, flags, JSON keys and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from surgtwin.cli import main
from testdata import require_data


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_info_json_contract(capsys):
    code, out, _ = run(capsys, "info", str(require_data("ct-abdomen-spine")), "--json")
    assert code == 0
    doc = json.loads(out)
    assert set(doc) >= {"series", "skipped"}
    (series,) = doc["series"]
    assert set(series) >= {
        "uid",
        "modality",
        "description",
        "size",
        "spacing",
        "n_files",
        "findings",
    }
    assert series["uid"] == "1.3.6.1.4.1.14519.5.2.1.302382790855582445722435410442490497846"
    assert series["size"] == [512, 512, 134]
    assert series["spacing"] == pytest.approx([1.07421875, 1.07421875, 3.0])
    assert series["n_files"] == 134
    assert series["modality"] == "CT"
    assert series["findings"] == []
    assert all(set(s) == {"path", "reason"} for s in doc["skipped"])
    assert len(doc["skipped"]) == 3


def test_info_findings_have_code_and_message(capsys):
    code, out, _ = run(capsys, "info", str(require_data("bad", "dicom2nifti-failing")), "--json")
    assert code == 0
    doc = json.loads(out)
    codes = {f["code"] for s in doc["series"] for f in s["findings"]}
    assert {"gantry_tilt", "missing_slices", "mixed_orientation", "duplicate_positions"} <= codes
    for s in doc["series"]:
        for f in s["findings"]:
            assert set(f) >= {"code", "message"} and len(f["message"]) > 20


def test_info_exit_2_when_nothing_loads(capsys):
    code, out, err = run(capsys, "info", str(require_data("syntaxes", "dcm_qa_ts")), "--json")
    assert code == 2
    assert json.loads(out)["series"][0]["findings"][0]["code"] == "duplicate_positions"
    assert "dcm_qa_ts" in err and "same position" in err


def test_info_missing_path(capsys, tmp_path):
    code, _, err = run(capsys, "info", str(tmp_path / "nope"))
    assert code == 2
    assert "nope" in err and "no such file" in err


def test_info_table_on_the_sample(capsys, sample_dir):
    if not any(sample_dir.rglob("*.dcm")):
        pytest.skip("sample_dicom not generated")
    code, out, _ = run(capsys, "info", str(sample_dir))
    assert code == 0
    assert "CT" in out and "ok" in out


def test_load_json_reports_geometry(capsys):
    code, out, _ = run(capsys, "load", str(require_data("ct-head-small")), "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["size"] == [64, 64, 93]
    assert doc["spacing"] == pytest.approx([3.2, 3.2, 1.5])
    assert doc["units"] == ""
    assert [f["code"] for f in doc["findings"]] == ["no_rescale"]
    assert (doc["min"], doc["max"]) == (0, 3926)


def test_load_resample_flag(capsys):
    folder = str(require_data("bad", "dicom2nifti-failing", "sliceincrement", "001"))
    code, _, err = run(capsys, "load", folder)
    assert code == 1 and "--resample" in err
    code, out, _ = run(capsys, "load", folder, "--resample", "--json")
    assert code == 0 and json.loads(out)["size"] == [512, 512, 5]


def test_console_script_entry_point():
    out = subprocess.run(
        [sys.executable, "-m", "surgtwin.cli", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.startswith("surgtwin ")
