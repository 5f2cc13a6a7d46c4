"""Scanning: files -> headers (in parallel) -> series, split where they are not one volume.

``scan`` reads headers only. Files are grouped by SeriesInstanceUID (or, where it is missing, by
study + series number + orientation); a group whose images differ in orientation or size is
split, and a group that repeats positions is split by echo / time point / acquisition when that
separates the repeats cleanly, else it is refused with ``duplicate_positions``.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from surgtwin.errors import DicomError, LoadCancelled
from surgtwin.imaging import findings as fc
from surgtwin.imaging.findings import Finding, Severity
from surgtwin.imaging.geometry import (
    Grid,
    StackGeometry,
    duplicate_groups,
    same_orientation,
    stack_geometry,
)
from surgtwin.imaging.header import FrameInfo, ImageHeader, NonImage, read_header
from surgtwin.imaging.sources import FileRef, Skipped, collect

ProgressFn = Callable[[int, int], None]

# Keys tried, in order, to separate images that repeat the same positions (multi-volume series).
SPLIT_KEYS = (
    "StackID",
    "TemporalPositionIndex",
    "TemporalPositionIdentifier",
    "EchoNumbers",
    "EffectiveEchoTime",
    "AcquisitionNumber",
    "TriggerTime",
    "FrameType",
    "ImageType",
    "DimensionIndexValues",
)


@dataclass(frozen=True)
class SliceRef:
    """One 2D image of a series: a file and, for multi-frame files, a frame in it."""

    header: ImageHeader
    frame: FrameInfo

    @property
    def name(self) -> str:
        if self.frame.frame is None:
            return self.header.ref.name
        return f"{self.header.ref.name} [frame {self.frame.frame + 1}]"


@dataclass
class Series:
    """One loadable (or refused) stack of images, with what was found about it.

    Attributes
    ----------
    uid : str
        SeriesInstanceUID, with ``#k`` appended when one DICOM series was split into parts.
    slices : tuple of SliceRef
        The images, sorted along the slice normal when the geometry is known.
    findings : list of Finding
        Validation results; any ``error`` finding means :func:`load` refuses the series.
    grid : Grid or None
        The volume grid ``load`` will produce (``None`` when there is no usable geometry).
    """

    uid: str
    series_uid: str
    slices: tuple[SliceRef, ...]
    findings: list[Finding] = field(default_factory=list)
    geometry: StackGeometry | None = None

    @property
    def first(self) -> ImageHeader:
        return self.slices[0].header

    @property
    def modality(self) -> str:
        return self.first.modality

    @property
    def description(self) -> str:
        return self.first.description

    @property
    def grid(self) -> Grid | None:
        return self.geometry.grid if self.geometry else None

    @property
    def files(self) -> tuple[FileRef, ...]:
        seen: dict[FileRef, None] = {}
        for s in self.slices:
            seen.setdefault(s.header.ref, None)
        return tuple(seen)

    @property
    def n_files(self) -> int:
        return len(self.files)

    @property
    def loadable(self) -> bool:
        return self.geometry is not None and not any(
            f.severity == Severity.ERROR for f in self.findings
        )

    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == Severity.ERROR]

    def summary(self) -> dict:
        """The row ``surgtwin info --json`` prints for this series."""
        grid = self.grid
        return {
            "uid": self.uid,
            "modality": self.modality,
            "description": self.description,
            "size": list(grid.size)
            if grid
            else [self.first.columns, self.first.rows, len(self.slices)],
            "spacing": [round(v, 6) for v in grid.spacing] if grid else None,
            "n_files": self.n_files,
            "loadable": self.loadable,
            "findings": [f.to_dict() for f in self.findings],
        }


@dataclass
class SeriesIndex:
    """What a scan found: series, non-image objects, and files left out with their reasons."""

    root: str
    series: list[Series]
    non_images: list[NonImage]
    skipped: list[Skipped]

    def get(self, uid: str) -> Series:
        """The series whose ``uid`` (or unique prefix of it) is given."""
        exact = [s for s in self.series if s.uid == uid]
        if exact:
            return exact[0]
        matches = [s for s in self.series if s.uid.startswith(uid) or s.series_uid == uid]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise DicomError(f"no series with UID {uid}", self.root)
        raise DicomError(
            f"{len(matches)} series match {uid}: give one of " + ", ".join(s.uid for s in matches),
            self.root,
        )

    def loadable(self) -> list[Series]:
        return [s for s in self.series if s.loadable]


# ---------------------------------------------------------------------------- scanning


def _read_all(
    refs: Sequence[FileRef], progress: ProgressFn | None, cancel: Callable[[], bool] | None
) -> tuple[list[ImageHeader], list[NonImage], list[Skipped]]:
    images: list[ImageHeader] = []
    others: list[NonImage] = []
    skipped: list[Skipped] = []

    def one(ref: FileRef) -> ImageHeader | NonImage | Skipped:
        if cancel is not None and cancel():
            return Skipped(ref.name, "cancelled")
        try:
            return read_header(ref)
        except DicomError as exc:
            return Skipped(ref.name, exc.problem)

    workers = min(8, (os.cpu_count() or 2) * 2, max(1, len(refs)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done, result in enumerate(pool.map(one, refs), start=1):
            if isinstance(result, ImageHeader):
                images.append(result)
            elif isinstance(result, NonImage):
                others.append(result)
            else:
                skipped.append(result)
            if progress is not None:
                progress(done, len(refs))
    if cancel is not None and cancel():
        raise LoadCancelled("scan cancelled")
    return images, others, skipped


def scan(
    path: str | os.PathLike[str],
    progress: ProgressFn | None = None,
    cancel: Callable[[], bool] | None = None,
) -> SeriesIndex:
    """Index the DICOM series under ``path`` from their headers only (no pixel decoding).

    Parameters
    ----------
    path : str or PathLike
        A folder (recursive), a single file, a ``.zip`` archive or a DICOMDIR.
    progress : callable, optional
        Called as ``progress(files_done, files_total)``.
    cancel : callable, optional
        Returns True to stop; the scan then raises :class:`LoadCancelled`.

    Returns
    -------
    SeriesIndex

    Raises
    ------
    DicomError
        When ``path`` does not exist or cannot be read.
    """
    refs, skipped = collect(path)
    images, others, bad = _read_all(refs, progress, cancel)
    skipped.extend(bad)
    series = build_series(images)
    return SeriesIndex(root=os.fspath(path), series=series, non_images=others, skipped=skipped)


def _group_key(h: ImageHeader) -> tuple:
    if h.series_uid:
        return (h.series_uid,)
    o = h.frames[0].orientation
    rounded = tuple(round(v, 2) for v in o) if o else None
    return (h.study_uid, h.series_number, rounded, h.modality)


def build_series(images: Sequence[ImageHeader]) -> list[Series]:
    """Group headers into series and split each into stacks that can form a volume."""
    groups: dict[tuple, list[ImageHeader]] = defaultdict(list)
    for h in images:
        groups[_group_key(h)].append(h)
    out: list[Series] = []
    for key, headers in groups.items():
        uid = headers[0].series_uid or _synthetic_uid(key)
        slices = [SliceRef(h, f) for h in headers for f in h.frames]
        parts, notes = _split(slices)
        for k, (part, extra) in enumerate(parts, start=1):
            part_uid = uid if len(parts) == 1 else f"{uid}#{k}"
            series = Series(uid=part_uid, series_uid=uid, slices=tuple(part))
            series.findings.extend(notes)
            series.findings.extend(extra)
            _validate(series)
            out.append(series)
    out.sort(key=lambda s: (s.first.study_uid, s.first.series_number or 0, s.uid))
    return out


def _synthetic_uid(key: tuple) -> str:
    study, number, _orientation, modality = key
    return (
        f"no-series-uid:{modality or 'image'}:{number if number is not None else '?'}:{study[-12:]}"
    )


def _cluster(
    slices: list[SliceRef], same: Callable[[SliceRef, SliceRef], bool]
) -> list[list[SliceRef]]:
    clusters: list[list[SliceRef]] = []
    for s in slices:
        for c in clusters:
            if same(c[0], s):
                c.append(s)
                break
        else:
            clusters.append([s])
    return clusters


def _split(
    slices: list[SliceRef],
) -> tuple[list[tuple[list[SliceRef], list[Finding]]], list[Finding]]:
    """Split by size, then orientation, then repeated positions."""
    notes: list[Finding] = []
    by_size = _cluster(
        slices,
        lambda a, b: (a.header.rows, a.header.columns) == (b.header.rows, b.header.columns),
    )
    if len(by_size) > 1:
        sizes = ", ".join(f"{c[0].header.columns}x{c[0].header.rows}" for c in by_size)
        notes.append(
            Finding(
                fc.INCONSISTENT_SIZE,
                f"the series mixes image sizes ({sizes}); it was split into {len(by_size)} parts",
                Severity.WARNING,
            )
        )

    def same_ori(a: SliceRef, b: SliceRef) -> bool:
        oa, ob = a.frame.orientation, b.frame.orientation
        if oa is None or ob is None:
            return oa is None and ob is None
        return same_orientation(oa, ob)

    stacks: list[list[SliceRef]] = []
    n_orient = 0
    for group in by_size:
        by_ori = _cluster(group, same_ori)
        n_orient = max(n_orient, len(by_ori))
        stacks.extend(by_ori)
    if n_orient > 1:
        notes.append(
            Finding(
                fc.MIXED_ORIENTATION,
                f"the series mixes {n_orient} image orientations (e.g. a localizer or several "
                "planes); each orientation is a separate part",
                Severity.WARNING,
            )
        )
    parts: list[tuple[list[SliceRef], list[Finding]]] = []
    for stack in stacks:
        parts.extend(_split_repeats(stack))
    return parts, notes


def _split_repeats(stack: list[SliceRef]) -> list[tuple[list[SliceRef], list[Finding]]]:
    """Separate images repeating the same positions; refuse when no tag separates them."""
    if (
        any(s.frame.position is None or s.frame.orientation is None for s in stack)
        or len(stack) < 2
    ):
        return [(stack, [])]
    orientation = stack[0].frame.orientation
    positions = np.array([s.frame.position for s in stack])
    dups = duplicate_groups(positions, orientation)
    if not dups:
        return [(stack, [])]
    findings: list[Finding] = []
    # Copies of the very same image (same SOP Instance UID and frame) are one image.
    seen: dict[tuple[str, int | None], SliceRef] = {}
    unique: list[SliceRef] = []
    for s in stack:
        key = (s.header.sop_instance_uid, s.frame.frame)
        if s.header.sop_instance_uid and key in seen:
            continue
        seen[key] = s
        unique.append(s)
    if len(unique) < len(stack):
        findings.append(
            Finding(
                fc.DUPLICATE_FILES,
                f"{len(stack) - len(unique)} file(s) are copies of images already in the series "
                "(same SOP Instance UID); each image was used once",
                Severity.INFO,
            )
        )
        stack = unique
        positions = np.array([s.frame.position for s in stack])
        dups = duplicate_groups(positions, orientation)
        if not dups:
            return [(stack, findings)]
    for key in SPLIT_KEYS:
        values = [dict(s.frame.split_keys).get(key) for s in stack]
        if any(v is None for v in values) or len(set(values)) < 2:
            continue
        groups: dict[str, list[SliceRef]] = defaultdict(list)
        for s, v in zip(stack, values, strict=True):
            groups[v].append(s)
        ok = all(
            not duplicate_groups(np.array([s.frame.position for s in g]), orientation)
            for g in groups.values()
        )
        if ok and all(len(g) >= 2 for g in groups.values()):
            note = Finding(
                fc.SPLIT_SERIES,
                f"the series holds {len(groups)} volumes at the same positions, told apart by "
                f"{key}; each is a separate part",
                Severity.INFO,
            )
            return [(g, [*findings, note]) for g in groups.values()]
    worst = max(dups, key=len)
    names = ", ".join(os.path.basename(stack[i].name) for i in worst[:4])
    if len(dups) == 1 and len(worst) == len(stack):
        what = (
            f"all {len(stack)} images lie at one and the same position (copies or repeated "
            f"acquisitions of one slice: {names}); this is not a volume"
        )
    else:
        what = (
            f"{sum(len(g) for g in dups)} images share {len(dups)} slice position(s) (e.g. "
            f"{len(worst)} images at one position: {names}) and nothing tells them apart"
        )
    findings.append(
        Finding(
            fc.DUPLICATE_POSITIONS,
            f"{what}; stacking them would make a false volume, so the series is not loaded",
            Severity.ERROR,
        )
    )
    return [(stack, findings)]


def _validate(series: Series, resample: bool = False) -> None:
    """Add the findings that do not depend on geometry, then compute the geometry."""
    first = series.first
    headers = list({id(s.header): s.header for s in series.slices}.values())
    problems: dict[str, list[ImageHeader]] = defaultdict(list)
    for h in headers:
        if h.problem:
            problems[h.problem_code or fc.TRUNCATED].append(h)
    for code, bad in problems.items():
        series.findings.append(
            Finding(
                code,
                f"{len(bad)} file(s) cannot be used: {bad[0].problem} (first: {bad[0].ref.name})",
                Severity.ERROR,
            )
        )
    if first.samples_per_pixel != 1 or first.photometric not in ("MONOCHROME1", "MONOCHROME2"):
        series.findings.append(
            Finding(
                fc.COLOUR_IMAGE,
                f"{first.photometric or 'colour'} images (photos, screenshots, ultrasound) cannot "
                "be used as a CT/MR volume",
                Severity.ERROR,
            )
        )
    if first.modality == "CT" and not all(h.has_rescale for h in headers):
        series.findings.append(
            Finding(
                fc.NO_RESCALE,
                "CT without Rescale Slope/Intercept: the values are stored pixel values, not "
                "verified Hounsfield units (often HU = value - 1024); HU thresholds may be wrong",
                Severity.WARNING,
            )
        )
    elif first.modality == "CT" and first.rescale_type.upper() not in ("", "HU"):
        series.findings.append(
            Finding(
                fc.NO_RESCALE,
                f"CT whose Rescale Type is {first.rescale_type!r} (not HU): the values are not "
                "verified Hounsfield units (often HU = value - 1024); HU thresholds may be wrong",
                Severity.WARNING,
            )
        )
    if any(h.frames_assumed for h in headers):
        series.findings.append(
            Finding(
                fc.NO_GEOMETRY,
                "the multi-frame file gives no position per frame; frames were stacked at the "
                "declared slice spacing",
                Severity.WARNING,
            )
        )
    compute_geometry(series, resample=resample)


def compute_geometry(series: Series, resample: bool = False) -> None:
    """Sort the slices and derive the grid; refuse stacks without usable geometry."""
    series.findings = [
        f
        for f in series.findings
        if f.code
        not in (
            fc.MISSING_SLICES,
            fc.UNEVEN_SPACING,
            fc.GANTRY_TILT,
            fc.SINGLE_SLICE,
            fc.NOT_A_VOLUME,
        )
    ]
    series.geometry = None
    if any(f.code == fc.DUPLICATE_POSITIONS for f in series.findings):
        return
    first = series.slices[0].frame
    missing = [s for s in series.slices if s.frame.position is None or s.frame.orientation is None]
    if missing:
        series.findings.append(
            Finding(
                fc.NOT_A_VOLUME,
                f"{len(missing)} image(s) carry no patient position or orientation (e.g. an "
                "X-ray, a screenshot or a scanned document), so they cannot be placed in 3D",
                Severity.ERROR,
            )
        )
        return
    spacings = {s.frame.pixel_spacing for s in series.slices}
    if None in spacings:
        series.findings.append(
            Finding(
                fc.NOT_A_VOLUME,
                "Pixel Spacing is missing, so distances in the image are unknown",
                Severity.ERROR,
            )
        )
        return
    if len({(round(a, 4), round(b, 4)) for a, b in spacings}) > 1:
        series.findings.append(
            Finding(
                fc.INCONSISTENT_SIZE,
                "the images have different pixel spacings and cannot be stacked into one volume",
                Severity.ERROR,
            )
        )
        return
    geometry = stack_geometry(
        np.array([s.frame.position for s in series.slices]),
        first.orientation,
        first.pixel_spacing,
        series.first.rows,
        series.first.columns,
        thickness=first.thickness,
        resample=resample,
    )
    series.slices = tuple(series.slices[i] for i in geometry.order)
    order = tuple(range(len(series.slices)))
    series.geometry = StackGeometry(
        order=order,
        grid=geometry.grid,
        offsets=geometry.offsets,
        tilt_deg=geometry.tilt_deg,
        shear=geometry.shear,
        uniform=geometry.uniform,
        findings=geometry.findings,
    )
    series.findings.extend(geometry.findings)
