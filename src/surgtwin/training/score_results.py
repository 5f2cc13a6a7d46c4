"""The results of scoring an attempt: one :class:`ImplantScore` per implant, one
:class:`ResectionScore` per resection and the attempt's :class:`ScoreResult`.

Plain frozen records, made by :func:`surgtwin.training.scoring.score_attempt`; their
``to_dict`` is the plain JSON data ``surgtwin train score`` prints and the progress store keeps
(floats rounded to 3 decimals, NaN and infinities as None).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from surgtwin.training.scenario_info import Weights

__all__ = ["ImplantScore", "ResectionScore", "ScoreResult", "item_score"]


def _clean(value: Any) -> Any:
    """Plain JSON data: floats rounded to 3 decimals, NaN and infinities as None."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, float | np.floating):
        v = float(value)
        return round(v, 3) + 0.0 if math.isfinite(v) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def item_score(components: Mapping[str, float], weights: Weights, measures: Sequence[str]) -> float:
    """An item's score, 0..100: ``100 * sum(points * credit) / sum(points)`` over ``measures``.

    Parameters
    ----------
    components : mapping
        Measure -> credit, 0..1.
    weights : Weights
        Points of each measure (its attribute of that name).
    measures : sequence of str
        ``Weights.IMPLANT_MEASURES`` or ``Weights.RESECTION_MEASURES``.
    """
    points = {k: getattr(weights, k) for k in measures}
    return 100.0 * sum(points[k] * components[k] for k in points) / sum(points.values())


class _ItemScore:
    """What an implant's and a resection's score share: ``components``, ``checks``,
    ``score`` and ``feedback`` fields, :attr:`passed`, and the tail of :meth:`to_dict`."""

    components: dict[str, float]
    checks: dict[str, bool]
    score: float
    feedback: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return all(self.checks.values())

    #: The item's own fields, in the order :meth:`to_dict` gives them.
    _KEYS: ClassVar[tuple[str, ...]] = ()

    def _measures(self) -> dict[str, Any]:
        """The item's own entries of :meth:`to_dict`, before the shared ones."""
        return {key: getattr(self, key) for key in self._KEYS}

    def to_dict(self) -> dict[str, Any]:
        return _clean(
            {
                **self._measures(),
                "score": self.score,
                "passed": self.passed,
                "components": dict(self.components),
                "checks": dict(self.checks),
                "feedback": list(self.feedback),
            }
        )


@dataclass(frozen=True)
class ImplantScore(_ItemScore):
    """One expert implant (matched or missing) or one extra trainee implant.

    Attributes
    ----------
    name : str
        The expert implant's name; the trainee's for an extra implant.
    status : {"matched", "missing", "extra", "not_allowed"}
    trainee_name, expert_name : str or None
    kind : str
    size, expert_size : str or None
        ``"6.5 x 45 mm"``.
    entry_error_mm, tip_error_mm, angle_error_deg : float or None
    correction_deg : (float, float) or None
        (medial, cranial) degrees to turn the trainee's axis into the expert's.
    diameter_diff_mm, length_diff_mm : float or None
        Trainee minus expert.
    grade, expert_grade : str or None
    breach_mm : float or None
    clearances_mm : dict
        Critical structure -> clearance (mm; negative: penetration).
    min_clearance_mm : float or None
    collisions : tuple of str
    components : dict
        Measure -> credit 0..1.
    checks : dict
        Tolerance -> passed.
    score : float
        0..100 (0 for missing and extra implants).
    feedback : tuple of str
    """

    _KEYS: ClassVar[tuple[str, ...]] = (
        "name",
        "status",
        "trainee_name",
        "expert_name",
        "kind",
        "size",
        "expert_size",
        "entry_error_mm",
        "tip_error_mm",
        "angle_error_deg",
        "correction_deg",
        "diameter_diff_mm",
        "length_diff_mm",
        "grade",
        "expert_grade",
        "breach_mm",
        "min_clearance_mm",
        "clearances_mm",
        "collisions",
    )

    name: str
    status: str
    trainee_name: str | None
    expert_name: str | None
    kind: str
    size: str | None = None
    expert_size: str | None = None
    entry_error_mm: float | None = None
    tip_error_mm: float | None = None
    angle_error_deg: float | None = None
    correction_deg: tuple[float, float] | None = None
    diameter_diff_mm: float | None = None
    length_diff_mm: float | None = None
    grade: str | None = None
    expert_grade: str | None = None
    breach_mm: float | None = None
    clearances_mm: dict[str, float] = field(default_factory=dict)
    min_clearance_mm: float | None = None
    collisions: tuple[str, ...] = ()
    components: dict[str, float] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)
    score: float = 0.0
    feedback: tuple[str, ...] = ()

    def _measures(self) -> dict[str, Any]:
        out = super()._measures()
        c = self.correction_deg
        out["correction_deg"] = None if c is None else {"medial": c[0], "cranial": c[1]}
        return out


