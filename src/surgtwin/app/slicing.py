"""Which way is up: slices of a volume in the radiological display convention (no Qt here).

Views follow the convention of radiology workstations:

- axial: viewed from the feet, the patient's left on the screen's right, anterior up;
- coronal: viewed from the front, left on the right, superior up;
- sagittal: viewed from the patient's left, anterior on the screen's left, superior up.

The array is mapped onto the patient axes by the direction matrix (each index axis to the
patient axis it is closest to, with its sign), using numpy views only. For an oblique series
the displayed slice is the nearest orthogonal one, and positions picked on it are still mapped
to LPS through the volume's true affine, so a point placed on a view is where the voxel is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from surgtwin.imaging.volume import ImageGeometry

__all__ = ["ORIENTATIONS", "WINDOW_PRESETS", "SliceAxes", "Slicer"]

ORIENTATIONS = ("axial", "coronal", "sagittal")

#: Window presets (centre, width) in HU.
WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "bone": (400.0, 1800.0),
    "soft tissue": (50.0, 400.0),
    "lung": (-600.0, 1500.0),
    "brain": (40.0, 80.0),
}


@dataclass(frozen=True)
class SliceAxes:
    """Screen axes of one orientation, as LPS axes (0 = x/L, 1 = y/P, 2 = z/S) and signs.

    ``right`` is the patient axis pointing to the screen's right, ``down`` the one pointing
    down the screen, ``normal`` the slice normal; ``letters`` are (left, right, top, bottom)
    edge labels.
    """

    right: tuple[int, int]
    down: tuple[int, int]
    normal: int
    letters: tuple[str, str, str, str]


AXES: dict[str, SliceAxes] = {
    "axial": SliceAxes((0, +1), (1, +1), 2, ("R", "L", "A", "P")),
    "coronal": SliceAxes((0, +1), (2, -1), 1, ("R", "L", "S", "I")),
    "sagittal": SliceAxes((1, +1), (2, -1), 0, ("A", "P", "S", "I")),
}


class Slicer:
    """Slices of a volume-shaped array (and of label maps on the same grid) for display.

    Parameters
    ----------
    geometry : ImageGeometry
        The grid (numpy order z, y, x; LPS direction columns per index axis i, j, k).
    """

    def __init__(self, geometry: ImageGeometry):
        self.geometry = geometry
        d = np.asarray(geometry.direction, dtype=float).reshape(3, 3)
        # index axis (0=i/x, 1=j/y, 2=k/z) closest to each patient axis
        self.axis_of = [-1, -1, -1]
        self.sign_of = [1, 1, 1]
        used: set[int] = set()
        for lps in np.argsort(-np.abs(d).max(axis=1)):
            order = np.argsort(-np.abs(d[lps]))
            idx = next(int(i) for i in order if int(i) not in used)
            used.add(idx)
            self.axis_of[lps] = idx
            self.sign_of[lps] = 1 if d[lps, idx] >= 0 else -1
        self.oblique = bool(np.abs(np.abs(d).max(axis=0) - 1.0).max() > 1e-3)
        nx, ny, nz = geometry.size
        self.index_size = (nx, ny, nz)
        #: number of voxels along each patient axis
        self.lps_size = tuple(self.index_size[self.axis_of[a]] for a in range(3))
        #: voxel spacing along each patient axis (mm)
        self.lps_spacing = tuple(float(geometry.spacing[self.axis_of[a]]) for a in range(3))
        scaled = np.asarray(geometry.direction, float) * np.asarray(geometry.spacing)[None, :]
        self._to_index = np.linalg.inv(scaled)  # computed once: views map points constantly
        self._origin = np.asarray(geometry.origin, float)

    # ---------------------------------------------------------------- index conversions

    def _canonical(self, array: np.ndarray) -> np.ndarray:
        """A view ``c[x, y, z]`` of a (z, y, x) array, index increasing towards L, P, S."""
        # numpy axis of index axis i is 2 - i
        c = np.transpose(array, [2 - self.axis_of[a] for a in range(3)])
        flips = tuple(
            slice(None, None, -1) if self.sign_of[a] < 0 else slice(None) for a in range(3)
        )
        return c[flips]

    def lps_index(self, ijk: np.ndarray) -> np.ndarray:
        """Volume index (i, j, k) -> canonical index along (L, P, S)."""
        ijk = np.asarray(ijk, dtype=float)
        out = np.empty(3)
        for a in range(3):
            v = ijk[self.axis_of[a]]
            out[a] = v if self.sign_of[a] > 0 else self.lps_size[a] - 1 - v
        return out

    def volume_index(self, c: np.ndarray) -> np.ndarray:
        """Canonical index along (L, P, S) -> volume index (i, j, k)."""
        out = np.empty(3)
        for a in range(3):
            v = c[a] if self.sign_of[a] > 0 else self.lps_size[a] - 1 - c[a]
            out[self.axis_of[a]] = v
        return out

    # ---------------------------------------------------------------- slices

    def n_slices(self, orientation: str) -> int:
        return int(self.lps_size[AXES[orientation].normal])

    def slice_index(self, orientation: str, point_lps: np.ndarray) -> int:
        """The slice of ``orientation`` nearest to an LPS point (clamped to the volume)."""
        c = self.lps_index(self.geometry.lps_to_index(np.asarray(point_lps, dtype=float)))
        n = AXES[orientation].normal
        return int(np.clip(round(float(c[n])), 0, self.lps_size[n] - 1))

    def image(self, array: np.ndarray, orientation: str, index: int) -> np.ndarray:
        """The 2-D slice (rows down the screen, columns to the right); a numpy view."""
        ax = AXES[orientation]
        c = self._canonical(array)
        sl = [slice(None)] * 3
        sl[ax.normal] = int(index)
        img = c[tuple(sl)]  # remaining axes in LPS order
        rest = [a for a in range(3) if a != ax.normal]
        # rows follow ax.down, columns follow ax.right
        if rest.index(ax.down[0]) != 0:
            img = img.T
        if ax.down[1] < 0:
            img = img[::-1, :]
        if ax.right[1] < 0:
            img = img[:, ::-1]
        return img

    def pixel_spacing(self, orientation: str) -> tuple[float, float]:
        """(column, row) pixel size in mm."""
        ax = AXES[orientation]
        return self.lps_spacing[ax.right[0]], self.lps_spacing[ax.down[0]]

    def image_size(self, orientation: str) -> tuple[int, int]:
        """(columns, rows) of the slice images."""
        ax = AXES[orientation]
        return self.lps_size[ax.right[0]], self.lps_size[ax.down[0]]

    def pixel_to_lps(self, orientation: str, index: int, col: float, row: float) -> np.ndarray:
        """LPS mm of a (fractional) pixel position on slice ``index``."""
        ax = AXES[orientation]
        ncol, nrow = self.image_size(orientation)
        c = np.zeros(3)
        c[ax.normal] = index
        c[ax.right[0]] = col if ax.right[1] > 0 else ncol - 1 - col
        c[ax.down[0]] = row if ax.down[1] > 0 else nrow - 1 - row
        return self.geometry.index_to_lps(self.volume_index(c))

    def lps_to_pixel(self, orientation: str, point_lps: np.ndarray) -> tuple[float, float, float]:
        """(column, row, signed distance from the slice plane in slices) of an LPS point."""
        ax = AXES[orientation]
        ncol, nrow = self.image_size(orientation)
        ijk = self._to_index @ (np.asarray(point_lps, dtype=float) - self._origin)
        c = self.lps_index(ijk)
        col = c[ax.right[0]] if ax.right[1] > 0 else ncol - 1 - c[ax.right[0]]
        row = c[ax.down[0]] if ax.down[1] > 0 else nrow - 1 - c[ax.down[0]]
        return float(col), float(row), float(c[ax.normal])
