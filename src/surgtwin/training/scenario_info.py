"""What a training scenario asks and how it is scored: :class:`ScenarioInfo` with its
:class:`Tolerances` and :class:`Weights`, validated on construction, and the scenario errors.

:class:`ScenarioInfo` is what ``scenario.json`` holds (:mod:`surgtwin.training.scenario_files`)
and what lists of scenarios show; it never holds the expert plan. :func:`scoring_text` says in
words how the score is made (written into every scenario file).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from surgtwin.errors import SurgTwinError

__all__ = [
    "GRADES",
    "ExpertPlanLocked",
    "ScenarioError",
    "ScenarioInfo",
    "Tolerances",
    "Weights",
    "scoring_text",
    "slug",
]

FORMAT = "surgtwin-scenario"
SCHEMA_VERSION = 1
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
