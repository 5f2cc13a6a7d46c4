"""Training scenarios: a case, a task, the allowed implants, a hidden expert plan, tolerances
and scoring weights.

A :class:`Scenario` is what a trainee works on. :meth:`Scenario.case_plan` gives a fresh plan
of the case (structures and label map, no implants, no cuts) to plan on; the expert's plan
stays hidden: :meth:`Scenario.expert_plan` raises :class:`ExpertPlanLocked` until the results
are unlocked (:meth:`Scenario.unlock_results`, after the attempt was scored). Scoring
(:mod:`surgtwin.training.scoring`) reads the expert plan through the package's own access.

Scenario files
--------------
A ``.surgscn`` file is a SurgTwin plan file (:mod:`surgtwin.planning.planfile`) holding the
case plan, with two extra members::

    plan.json, meshes/, labelmap.seg.nrrd   the case (as any .surgplan)
    extra/scenario.json                     the scenario (schema below)
    extra/expert.json                       the expert plan's implants and cuts

A scenario folder holds ``scenario.json``, ``expert.json`` and ``case.surgplan``. Both are read
with the plan file's defences (unsafe member names, oversize members and zip bombs are
refused; nothing is extracted; no pickle). The expert plan is hidden from the trainee by the
application, not encrypted: whoever has the file can read it.

``scenario.json``::

    {"format": "surgtwin-scenario", "schema_version": 1,
     "key": "l4-bilateral", "title": "...", "task": "...",
     "allowed_implants": ["pedicle-6.5x45", ...] or null (any catalogue entry),
     "tolerances": {...}, "weights": {...},        see Tolerances and Weights
     "time_limit_s": 900 or null, "midline_x_mm": 0.0,
     "scoring": "how the score is made, in words"}

``expert.json``: ``{"format": "surgtwin-expert-plan", "schema_version": 1, "name": ...,
"implants": [Implant.to_dict()...], "cuts": [Cut.to_dict()...]}``: poses and tool parameters
in LPS mm. The structures are the case's.

Bundled scenarios (the phantom) are built from its ground truth by
:mod:`surgtwin.training.bundled`; :func:`load_scenario` takes their key as well.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from surgtwin.errors import SurgTwinError
from surgtwin.fileio import write_files
from surgtwin.planning.plan import Cut, Implant, Plan

__all__ = [
    "SUFFIX",
    "ExpertPlanLocked",
    "Scenario",
    "ScenarioError",
    "ScenarioInfo",
    "Tolerances",
    "Weights",
    "author_scenario",
    "copy_plan",
    "load_scenario",
    "save_scenario",
    "scoring_text",
]

FORMAT = "surgtwin-scenario"
EXPERT_FORMAT = "surgtwin-expert-plan"
SCHEMA_VERSION = 1
SUFFIX = ".surgscn"
SCENARIO_MEMBER = "scenario.json"
EXPERT_MEMBER = "expert.json"
CASE_FILE = "case.surgplan"
#: Largest scenario.json / expert.json accepted (bytes).
MAX_JSON_BYTES = 16 << 20
GRADES = ("A", "B", "C", "D", "E")


class ScenarioError(SurgTwinError):
    """A scenario that cannot be read, written or authored; the message says why.

    Parameters
    ----------
    problem : str
    path : str or os.PathLike, optional
        The file or folder concerned; the message is then ``"<path>: <problem>"``.
    """

    def __init__(self, problem: str, path: str | os.PathLike | None = None):
        self.problem = problem
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class ExpertPlanLocked(ScenarioError):
    """The expert plan of a scenario was asked for before the results were unlocked."""


# ---------------------------------------------------------------------- settings


def _number(value: Any, where: str, *, low: float = 0.0, allow_none: bool = False) -> Any:
    if value is None and allow_none:
        return None
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value < low:
        raise ScenarioError(f"{where} must be a number >= {low:g}, not {value!r}")
    return float(value)


def _settings(cls, data: Mapping[str, Any] | None, where: str):
    """A Tolerances/Weights from a (partial) mapping: missing keys keep their defaults."""
    if data is None:
        return cls()
    if not isinstance(data, Mapping):
        raise ScenarioError(f"{where} must be an object")
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ScenarioError(f"{where}: unknown setting(s) {', '.join(unknown)}")
    values = {}
    for key, value in data.items():
        if isinstance(names[key].default, str):
            values[key] = value
        else:
            values[key] = _number(value, f"{where}.{key}")
    return cls(**values)


@dataclass(frozen=True)
class Tolerances:
    """What a trainee's plan must reach to pass (each a pass/fail check of the result).

    Attributes
    ----------
    entry_mm : float
        Largest entry point error, mm.
    tip_mm : float
        Largest tip error, mm.
    angle_deg : float
        Largest angle between the trainee's and the expert's implant axes, degrees.
    diameter_mm, length_mm : float
        Largest size difference from the expert's implant, mm.
    max_grade : str
        Worst Gertzbein-Robbins breach grade accepted (``"A"``..``"E"``).
    match_radius_mm : float
        A trainee implant is matched to an expert implant of the same kind only when their
        entry and tip errors average at most this (mm); otherwise it is an extra implant.
    margin_mm : float
        Resection margin required around a target, mm.
    margin_slack_mm : float
        A resection margin this much (mm) below ``margin_mm`` still passes.
    healthy_bone_factor : float
        Healthy tissue removed by a resection may be at most this many times the expert's.
    pass_score : float
        Lowest total score (0-100) that passes besides the checks (0: the checks alone).
    """

    entry_mm: float = 3.0
    tip_mm: float = 4.0
    angle_deg: float = 5.0
    diameter_mm: float = 1.0
    length_mm: float = 10.0
    max_grade: str = "B"
    match_radius_mm: float = 20.0
    margin_mm: float = 5.0
    margin_slack_mm: float = 0.5
    healthy_bone_factor: float = 1.5
    pass_score: float = 0.0

    def __post_init__(self) -> None:
        if self.max_grade not in GRADES:
            raise ScenarioError(f"max_grade must be one of {', '.join(GRADES)}")
        for f in dataclasses.fields(self):
            if f.name != "max_grade":
                _number(getattr(self, f.name), f"tolerances.{f.name}")
        if not self.pass_score <= 100:
            raise ScenarioError("tolerances.pass_score must be 0..100")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Tolerances:
        return _settings(cls, data, "tolerances")


@dataclass(frozen=True)
class Weights:
    """Points of each measure and penalties (see :mod:`surgtwin.training.scoring`).

    Attributes
    ----------
    entry, tip, angle, grade, clearance, size : float
        Points of an implant's measures (their sum is the implant's full score).
    target_removed, margin, healthy_bone : float
        Points of a resection's measures.
    implant_item, resection_item : float
        Weight of each expert implant and each expert resection in the total.
    extra_implant_penalty, extra_cut_penalty, over_time_penalty : float
        Points taken off the total (0-100) per extra (or not allowed) implant, per cut of a
        structure the expert did not cut, and for going over the time limit.
    """

    entry: float = 25.0
    tip: float = 15.0
    angle: float = 20.0
    grade: float = 20.0
    clearance: float = 15.0
    size: float = 5.0
    target_removed: float = 40.0
    margin: float = 35.0
    healthy_bone: float = 25.0
    implant_item: float = 1.0
    resection_item: float = 1.0
    extra_implant_penalty: float = 10.0
    extra_cut_penalty: float = 10.0
    over_time_penalty: float = 10.0

    IMPLANT_MEASURES: ClassVar[tuple[str, ...]] = (
        "entry",
        "tip",
        "angle",
        "grade",
        "clearance",
        "size",
    )
    RESECTION_MEASURES: ClassVar[tuple[str, ...]] = ("target_removed", "margin", "healthy_bone")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _number(getattr(self, f.name), f"weights.{f.name}")
        if sum(getattr(self, k) for k in self.IMPLANT_MEASURES) <= 0:
            raise ScenarioError("weights: the implant measures must not all be 0")
        if sum(getattr(self, k) for k in self.RESECTION_MEASURES) <= 0:
            raise ScenarioError("weights: the resection measures must not all be 0")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Weights:
        return _settings(cls, data, "weights")


def scoring_text(weights: Weights, tolerances: Tolerances) -> str:
    """How the score is made, in words (written into every scenario file)."""
    w, t = weights, tolerances
    implant = sum(getattr(w, k) for k in Weights.IMPLANT_MEASURES)
    resection = sum(getattr(w, k) for k in Weights.RESECTION_MEASURES)
    return (
        "Each expert implant scores 0-100: entry "
        f"{w.entry:g}, tip {w.tip:g}, angle {w.angle:g}, breach grade {w.grade:g}, clearance "
        f"{w.clearance:g}, size {w.size:g} points (of {implant:g}); an error e against its "
        "tolerance T earns max(0, 1 - e / (2 T)) of the points (half at the tolerance, none at "
        "twice it); grade A (or no worse than the expert's) full, B 3/4, C 1/4, D and E none; "
        "clearance to each critical structure full at its safety margin (or the expert's "
        "clearance, if smaller), none on contact; a missing implant scores 0. Each expert "
        f"resection scores 0-100: target fully removed {w.target_removed:g}, margin "
        f"{w.margin:g} (full at the required {t.margin_mm:g} mm), healthy bone removed "
        f"{w.healthy_bone:g} (full up to the expert's amount, none at twice it) points (of "
        f"{resection:g}); margin and healthy bone count only when the target is fully removed. "
        f"The total is the mean of the items (implants weighted {w.implant_item:g}, resections "
        f"{w.resection_item:g}) times 100, minus {w.extra_implant_penalty:g} per extra or not "
        f"allowed implant, {w.extra_cut_penalty:g} per cut of a structure the expert did not "
        f"cut and {w.over_time_penalty:g} for going over the time limit, kept within 0-100. "
        f"Pass: entry <= {t.entry_mm:g} mm, tip <= {t.tip_mm:g} mm, angle <= "
        f"{t.angle_deg:g} degrees, diameter within {t.diameter_mm:g} mm and length within "
        f"{t.length_mm:g} mm of the expert's, grade {t.max_grade} or better, no collision; no "
        "missing or extra implant; every target fully removed with a margin of at least "
        f"{t.margin_mm - t.margin_slack_mm:g} mm and at most {t.healthy_bone_factor:g} times "
        "the expert's healthy bone removed; within the time limit"
        + (f"; a total of at least {t.pass_score:g}." if t.pass_score > 0 else ".")
        + " Undos are counted, not scored."
    )


_KEY = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


def slug(text: str) -> str:
    """A scenario key from a title: lower case letters, digits and hyphens."""
    key = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:64].strip("-")
    return key or "scenario"


@dataclass(frozen=True)
class ScenarioInfo:
    """What a scenario asks and how it is scored (never the expert plan itself).

    Attributes
    ----------
    key : str
        Short identifier (``"l4-bilateral"``): lower case letters, digits, hyphens.
    title : str
    task : str
        The task, as shown to the trainee.
    allowed_implants : tuple of str or None
        Catalogue keys the trainee may use; None: any; empty: none (e.g. a resection).
    tolerances : Tolerances
    weights : Weights
    time_limit_s : float or None
        Time limit in seconds (None: none).
    midline_x_mm : float
        LPS x of the midsagittal plane (mm): tells medial from lateral in the feedback.
    source : str
        Where the scenario came from (``"bundled"`` or a path); not stored in the file.
    """

    key: str
    title: str
    task: str
    allowed_implants: tuple[str, ...] | None = None
    tolerances: Tolerances = field(default_factory=Tolerances)
    weights: Weights = field(default_factory=Weights)
    time_limit_s: float | None = None
    midline_x_mm: float = 0.0
    source: str = ""

    def __post_init__(self) -> None:
        if not _KEY.match(self.key):
            raise ScenarioError(
                f"scenario key {self.key!r}: use 1-64 lower case letters, digits and hyphens"
            )
        if not self.title.strip() or not self.task.strip():
            raise ScenarioError(f"scenario {self.key!r} needs a title and a task")
        if self.allowed_implants is not None:
            object.__setattr__(self, "allowed_implants", tuple(map(str, self.allowed_implants)))
        if self.time_limit_s is not None:
            _number(self.time_limit_s, "time_limit_s", low=1e-9)
        _number(self.midline_x_mm, "midline_x_mm", low=-math.inf)

    @property
    def location(self) -> str:
        """What :func:`load_scenario` takes to load this scenario again: the key of a bundled
        scenario, else the file or folder it came from."""
        return self.key if self.source in ("bundled", "", "authored") else self.source

    def allows(self, spec_key: str) -> bool:
        """Whether the trainee may use the catalogue entry ``spec_key``."""
        return self.allowed_implants is None or spec_key in self.allowed_implants

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "schema_version": SCHEMA_VERSION,
            "key": self.key,
            "title": self.title,
            "task": self.task,
            "allowed_implants": None
            if self.allowed_implants is None
            else list(self.allowed_implants),
            "tolerances": self.tolerances.to_dict(),
            "weights": self.weights.to_dict(),
            "time_limit_s": self.time_limit_s,
            "midline_x_mm": self.midline_x_mm,
            "scoring": scoring_text(self.weights, self.tolerances),
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "") -> ScenarioInfo:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ScenarioError("this is not a SurgTwin scenario (scenario.json has no format)")
        version = data.get("schema_version")
        if type(version) is not int or version < 1:
            raise ScenarioError("scenario.json: schema_version must be a whole number >= 1")
        if version > SCHEMA_VERSION:
            raise ScenarioError(
                f"the scenario was made by a newer SurgTwin (schema {version}; this version "
                f"reads up to {SCHEMA_VERSION}). Update SurgTwin to open it."
            )
        for key in ("key", "title", "task"):
            if not isinstance(data.get(key), str):
                raise ScenarioError(f"scenario.json: {key!r} must be text")
        allowed = data.get("allowed_implants")
        if allowed is not None and not (
            isinstance(allowed, list) and all(isinstance(k, str) for k in allowed)
        ):
            raise ScenarioError("scenario.json: allowed_implants must be a list of keys or null")
        return cls(
            key=data["key"],
            title=data["title"],
            task=data["task"],
            allowed_implants=None if allowed is None else tuple(allowed),
            tolerances=Tolerances.from_dict(data.get("tolerances")),
            weights=Weights.from_dict(data.get("weights")),
            time_limit_s=_number(data.get("time_limit_s"), "time_limit_s", allow_none=True),
            midline_x_mm=_number(data.get("midline_x_mm", 0.0), "midline_x_mm", low=-math.inf),
            source=source,
        )


# ---------------------------------------------------------------------- plans


def copy_plan(plan: Plan, name: str | None = None, *, records: bool = False) -> Plan:
    """A new plan with the case, structures and a copy of the label map of ``plan``.

    Parameters
    ----------
    plan : Plan
    name : str, optional
        Default: the plan's name.
    records : bool
        Also copy the implants, cuts, measurements and notes.
    """
    from surgtwin.segmentation.labelmap import LabelMap

    lm = plan.labelmap
    labelmap = None
    if lm is not None:
        labelmap = LabelMap(lm.geometry, np.array(lm.array), list(lm.labels.values()))
    out = Plan(plan.name if name is None else name, plan.case, labelmap)
    with out.batch():
        for s in plan.structures.values():
            out.structures.add(s)
        if records:
            for i in plan.implants.values():
                out.implants.add(i)
            for c in plan.cuts.values():
                out.cuts.add(c)
            for m in plan.measurements.values():
                out.measurements.add(m)
            out.notes = plan.notes
    return out


def expert_document(name: str, implants: Iterable[Implant], cuts: Iterable[Cut]) -> dict[str, Any]:
    """The expert plan as plain data: its implants and cuts (``expert.json``)."""
    return {
        "format": EXPERT_FORMAT,
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "implants": [i.to_dict() for i in implants],
        "cuts": [c.to_dict() for c in cuts],
    }


def _expert_records(doc: Any) -> tuple[list[Implant], list[Cut]]:
    if not isinstance(doc, dict) or doc.get("format") != EXPERT_FORMAT:
        raise ScenarioError("expert.json is not a SurgTwin expert plan")
    if not isinstance(doc.get("implants"), list) or not isinstance(doc.get("cuts"), list):
        raise ScenarioError("expert.json: implants and cuts must be lists")
    try:
        implants = [Implant.from_dict(d) for d in doc["implants"]]
        cuts = [Cut.from_dict(d) for d in doc["cuts"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise ScenarioError(f"expert.json is not valid: {exc}") from None
    return implants, cuts


def _with_records(case: Plan, implants: Iterable[Implant], cuts: Iterable[Cut], name: str) -> Plan:
    plan = copy_plan(case, name)
    with plan.batch():
        for i in implants:
            plan.implants.add(i)
        for c in cuts:
            plan.cuts.add(c)
    return plan


# ---------------------------------------------------------------------- the scenario


class Scenario:
    """A training scenario (trainee-facing: the expert plan stays locked).

    Made by :func:`load_scenario`, :func:`author_scenario` or the bundled scenarios; not
    usually constructed directly.

    Parameters
    ----------
    info : ScenarioInfo
    case : callable
        Returns the case plan (called once, when first needed).
    expert : callable
        Returns the expert plan's (implants, cuts) (called once, when first needed).
    """

    def __init__(
        self,
        info: ScenarioInfo,
        case: Callable[[], Plan],
        expert: Callable[[], tuple[list[Implant], list[Cut]]],
    ):
        self.info = info
        self._load_case = case
        self._load_expert = expert
        self._case_plan: Plan | None = None
        self._expert_records: tuple[list[Implant], list[Cut]] | None = None
        self._unlocked = False
        self._geometry = None
        self._cache: dict[str, Any] = {}

    def __repr__(self) -> str:
        state = "unlocked" if self._unlocked else "locked"
        return f"<Scenario {self.info.key!r}: {self.info.title!r} (expert plan {state})>"

    @property
    def key(self) -> str:
        return self.info.key

    @property
    def title(self) -> str:
        return self.info.title

    @property
    def task(self) -> str:
        return self.info.task

    # ------------------------------------------------------------------ trainee side

    def case_plan(self, name: str | None = None) -> Plan:
        """A fresh plan of the case to work on: structures and label map, nothing planned.

        Parameters
        ----------
        name : str, optional
            The plan's name (default: the scenario's title).
        """
        return copy_plan(self._case(), name or self.info.title)

    @property
    def results_unlocked(self) -> bool:
        """Whether :meth:`expert_plan` may be shown (after the attempt was scored)."""
        return self._unlocked

    def unlock_results(self) -> None:
        """Allow :meth:`expert_plan` (call it once the trainee's attempt is scored)."""
        self._unlocked = True

    def expert_plan(self) -> Plan:
        """The expert plan (case structures plus the expert's implants and cuts).

        Raises
        ------
        ExpertPlanLocked
            The results were not unlocked (:meth:`unlock_results`).
        """
        if not self._unlocked:
            raise ExpertPlanLocked(
                f"scenario {self.info.key!r}: the expert plan is shown only with the results; "
                "score the attempt first"
            )
        return self._expert_plan()

    def expert_counts(self) -> tuple[int, int]:
        """How many implants and cuts the expert plan has (not what they are)."""
        implants, cuts = self._expert()
        return len(implants), len(cuts)

    # ------------------------------------------------------------------ package side

    def _case(self) -> Plan:
        """The shared case plan (read only: use :meth:`case_plan` for a copy to edit)."""
        if self._case_plan is None:
            self._case_plan = self._load_case()
        return self._case_plan

    def _expert(self) -> tuple[list[Implant], list[Cut]]:
        if self._expert_records is None:
            self._expert_records = self._load_expert()
        return self._expert_records

    def _expert_plan(self) -> Plan:
        implants, cuts = self._expert()
        return _with_records(self._case(), implants, cuts, f"{self.info.title} (expert)")

    def _geometry_of_case(self):
        """The case's CaseGeometry (fields and surfaces), built once."""
        from surgtwin.planning.case import CaseGeometry

        if self._geometry is None:
            self._geometry = CaseGeometry(self._case())
        return self._geometry

    def fingerprint(self) -> str:
        """SHA-256 (16 hex digits) of the scenario's settings and expert plan: two scenarios
        with the same fingerprint score alike (given the same case)."""
        if "fingerprint" not in self._cache:
            implants, cuts = self._expert()
            doc = {
                "info": self.info.to_dict(),
                "implants": [i.to_dict() for i in implants],
                "cuts": [c.to_dict() for c in cuts],
            }
            text = json.dumps(doc, sort_keys=True, allow_nan=True).encode("utf-8")
            self._cache["fingerprint"] = hashlib.sha256(text).hexdigest()[:16]
        return self._cache["fingerprint"]


# ---------------------------------------------------------------------- files


def _json_bytes(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False).encode("utf-8")


def _parse_json(data: bytes, what: str, where: str) -> Any:
    if len(data) > MAX_JSON_BYTES:
        raise ScenarioError(f"{where}: {what} is larger than {MAX_JSON_BYTES} bytes")
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ScenarioError(f"{where}: {what} is not valid JSON ({exc})") from None


def save_scenario(scenario: Scenario, path: str | os.PathLike) -> Path:
    """Write a scenario: a ``.surgscn`` file when ``path`` ends so, else a folder.

    The case plan, the settings and the expert plan are written (atomically, file by file).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ScenarioError, PlanFileError
    """
    from surgtwin.planning.planfile import save_plan

    path = Path(path)
    implants, cuts = scenario._expert()
    expert = expert_document(f"{scenario.info.title} (expert)", implants, cuts)
    case = copy_plan(scenario._case(), scenario.info.title)
    members = {
        SCENARIO_MEMBER: _json_bytes(scenario.info.to_dict()),
        EXPERT_MEMBER: _json_bytes(expert),
    }
    if path.suffix.lower() == SUFFIX:
        return save_plan(case, path, extra=members)
    if path.exists() and not path.is_dir():
        raise ScenarioError(f"exists and is not a folder (use a {SUFFIX} name for a file)", path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ScenarioError(f"cannot make the folder ({exc.strerror or exc})", path) from None
    save_plan(case, path / CASE_FILE)
    write_files(
        [(path / name, lambda fh, data=data: fh.write(data)) for name, data in members.items()],
        error=ScenarioError,
    )
    return path


def _read_folder_json(folder: Path, name: str) -> Any:
    file = folder / name
    try:
        size = file.stat().st_size
        if size > MAX_JSON_BYTES:
            raise ScenarioError(f"{file}: larger than {MAX_JSON_BYTES} bytes")
        data = file.read_bytes()
    except FileNotFoundError:
        raise ScenarioError(f"{folder}: {name} is missing; this is not a scenario folder") from None
    except OSError as exc:
        raise ScenarioError(f"{file}: cannot read it ({exc.strerror or exc})") from None
    return _parse_json(data, name, str(folder))


def _read_zip_json(path: Path, name: str) -> Any:
    from surgtwin.planning.planfile import read_extra_member

    data = read_extra_member(path, name, max_bytes=MAX_JSON_BYTES)
    if data is None:
        raise ScenarioError(f"{path}: {name} is missing; this is not a SurgTwin scenario file")
    return _parse_json(data, name, str(path))


def load_scenario(source: str | os.PathLike) -> Scenario:
    """A scenario by bundled key (``"l4-bilateral"``), ``.surgscn`` file or folder.

    Only the settings are read at once; the case and the expert plan when first needed.

    Raises
    ------
    ScenarioError
        Unknown key, missing or damaged file, invalid settings.
    PlanFileError
        The case plan cannot be read (when it is first needed).
    """
    from surgtwin.planning.planfile import load_plan
    from surgtwin.training import bundled

    text = os.fspath(source)
    if text in bundled.BUNDLED:
        return bundled.bundled_scenario(text)
    path = Path(text)
    if path.is_dir():
        info = ScenarioInfo.from_dict(_read_folder_json(path, SCENARIO_MEMBER), str(path))
        case_file = path / CASE_FILE
        return Scenario(
            info,
            lambda: load_plan(case_file),
            lambda: _expert_records(_read_folder_json(path, EXPERT_MEMBER)),
        )
    if path.is_file():
        info = ScenarioInfo.from_dict(_read_zip_json(path, SCENARIO_MEMBER), str(path))
        return Scenario(
            info,
            lambda: load_plan(path),
            lambda: _expert_records(_read_zip_json(path, EXPERT_MEMBER)),
        )
    keys = ", ".join(bundled.BUNDLED)
    raise ScenarioError(
        f"no scenario {text!r}: neither a bundled scenario ({keys}) nor a {SUFFIX} file or "
        "scenario folder"
    )


# ---------------------------------------------------------------------- authoring


def _default_midline(expert: Plan) -> float:
    """LPS x of the midline: the centroid of the critical structures' surfaces, else the mean
    of the implants' entries, else the centre of the label map's grid, else 0."""
    xs = [
        float(np.mean(s.mesh.points[:, 0]))
        for s in expert.structures.values()
        if s.role == "critical" and s.mesh is not None and len(s.mesh.points)
    ]
    if xs:
        return float(np.mean(xs))
    if len(expert.implants) >= 2:
        return float(np.mean([np.asarray(i.pose)[0, 3] for i in expert.implants.values()]))
    lm = expert.labelmap
    if lm is not None:
        g = lm.geometry
        centre = (np.asarray(g.shape[::-1], dtype=float) - 1.0) / 2.0
        return float(g.index_to_lps(centre[None, :])[0, 0])
    return 0.0


def _default_allowed(expert: Plan) -> tuple[str, ...]:
    from surgtwin.planning.implants import Catalogue

    kinds = {i.kind for i in expert.implants.values()}
    cat = Catalogue.builtin()
    keys = [s.key for s in cat if s.kind in kinds]
    keys += [i.spec_key for i in expert.implants.values() if i.spec_key and i.spec_key not in keys]
    return tuple(keys)


def author_scenario(
    expert: Plan,
    task: str,
    *,
    case: Plan | None = None,
    key: str | None = None,
    title: str | None = None,
    allowed_implants: Iterable[str] | None = None,
    any_implant: bool = False,
    tolerances: Tolerances | None = None,
    weights: Weights | None = None,
    time_limit_s: float | None = None,
    midline_x_mm: float | None = None,
) -> Scenario:
    """A scenario from a saved plan: its implants and cuts become the hidden expert plan.

    Parameters
    ----------
    expert : Plan
        The instructor's plan.
    task : str
        The task shown to the trainee.
    case : Plan, optional
        The case the trainee starts from. Default: ``expert`` without its implants, cuts,
        measurements and notes. Required when ``expert`` has cuts: a cut changes the
        structure it cuts, so give the plan saved before the cuts (e.g. from
        ``surgtwin plan new``).
    key, title : str, optional
        Default: from the plan's name.
    allowed_implants : iterable of str, optional
        Catalogue keys the trainee may use. Default: every built-in catalogue entry of the
        kinds the expert used (none if the expert placed no implant).
    any_implant : bool
        Allow every catalogue entry (overrides ``allowed_implants``).
    tolerances, weights : optional
        Default :class:`Tolerances` and :class:`Weights`.
    time_limit_s : float, optional
        Seconds; default none.
    midline_x_mm : float, optional
        LPS x of the midline; default from the critical structures (the spinal canal), else
        from the implants, else the image centre.

    Raises
    ------
    ScenarioError
        Empty task, nothing to score, a cut plan without ``case``, or a case that does not
        match the expert plan.
    """
    if not task.strip():
        raise ScenarioError("the scenario needs a task (--task)")
    if not len(expert.implants) and not len(expert.cuts):
        raise ScenarioError(
            f"plan {expert.name!r} has no implants and no cuts: nothing the trainee could be "
            "scored against"
        )
    if case is None:
        if len(expert.cuts):
            raise ScenarioError(
                f"plan {expert.name!r} has cuts, which changed the structures they cut; give "
                "the case as the plan saved before the cuts (--case, e.g. from surgtwin plan new)"
            )
        case = expert
    else:
        for cut in expert.cuts.values():
            if cut.structure not in case.structures:
                raise ScenarioError(
                    f"the case has no structure {cut.structure!r}, which the expert's cut "
                    f"{cut.name!r} cuts"
                )
        same_frame = (
            case.case.frame_of_reference_uid == expert.case.frame_of_reference_uid
            or not case.case.frame_of_reference_uid
            or not expert.case.frame_of_reference_uid
        )
        if not same_frame:
            raise ScenarioError("the case and the expert plan were made on different images")
    title = (title or expert.name or "Scenario").strip()
    allowed: tuple[str, ...] | None
    if any_implant:
        allowed = None
    elif allowed_implants is not None:
        allowed = tuple(allowed_implants)
    else:
        allowed = _default_allowed(expert)
    info = ScenarioInfo(
        key=key or slug(title),
        title=title,
        task=task.strip(),
        allowed_implants=allowed,
        tolerances=tolerances or Tolerances(),
        weights=weights or Weights(),
        time_limit_s=time_limit_s,
        midline_x_mm=_default_midline(expert) if midline_x_mm is None else float(midline_x_mm),
        source="authored",
    )
    base = copy_plan(case, title)
    implants = list(expert.implants.values())
    cuts = list(expert.cuts.values())
    return Scenario(info, lambda: base, lambda: (implants, cuts))
