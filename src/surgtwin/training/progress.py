"""Each trainee's progress: every scored attempt in a SQLite file, CSV export, instructor views.

The store lives in the user's SurgTwin data folder (:func:`surgtwin.paths.data_dir`,
``training/progress.sqlite3``; ``SURGTWIN_DATA_DIR`` moves it). Every method opens its own
connection, so a worker thread may record while the GUI thread reads. One row per attempt
holds the summary (trainee, scenario, time, score, passed) and the whole result as JSON
(:meth:`~surgtwin.training.scoring.ScoreResult.to_dict`), so every measure is kept.

Examples
--------
>>> store = ProgressStore()                                   # doctest: +SKIP
>>> store.record(result, meta, attempt_file="attempt.surgplan")  # doctest: +SKIP
>>> [(r.trainee, r.scenario_key, r.score) for r in store.latest_results()]  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import io
import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from surgtwin.fileio import FileError
from surgtwin.training.attempt import AttemptMeta
from surgtwin.training.scoring import ScoreResult

__all__ = [
    "CSV_COLUMNS",
    "AttemptRecord",
    "LatestResult",
    "ProgressError",
    "ProgressStore",
    "default_store_path",
]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    trainee TEXT NOT NULL,
    scenario_key TEXT NOT NULL,
    scenario_title TEXT NOT NULL,
    scenario_fingerprint TEXT NOT NULL,
    started_at TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    time_taken_s REAL,
    undo_count INTEGER,
    score REAL NOT NULL,
    passed INTEGER NOT NULL,
    attempt_file TEXT,
    result_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_by_trainee ON attempts (trainee, scenario_key, id);
"""

#: Columns of :meth:`ProgressStore.export_csv`: one row per item (implant or resection) of
#: every attempt; the attempt's columns repeat on each of its rows.
CSV_COLUMNS = (
    "attempt_id",
    "trainee",
    "scenario",
    "recorded_at",
    "time_taken_s",
    "undo_count",
    "score",
    "passed",
    "item",
    "item_name",
    "status",
    "item_score",
    "item_passed",
    "entry_error_mm",
    "tip_error_mm",
    "angle_error_deg",
    "diameter_diff_mm",
    "length_diff_mm",
    "grade",
    "min_clearance_mm",
    "collisions",
    "target_removed",
    "margin_mm",
    "removed_mm3",
    "healthy_bone_removed_mm3",
)


class ProgressError(FileError):
    """The progress store cannot be opened, read or written (or a CSV file written)."""


def default_store_path() -> Path:
    """``<data folder>/training/progress.sqlite3``."""
    from surgtwin.paths import data_dir

    return data_dir() / "training" / "progress.sqlite3"


@dataclass(frozen=True)
class AttemptRecord:
    """One stored attempt.

    Attributes
    ----------
    id : int
    trainee, scenario_key, scenario_title, scenario_fingerprint : str
    started_at, recorded_at : str
        ISO 8601 UTC.
    time_taken_s : float or None
    undo_count : int or None
    score : float
    passed : bool
    attempt_file : str or None
    result : dict
        The whole :meth:`ScoreResult.to_dict`.
    """

    id: int
    trainee: str
    scenario_key: str
    scenario_title: str
    scenario_fingerprint: str
    started_at: str
    recorded_at: str
    time_taken_s: float | None
    undo_count: int | None
    score: float
    passed: bool
    attempt_file: str | None
    result: dict[str, Any]


@dataclass(frozen=True)
class LatestResult:
    """A trainee's latest attempt at a scenario, with their history there.

    Attributes
    ----------
    trainee, scenario_key, scenario_title : str
    attempts : int
        How many attempts at this scenario.
    latest : AttemptRecord
    best_score : float
    passed_ever : bool
    """

    trainee: str
    scenario_key: str
    scenario_title: str
    attempts: int
    latest: AttemptRecord
    best_score: float
    passed_ever: bool


