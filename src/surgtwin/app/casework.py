"""Opening a case for the window: plain functions the app runs on a worker thread (no Qt)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from surgtwin.errors import LoadCancelled, SurgTwinError
from surgtwin.imaging import load
from surgtwin.imaging.volume import Volume
from surgtwin.planning.plan import CaseReference, Plan
from surgtwin.segmentation import LabelMap

__all__ = ["OpenedCase", "case_volume", "example_screw", "open_dicom_case", "open_plan_case"]

PLAN_SUFFIX = ".surgplan"


@dataclass
class OpenedCase:
    volume: Volume | None
    plan: Plan
    path: Path | None = None  # the plan file, when one was opened
    warnings: tuple[str, ...] = ()


def _check(cancel: Callable[[], bool] | None) -> None:
    if cancel is not None and cancel():
        raise LoadCancelled("cancelled by the user")


def example_screw(plan: Plan, series_path: str | os.PathLike) -> str | None:
    """For the bundled phantom: place the L4 left pedicle screw on its ideal trajectory
    (from the phantom's ground truth), so a new user has something to drag. Returns its name."""
    from surgtwin.planning.case import phantom_ground_truth, place_implant

    truth = phantom_ground_truth(series_path)
    if not truth:
        return None
    screw = truth["levels"]["L4"]["pedicle_screws"]["left"]
    name = "L4 left pedicle screw"
    place_implant(
        plan,
        "pedicle_screw",
        screw["entry"],
        screw["target"],
        diameter_mm=6.5,
        length_mm=45.0,
        name=name,
    )
    return name


def open_dicom_case(
    path: str | os.PathLike,
    *,
    series_uid: str | None = None,
    segment: bool = True,
    example: bool = True,
    resample: bool = False,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> OpenedCase:
    """Load a series and start a plan on it.

    With ``segment``, the bone preset and (for the bundled phantom) the spinal canal are
    segmented with their surfaces, as ``make run`` shows; when the bone preset finds nothing
    (an MR, say) the plan starts empty with a warning. With ``example``, the phantom also gets
    the example pedicle screw. With ``resample``, a series with missing slices or uneven
    spacing is interpolated onto a uniform grid (see :func:`surgtwin.imaging.load`); it is not
    segmented automatically (``build_plan`` loads without resampling).
    """
    volume = load(path, uid=series_uid, resample=resample, progress=progress, cancel=cancel)
    _check(cancel)
    warnings: list[str] = []
    plan: Plan | None = None
    if segment and resample:
        warnings.append(
            "Automatic segmentation skipped: the series was resampled onto a uniform grid"
        )
    elif segment:
        from surgtwin.planning.case import build_plan

        try:
            plan = build_plan(path, series_uid=series_uid or volume.info.series_uid, name="Plan")
        except SurgTwinError as exc:
            warnings.append(f"Automatic segmentation skipped: {exc}")
        _check(cancel)
    if plan is None:
        info = volume.info
        case = CaseReference(
            study_uid=info.study_uid,
            series_uids=(info.series_uid,),
            frame_of_reference_uid=info.frame_of_reference_uid,
            source_path=str(Path(path).resolve()),
        )
        plan = Plan("Plan", case, LabelMap.for_volume(volume))
    if example and segment:
        example_screw(plan, path)
    return OpenedCase(volume, plan, None, tuple(warnings))


def case_volume(
    plan: Plan,
    series: str,
    mismatch: str,
    *,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> tuple[Volume | None, list[str]]:
    """The volume of a plan's DICOM series (``plan.case.source_path``), when it can be found
    and matches the plan's label map grid, and the warnings to show when it cannot.

    Parameters
    ----------
    plan : Plan
        A plan read from a file (a ``.surgplan`` or a scenario's case).
    series : str
        How the warnings name the series (``"The plan's DICOM series"``).
    mismatch : str
        The warning when the series' grid differs from the label map's (the volume is then
        not shown).
    progress, cancel : callable, optional
        Passed to :func:`surgtwin.imaging.load`.

    Raises
    ------
    LoadCancelled
        ``cancel`` returned True.
    """
    warnings: list[str] = []
    volume = None
    source = plan.case.source_path
    if source and Path(source).exists():
        uid = plan.case.series_uids[0] if plan.case.series_uids else None
        try:
            volume = load(source, uid=uid, progress=progress, cancel=cancel)
        except LoadCancelled:
            raise
        except SurgTwinError as exc:
            warnings.append(f"{series} could not be loaded: {exc}")
    else:
        warnings.append(
            f"{series} was not found"
            + (f" at {source}" if source else "")
            + "; the slice views show the segmentation only."
        )
    lm = plan.labelmap
    if volume is not None and lm is not None and volume.geometry.shape != lm.geometry.shape:
        warnings.append(mismatch)
        volume = None
    return volume, warnings


def open_plan_case(
    path: str | os.PathLike,
    *,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> OpenedCase:
    """Open a ``.surgplan`` and, when its DICOM series can still be found, its volume."""
    from surgtwin.planning.planfile import load_plan

    plan = load_plan(path)
    _check(cancel)
    volume, warnings = case_volume(
        plan,
        "The plan's DICOM series",
        "The DICOM series does not match the plan's grid; not shown.",
        progress=progress,
        cancel=cancel,
    )
    return OpenedCase(volume, plan, Path(path), tuple(warnings))
