"""The label map: one label value per voxel on a volume's grid, with named, coloured labels.

Every change goes through :meth:`LabelMap.change`, which returns a :class:`LabelEdit` holding
only the changed bounding box before and after (compressed when large), never a full copy; the
plan's command stack undoes and redoes edits with :meth:`LabelMap.undo` / :meth:`LabelMap.redo`.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, replace
from enum import StrEnum

import numpy as np

from surgtwin.errors import SurgTwinError
from surgtwin.imaging.volume import ImageGeometry, Volume

MAX_LABELS = 255
# Deltas above this size are kept zlib-compressed (label maps compress 20-100x).
COMPRESS_ABOVE_BYTES = 1 << 20

# A palette that stays readable on a dark background, by role.
ROLE_COLOURS = {
    "bone": (0.90, 0.85, 0.72),
    "skin": (0.93, 0.70, 0.60),
    "critical": (0.95, 0.80, 0.20),
    "target": (0.85, 0.20, 0.20),
    "other": (0.40, 0.65, 0.90),
}
EXTRA_COLOURS = [
    (0.45, 0.75, 0.45),
    (0.70, 0.45, 0.85),
    (0.30, 0.80, 0.80),
    (0.95, 0.55, 0.15),
    (0.60, 0.60, 0.60),
    (0.80, 0.40, 0.60),
]


class SegmentationError(SurgTwinError):
    """A segmentation request that cannot be carried out (unknown label, empty result, ...)."""


class Role(StrEnum):
    """What a structure is for planning: bone holds implants, critical must be avoided."""

    BONE = "bone"
    SKIN = "skin"
    CRITICAL = "critical"
    TARGET = "target"
    OTHER = "other"


@dataclass(frozen=True)
class Label:
    """A named structure in the label map.

    Attributes
    ----------
    value : int
        Voxel value, 1..255 (0 is background).
    name : str
        Shown to the user and used for file names ("L4 bone", "spinal canal").
    color : tuple of float
        RGB in 0..1.
    role : Role
    visible : bool
    opacity : float
        0..1.
    """

    value: int
    name: str
    color: tuple[float, float, float]
    role: Role = Role.OTHER
    visible: bool = True
    opacity: float = 1.0


@dataclass
class LabelEdit:
    """One undoable change: the changed bounding box before and after, and the label table."""

    name: str
    box: tuple[slice, slice, slice]
    _before: bytes | np.ndarray
    _after: bytes | np.ndarray
    shape: tuple[int, int, int]
    labels_before: dict[int, Label] = field(default_factory=dict)
    labels_after: dict[int, Label] = field(default_factory=dict)

    @staticmethod
    def _pack(arr: np.ndarray) -> bytes | np.ndarray:
        if arr.nbytes > COMPRESS_ABOVE_BYTES:
            return zlib.compress(np.ascontiguousarray(arr).tobytes(), 1)
        return arr.copy()

    def _unpack(self, data: bytes | np.ndarray) -> np.ndarray:
        if isinstance(data, bytes):
            return np.frombuffer(zlib.decompress(data), dtype=np.uint8).reshape(self.shape)
        return data

    @property
    def before(self) -> np.ndarray:
        return self._unpack(self._before)

    @property
    def after(self) -> np.ndarray:
        return self._unpack(self._after)

    @property
    def nbytes(self) -> int:
        """Memory this undo record holds."""
        return sum(
            len(d) if isinstance(d, bytes) else d.nbytes for d in (self._before, self._after)
        )

    @property
    def changed_voxels(self) -> int:
        return int(np.count_nonzero(self.before != self.after))


def _bbox(mask: np.ndarray) -> tuple[slice, slice, slice] | None:
    if not mask.any():
        return None
    out = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        idx = np.flatnonzero(mask.any(axis=other))
        out.append(slice(int(idx[0]), int(idx[-1]) + 1))
    return tuple(out)


class LabelMap:
    """Labels on the grid of a volume.

    Parameters
    ----------
    geometry : ImageGeometry
        The grid (normally ``volume.geometry``).
    array : numpy.ndarray, optional
        uint8 label values [k, j, i]; zeros when omitted.
    labels : iterable of Label, optional
    """

    def __init__(
        self,
        geometry: ImageGeometry,
        array: np.ndarray | None = None,
        labels: list[Label] | None = None,
    ):
        self.geometry = geometry
        if array is None:
            array = np.zeros(geometry.shape, dtype=np.uint8)
        if array.shape != tuple(geometry.shape) or array.dtype != np.uint8:
            raise SegmentationError(
                f"label array {array.shape} {array.dtype} does not match the grid {geometry.shape}"
            )
        self._array = array
        self.labels: dict[int, Label] = {lab.value: lab for lab in labels or []}

    @classmethod
    def for_volume(cls, volume: Volume) -> LabelMap:
        return cls(volume.geometry)

    # ------------------------------------------------------------------ reading

    @property
    def array(self) -> np.ndarray:
        """The label values; read-only view (change them with :meth:`change`)."""
        view = self._array.view()
        view.flags.writeable = False
        return view

    def label(self, key: int | str) -> Label:
        """A label by value or (case-insensitive) name."""
        if isinstance(key, int | np.integer):
            if int(key) in self.labels:
                return self.labels[int(key)]
        else:
            for lab in self.labels.values():
                if lab.name.lower() == str(key).lower():
                    return lab
        raise SegmentationError(f"no label {key!r}; labels are: {self.names()}")

    def names(self) -> list[str]:
        return [lab.name for lab in self.labels.values()]

    def mask(self, key: int | str) -> np.ndarray:
        """Boolean mask of one label (a new array)."""
        return self._array == self.label(key).value

    def voxel_count(self, key: int | str) -> int:
        return int(np.count_nonzero(self._array == self.label(key).value))

    def volume_mm3(self, key: int | str) -> float:
        return self.voxel_count(key) * self.geometry.voxel_volume_mm3

    # ------------------------------------------------------------------ labels

    def next_value(self) -> int:
        for v in range(1, MAX_LABELS + 1):
            if v not in self.labels:
                return v
        raise SegmentationError(f"at most {MAX_LABELS} labels")

    def new_label(
        self,
        name: str,
        role: Role | str = Role.OTHER,
        color: tuple[float, float, float] | None = None,
    ) -> Label:
        """A label not yet in the map (add it with :meth:`change` or :meth:`set_labels`)."""
        role = Role(role)
        if any(lab.name.lower() == name.lower() for lab in self.labels.values()):
            raise SegmentationError(f"a label named {name!r} exists already")
        if color is None:
            used = {lab.color for lab in self.labels.values()}
            color = ROLE_COLOURS[role]
            if color in used:
                color = next((c for c in EXTRA_COLOURS if c not in used), color)
        return Label(self.next_value(), name, tuple(float(c) for c in color), role)

    # ------------------------------------------------------------------ editing

    def change(
        self,
        name: str,
        value: int,
        mask: np.ndarray,
        *,
        box: tuple[slice, slice, slice] | None = None,
        mode: str = "set",
        overwrite: bool = True,
        label: Label | None = None,
        apply: bool = True,
    ) -> LabelEdit | None:
        """Change the voxels of one label and return the undo record (``None`` if nothing changed).

        Parameters
        ----------
        name : str
            What the user did ("Threshold bone 250..3071 HU"), shown in the history.
        value : int
            The label value to write.
        mask : numpy.ndarray of bool
            Where the label should be, within ``box`` (shape of the box) or the whole grid.
        box : tuple of slices, optional
            The region ``mask`` covers; voxels outside are untouched.
        mode : {"set", "add", "remove"}
            ``set``: the label becomes exactly ``mask`` within the box; ``add``: voxels of
            ``mask`` are added; ``remove``: voxels of ``mask`` that carry the label are cleared.
        overwrite : bool
            Whether ``set``/``add`` may take voxels from other labels.
        label : Label, optional
            A new or updated label definition to store with the edit.
        apply : bool
            Apply the edit now (default). ``False`` only prepares the record, leaving the map
            as it is: apply it later with :meth:`redo` (e.g. as part of a larger undo step).
        """
        if box is None:
            box = (
                slice(0, self.geometry.shape[0]),
                slice(0, self.geometry.shape[1]),
                slice(0, self.geometry.shape[2]),
            )
        region = self._array[box]
        if mask.shape != region.shape:
            raise SegmentationError(f"mask {mask.shape} does not match the region {region.shape}")
        new = region.copy()
        if mode == "remove":
            new[mask & (region == value)] = 0
        else:
            writable = mask if overwrite else mask & ((region == 0) | (region == value))
            if mode == "set":
                new[(region == value) & ~mask] = 0
            elif mode != "add":
                raise SegmentationError(f"unknown edit mode {mode!r}")
            new[writable] = value
        labels_before = dict(self.labels)
        labels_after = dict(self.labels)
        if label is not None:
            labels_after[label.value] = label
        changed = new != region
        inner = _bbox(changed)
        if inner is None and labels_after == labels_before:
            return None
        if inner is None:
            inner = (slice(0, 0), slice(0, 0), slice(0, 0))
        abs_box = tuple(
            slice(outer.start + i.start, outer.start + i.stop)
            for outer, i in zip(box, inner, strict=True)
        )
        before = region[inner]
        after = new[inner]
        edit = LabelEdit(
            name=name,
            box=abs_box,
            _before=LabelEdit._pack(before),
            _after=LabelEdit._pack(after),
            shape=before.shape,
            labels_before=labels_before,
            labels_after=labels_after,
        )
        if apply:
            self.redo(edit)
        return edit

    def set_labels(self, name: str, labels: dict[int, Label]) -> LabelEdit:
        """Change the label table only (rename, recolour, role, visibility, delete)."""
        empty = (slice(0, 0), slice(0, 0), slice(0, 0))
        zero = np.zeros((0, 0, 0), np.uint8)
        removed = set(self.labels) - set(labels)
        if removed:
            # deleting a label clears its voxels in the same step
            mask = np.isin(self._array, list(removed))
            box = _bbox(mask) or empty
            before = self._array[box]
            after = np.where(np.isin(before, list(removed)), 0, before).astype(np.uint8)
            edit = LabelEdit(
                name,
                box,
                LabelEdit._pack(before),
                LabelEdit._pack(after),
                before.shape,
                dict(self.labels),
                dict(labels),
            )
        else:
            edit = LabelEdit(name, empty, zero, zero, (0, 0, 0), dict(self.labels), dict(labels))
        self.redo(edit)
        return edit

    def update_label(self, step: str, key: int | str, **changes) -> LabelEdit:
        """Rename, recolour, change role, visibility or opacity of a label (undoable)."""
        lab = self.label(key)
        labels = dict(self.labels)
        labels[lab.value] = replace(lab, **changes)
        return self.set_labels(step, labels)

    def undo(self, edit: LabelEdit) -> None:
        self._array[edit.box] = edit.before
        self.labels = dict(edit.labels_before)

    def redo(self, edit: LabelEdit) -> None:
        self._array[edit.box] = edit.after
        self.labels = dict(edit.labels_after)