@dataclass(frozen=True)
class ResectionScore(_ItemScore):
    """One expert resection: a structure the expert cut, against one target (or none).

    Attributes
    ----------
    name : str
        ``"Resection of L4 lesion"`` (``"Cut of Bone"`` without a target).
    structure : str
    target : str or None
    status : {"done", "missing"}
    cuts : tuple of str
        The trainee's cuts of the structure.
    target_removed : bool or None
    target_left_mm3 : float or None
    margin_mm, required_margin_mm, expert_margin_mm : float or None
    removed_mm3, healthy_bone_removed_mm3, expert_healthy_bone_removed_mm3 : float or None
    overlap : float or None
        Dice overlap with the expert's removed part (cuts without a target).
    components, checks, score, feedback
        As in :class:`ImplantScore`.
    """

    _KEYS: ClassVar[tuple[str, ...]] = (
        "name",
        "structure",
        "target",
        "status",
        "cuts",
        "target_removed",
        "target_left_mm3",
        "margin_mm",
        "required_margin_mm",
        "expert_margin_mm",
        "removed_mm3",
        "healthy_bone_removed_mm3",
        "expert_healthy_bone_removed_mm3",
        "overlap",
    )

    name: str
    structure: str
    target: str | None
    status: str
    cuts: tuple[str, ...] = ()
    target_removed: bool | None = None
    target_left_mm3: float | None = None
    margin_mm: float | None = None
    required_margin_mm: float | None = None
    expert_margin_mm: float | None = None
    removed_mm3: float | None = None
    healthy_bone_removed_mm3: float | None = None
    expert_healthy_bone_removed_mm3: float | None = None
    overlap: float | None = None
    components: dict[str, float] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)
    score: float = 0.0
    feedback: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScoreResult:
    """The scored attempt.

    Attributes
    ----------
    scenario_key, scenario_title, scenario_fingerprint : str
    score : float
        0..100.
    passed : bool
        Every check of every item and of the attempt (``checks``) passed.
    implants : tuple of ImplantScore
        Expert implants in the expert's order (matched or missing), then the extra ones.
    resections : tuple of ResectionScore
    extra_cuts : tuple of dict
        ``{"name", "structure", "reason"}`` of cuts not part of the task.
    penalties : dict
        Points taken off: ``extra_implants``, ``extra_cuts``, ``over_time``.
    checks : dict
        ``no_missing``, ``no_extra``, ``within_time``, ``score`` (at least ``pass_score``).
    feedback : tuple of str
        Every finding in words, in the order of the items, then the attempt's.
    trainee : str
    time_taken_s, time_limit_s : float or None
    undo_count : int or None
    """

    scenario_key: str
    scenario_title: str
    scenario_fingerprint: str
    score: float
    passed: bool
    implants: tuple[ImplantScore, ...]
    resections: tuple[ResectionScore, ...]
    extra_cuts: tuple[dict[str, str], ...]
    penalties: dict[str, float]
    checks: dict[str, bool]
    feedback: tuple[str, ...]
    trainee: str = ""
    time_taken_s: float | None = None
    time_limit_s: float | None = None
    undo_count: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data: ``score``, ``passed``, ``implants``, ``resections``, ``feedback``
        first, then the details."""
        return _clean(
            {
                "score": self.score,
                "passed": self.passed,
                "implants": [i.to_dict() for i in self.implants],
                "resections": [r.to_dict() for r in self.resections],
                "feedback": list(self.feedback),
                "scenario": {
                    "key": self.scenario_key,
                    "title": self.scenario_title,
                    "fingerprint": self.scenario_fingerprint,
                },
                "trainee": self.trainee,
                "time_taken_s": self.time_taken_s,
                "time_limit_s": self.time_limit_s,
                "undo_count": self.undo_count,
                "extra_cuts": [dict(c) for c in self.extra_cuts],
                "penalties": dict(self.penalties),
                "checks": dict(self.checks),
            }
        )
