"""The progress store: attempts per trainee and scenario, the instructor's view, CSV export."""

from __future__ import annotations

import csv
import sqlite3

import pytest

from surgtwin.training import AttemptMeta, ProgressError, ProgressStore
from surgtwin.training.progress import CSV_COLUMNS, default_store_path
from surgtwin.training.scoring import ImplantScore, ResectionScore, ScoreResult


def result(score: float, passed: bool, key: str = "l4-bilateral") -> ScoreResult:
    implant = ImplantScore(
        name="L4 left pedicle screw",
        status="matched",
        trainee_name="Pedicle screw 1",
        expert_name="L4 left pedicle screw",
        kind="pedicle_screw",
        entry_error_mm=1.25,
        tip_error_mm=2.0,
        angle_error_deg=3.5,
        grade="B",
        clearances_mm={"Spinal canal": 1.5},
        min_clearance_mm=1.5,
        collisions=("R",),
        checks={"entry": passed},
        score=score,
        feedback=("fine",),
    )
    resection = ResectionScore(
        name="Resection of L4 lesion",
        structure="Bone",
        target="L4 lesion",
        status="done",
        target_removed=True,
        margin_mm=4.5,
        removed_mm3=9000.0,
        healthy_bone_removed_mm3=8100.0,
        checks={"margin": True},
        score=90.0,
    )
    return ScoreResult(
        scenario_key=key,
        scenario_title=key.upper(),
        scenario_fingerprint="abc",
        score=score,
        passed=passed,
        implants=(implant,),
        resections=(resection,) if key == "l4-lesion" else (),
        extra_cuts=(),
        penalties={},
        checks={},
        feedback=("fine",),
        time_taken_s=100.0,
        undo_count=2,
    )


def test_store_lives_in_the_data_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("SURGTWIN_DATA_DIR", str(tmp_path))
    assert default_store_path() == tmp_path / "training" / "progress.sqlite3"
    assert ProgressStore().path == default_store_path()


def test_record_and_query(tmp_path):
    store = ProgressStore(tmp_path / "p" / "progress.sqlite3")
    assert store.trainees() == [] and store.latest_results() == []  # nothing written yet
    assert not store.path.exists()
    meta = AttemptMeta("l4-bilateral", "Bea", "2024-05-01T10:00:00+00:00", 100.0, 2)
    first = store.record(result(55.0, False), meta, attempt_file="/x/a.surgplan")
    store.record(result(92.5, True), meta)
    store.record(result(70.0, False), trainee="al")
    store.record(result(88.0, True, "l4-lesion"), trainee="Bea")
    assert store.trainees() == ["al", "Bea"]
    rec = store.attempt(first)
    assert rec.trainee == "Bea" and rec.score == 55.0 and not rec.passed
    assert rec.started_at == "2024-05-01T10:00:00+00:00" and rec.attempt_file == "/x/a.surgplan"
    assert rec.result["implants"][0]["entry_error_mm"] == 1.25
    assert rec.time_taken_s == 100.0 and rec.undo_count == 2
    assert [r.score for r in store.attempts("Bea", "l4-bilateral")] == [55.0, 92.5]
    assert store.attempt(999) is None
    latest = store.latest_results()
    assert [(r.trainee, r.scenario_key, r.attempts) for r in latest] == [
        ("al", "l4-bilateral", 1),
        ("Bea", "l4-bilateral", 2),
        ("Bea", "l4-lesion", 1),
    ]
    bea = latest[1]
    assert bea.latest.score == 92.5 and bea.best_score == 92.5 and bea.passed_ever
    assert [r.scenario_key for r in store.latest_results("al")] == ["l4-bilateral"]
    with pytest.raises(ProgressError, match="trainee"):
        store.record(result(1.0, False))
    assert store.delete_trainee("al") == 1 and store.trainees() == ["Bea"]


def test_csv_export(tmp_path):
    store = ProgressStore(tmp_path / "progress.sqlite3")
    store.record(result(88.0, True, "l4-lesion"), trainee="Bea")
    store.record(result(40.0, False), trainee="Cy")
    path = store.export_csv(tmp_path / "out.csv")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [(r["trainee"], r["item"], r["item_name"]) for r in rows] == [
        ("Bea", "implant", "L4 left pedicle screw"),
        ("Bea", "resection", "Resection of L4 lesion"),
        ("Cy", "implant", "L4 left pedicle screw"),
    ]
    implant, resection = rows[0], rows[1]
    assert implant["entry_error_mm"] == "1.25" and implant["grade"] == "B"
    assert implant["collisions"] == "R" and implant["margin_mm"] == ""
    assert resection["target_removed"] == "1" and resection["margin_mm"] == "4.5"
    assert resection["healthy_bone_removed_mm3"] == "8100.0"
    only = store.export_csv(tmp_path / "cy.csv", trainee="Cy")
    assert len(only.read_text().splitlines()) == 2


def test_newer_store_is_refused(tmp_path):
    path = tmp_path / "progress.sqlite3"
    con = sqlite3.connect(path)
    con.execute("PRAGMA user_version = 42")
    con.close()
    with pytest.raises(ProgressError, match="newer SurgTwin"):
        ProgressStore(path).trainees()
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(ProgressError, match="cannot be used"):
        ProgressStore(path).trainees()
