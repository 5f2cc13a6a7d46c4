"""``surgtwin train list|score|author|results`` on the phantom."""

from __future__ import annotations

import json

import pytest

from surgtwin.cli import main
from surgtwin.planning.case import place_implant
from surgtwin.planning.planfile import save_plan
from surgtwin.training import AttemptMeta, load_scenario, save_attempt
from testdata import REPO


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """An expert-like attempt (with its record), an empty attempt and the expert plan file."""
    root = tmp_path_factory.mktemp("train")
    scenario = load_scenario("l4-bilateral")
    truth = json.loads((REPO / "sample_dicom" / "ground_truth.json").read_text())
    good = scenario.case_plan("attempt")
    for side in ("left", "right"):
        s = truth["levels"]["L4"]["pedicle_screws"][side]
        place_implant(good, "pedicle_screw", s["entry"], s["target"], diameter_mm=6.5)
    meta = AttemptMeta("l4-bilateral", "Dr Who", "2024-01-01T00:00:00+00:00", 240.0, 1)
    scenario.unlock_results()
    expert = scenario.expert_plan()
    expert.name = "Expert L4"
    return {
        "good": save_attempt(good, root / "good.surgplan", meta),
        "empty": save_plan(scenario.case_plan(), root / "empty.surgplan"),
        "expert": save_plan(expert, root / "expert.surgplan"),
        "root": root,
    }


def test_list(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("SURGTWIN_DATA_DIR", str(tmp_path))  # no user scenarios
    assert main(["train", "list"]) == 0
    out = capsys.readouterr().out
    assert "l4-bilateral: Bilateral pedicle screws at L4, 15 min" in out
    assert "l4-lesion:" in out and "l3-l5-screws:" in out
    assert main(["train", "list", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [d["key"] for d in doc] == ["l4-bilateral", "l3-l5-screws", "l4-lesion"]


def test_score_json_and_text(files, capsys):
    code = main(["train", "score", str(files["good"]), "--scenario", "l4-bilateral", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["passed"] is True and doc["score"] > 99.0
    assert list(doc)[:5] == ["score", "passed", "implants", "resections", "feedback"]
    left = doc["implants"][0]
    assert left["name"] == "L4 left pedicle screw" and left["trainee_name"] == "Pedicle screw 1"
    for key in ("entry_error_mm", "tip_error_mm", "angle_error_deg", "grade", "min_clearance_mm"):
        assert key in left
    assert left["entry_error_mm"] < 0.01 and left["grade"] == "A"
    assert doc["trainee"] == "Dr Who" and doc["time_taken_s"] == 240.0 and doc["undo_count"] == 1
    assert doc["resections"] == [] and doc["feedback"][-1] == "Time 4 min (limit 15 min); 1 undo."

    code = main(["train", "score", str(files["empty"]), "--scenario", "l4-bilateral"])
    out = capsys.readouterr().out
    assert code == 1
    assert "Bilateral pedicle screws at L4 (l4-bilateral): score 0.0/100, FAILED" in out
    assert "- L4 left pedicle screw: missing; the expert placed a 6.5 x 45 mm" in out


def test_score_records_progress(files, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("SURGTWIN_DATA_DIR", str(tmp_path))
    argv = ["train", "score", str(files["good"]), "--scenario", "l4-bilateral", "--record"]
    assert main([*argv, "--undos", "5"]) == 0
    assert "recorded as attempt 1" in capsys.readouterr().out
    assert main([*argv, "--trainee", "Amy", "--time-taken", "1000"]) == 1  # over 15 min
    capsys.readouterr()
    assert main(["train", "results"]) == 0
    out = capsys.readouterr().out
    assert "Amy" in out and "Dr Who" in out
    assert main(["train", "results", "--json", "--trainee", "Amy"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["scenario"] == "l4-bilateral" and row["latest_passed"] is False
    assert row["latest_score"] == pytest.approx(row["best_score"])
    csv_path = tmp_path / "all.csv"
    assert main(["train", "results", "--csv", str(csv_path)]) == 0
    lines = csv_path.read_text().splitlines()
    assert lines[0].startswith("attempt_id,trainee,scenario") and len(lines) == 1 + 2 * 2


def test_author_then_score_against_the_file(files, capsys):
    out_path = files["root"] / "mine.surgscn"
    argv = ["train", "author", str(files["expert"]), "--task", "Both L4 screws.", "-o"]
    assert main([*argv, str(out_path), "--time-limit", "10"]) == 0
    out = capsys.readouterr().out
    assert "expert-l4: Expert L4" in out and "2 implant(s), 0 cut(s)" in out
    assert f"written {out_path}" in out
    code = main(["train", "score", str(files["good"]), "--scenario", str(out_path), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["scenario"]["key"] == "expert-l4" and doc["score"] > 99.0
    assert main(["train", "list", "--dir", str(files["root"])]) == 0
    assert "expert-l4: Expert L4, 10 min" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["train", "score", "{good}", "--scenario", "no-such"], "no scenario 'no-such'"),
        (["train", "score", "{missing}", "--scenario", "l4-bilateral"], "does not exist"),
        (["train", "author", "{expert}", "--task", " ", "-o", "{root}/x.surgscn"], "task"),
        (
            ["train", "author", "{expert}", "--task", "t", "--time-limit", "-3", "-o", "x"],
            "--time-limit",
        ),
    ],
)
def test_errors_are_one_line(files, capsys, argv, words):
    names = {k: str(v) for k, v in files.items()}
    names["missing"] = str(files["root"] / "missing.surgplan")
    assert main([a.format(**names) for a in argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("surgtwin: ") and words in err and err.count("\n") == 1