def _row(r: sqlite3.Row) -> AttemptRecord:
    try:
        result = json.loads(r["result_json"])
    except (json.JSONDecodeError, TypeError):
        result = {}
    return AttemptRecord(
        id=int(r["id"]),
        trainee=r["trainee"],
        scenario_key=r["scenario_key"],
        scenario_title=r["scenario_title"],
        scenario_fingerprint=r["scenario_fingerprint"],
        started_at=r["started_at"],
        recorded_at=r["recorded_at"],
        time_taken_s=r["time_taken_s"],
        undo_count=r["undo_count"],
        score=float(r["score"]),
        passed=bool(r["passed"]),
        attempt_file=r["attempt_file"],
        result=result if isinstance(result, dict) else {},
    )


class ProgressStore:
    """The attempts of every trainee (SQLite).

    Parameters
    ----------
    path : str or os.PathLike, optional
        The database file (default :func:`default_store_path`); created with its folder on
        the first write.
    """

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else default_store_path()

    def __repr__(self) -> str:
        return f"<ProgressStore {str(self.path)!r}>"

    @contextlib.contextmanager
    def _connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """A connection in a transaction (committed on success); reading a store that does
        not exist yet reads an empty one."""
        try:
            if write:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            target = str(self.path) if write or self.path.exists() else ":memory:"
            con = sqlite3.connect(target, timeout=10.0)
        except (OSError, sqlite3.Error) as exc:
            raise ProgressError(f"cannot open the progress store ({exc})", self.path) from exc
        try:
            con.row_factory = sqlite3.Row
            version = con.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ProgressError(
                    f"written by a newer SurgTwin (store schema {version}); update SurgTwin",
                    self.path,
                )
            con.executescript(_SCHEMA)
            con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            with con:
                yield con
        except sqlite3.Error as exc:
            raise ProgressError(f"the progress store cannot be used ({exc})", self.path) from exc
        finally:
            con.close()

    # ------------------------------------------------------------------ writing

    def record(
        self,
        result: ScoreResult,
        meta: AttemptMeta | None = None,
        *,
        trainee: str | None = None,
        attempt_file: str | os.PathLike | None = None,
    ) -> int:
        """Store a scored attempt; returns its id.

        Parameters
        ----------
        result : ScoreResult
        meta : AttemptMeta, optional
            Start time (and the trainee, unless given).
        trainee : str, optional
            Default: the meta's, else the result's.
        attempt_file : path, optional
            Where the attempt's plan was saved.

        Raises
        ------
        ProgressError
            No trainee name, or the store cannot be written.
        """
        name = (trainee or (meta.trainee if meta else "") or result.trainee).strip()
        if not name:
            raise ProgressError("an attempt is recorded under a trainee's name; none was given")
        now = _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()
        started = (meta.started_at if meta else "") or now
        doc = result.to_dict()
        doc["trainee"] = name
        with self._connect(write=True) as con:
            cur = con.execute(
                "INSERT INTO attempts (trainee, scenario_key, scenario_title, "
                "scenario_fingerprint, started_at, recorded_at, time_taken_s, undo_count, "
                "score, passed, attempt_file, result_json) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    name,
                    result.scenario_key,
                    result.scenario_title,
                    result.scenario_fingerprint,
                    started,
                    now,
                    result.time_taken_s,
                    result.undo_count,
                    float(result.score),
                    int(result.passed),
                    None if attempt_file is None else str(attempt_file),
                    json.dumps(doc, allow_nan=False),
                ),
            )
            return int(cur.lastrowid)

    def delete_trainee(self, trainee: str) -> int:
        """Forget every attempt of a trainee; returns how many were removed."""
        with self._connect(write=True) as con:
            return con.execute("DELETE FROM attempts WHERE trainee = ?", (trainee,)).rowcount

    # ------------------------------------------------------------------ reading

    def trainees(self) -> list[str]:
        """Every trainee with an attempt, alphabetically."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT DISTINCT trainee FROM attempts ORDER BY trainee COLLATE NOCASE"
            )
            return [r[0] for r in rows]

    def attempts(
        self, trainee: str | None = None, scenario_key: str | None = None
    ) -> list[AttemptRecord]:
        """Attempts, oldest first, of one trainee and/or one scenario (default all)."""
        where, args = [], []
        if trainee is not None:
            where.append("trainee = ?")
            args.append(trainee)
        if scenario_key is not None:
            where.append("scenario_key = ?")
            args.append(scenario_key)
        sql = "SELECT * FROM attempts"
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._connect() as con:
            return [_row(r) for r in con.execute(sql + " ORDER BY id", args)]

    def attempt(self, attempt_id: int) -> AttemptRecord | None:
        """One attempt by id (None when unknown)."""
        with self._connect() as con:
            r = con.execute("SELECT * FROM attempts WHERE id = ?", (int(attempt_id),)).fetchone()
            return None if r is None else _row(r)

    def latest_results(self, trainee: str | None = None) -> list[LatestResult]:
        """The instructor's view: for each trainee and scenario, the latest attempt, the number
        of attempts, the best score and whether any attempt passed; by trainee, then scenario.
        """
        out: dict[tuple[str, str], list[AttemptRecord]] = {}
        for rec in self.attempts(trainee):
            out.setdefault((rec.trainee, rec.scenario_key), []).append(rec)
        rows = []
        for (name, key), recs in out.items():
            latest = recs[-1]
            rows.append(
                LatestResult(
                    trainee=name,
                    scenario_key=key,
                    scenario_title=latest.scenario_title,
                    attempts=len(recs),
                    latest=latest,
                    best_score=max(r.score for r in recs),
                    passed_ever=any(r.passed for r in recs),
                )
            )
        return sorted(rows, key=lambda r: (r.trainee.lower(), r.scenario_key))

    # ------------------------------------------------------------------ export

    def csv_rows(
        self, trainee: str | None = None, scenario_key: str | None = None
    ) -> list[dict[str, Any]]:
        """The rows of :meth:`export_csv` (see :data:`CSV_COLUMNS`)."""
        rows = []
        for rec in self.attempts(trainee, scenario_key):
            head = {
                "attempt_id": rec.id,
                "trainee": rec.trainee,
                "scenario": rec.scenario_key,
                "recorded_at": rec.recorded_at,
                "time_taken_s": rec.time_taken_s,
                "undo_count": rec.undo_count,
                "score": round(rec.score, 2),
                "passed": int(rec.passed),
            }
            items = [("implant", i) for i in rec.result.get("implants", [])]
            items += [("resection", r) for r in rec.result.get("resections", [])]
            if not items:
                rows.append({c: head.get(c) for c in CSV_COLUMNS})
            for kind, item in items:
                row = dict(head)
                row.update(
                    {
                        "item": kind,
                        "item_name": item.get("name"),
                        "status": item.get("status"),
                        "item_score": item.get("score"),
                        "item_passed": None
                        if item.get("passed") is None
                        else int(bool(item["passed"])),
                        "collisions": ";".join(item.get("collisions") or []) or None,
                    }
                )
                for col in CSV_COLUMNS:
                    if col not in row and col in item:
                        value = item[col]
                        row[col] = int(value) if isinstance(value, bool) else value
                rows.append({c: row.get(c) for c in CSV_COLUMNS})
        return rows

    def export_csv(
        self,
        path: str | os.PathLike,
        trainee: str | None = None,
        scenario_key: str | None = None,
    ) -> Path:
        """Write the attempts as CSV (UTF-8, one row per implant or resection, atomically).

        Returns
        -------
        pathlib.Path
        """
        from surgtwin.fileio import write_files

        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
        writer.writeheader()
        for row in self.csv_rows(trainee, scenario_key):
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
        data = buf.getvalue().encode("utf-8")
        (out,) = write_files([(path, lambda fh: fh.write(data))], error=ProgressError)
        return out
