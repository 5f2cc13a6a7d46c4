"""The Volume: voxel values on a regular grid in patient LPS millimetres."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from surgtwin.imaging.findings import Finding
from surgtwin.imaging.header import PatientInfo


@dataclass(frozen=True)
class VolumeInfo:
    """What a planner needs to know about the scan (no patient identifiers here)."""

    modality: str = ""
    description: str = ""
    study_description: str = ""
    study_date: str = ""
    body_part: str = ""
    manufacturer: str = ""
    model: str = ""
    series_uid: str = ""
    study_uid: str = ""
    frame_of_reference_uid: str = ""
    units: str = ""  # "HU" for CT with rescale; "" when values have no physical unit


@dataclass(frozen=True, eq=False)
class ImageGeometry:
    """A regular grid in patient LPS mm, shared by volumes and label maps.

    Attributes
    ----------
    shape : tuple of int
        Array shape (slices, rows, columns), i.e. voxels along k, j, i.
    spacing : tuple of float
        (x, y, z) = voxel size along i, j, k in mm.
    origin : tuple of float
        LPS mm of the centre of voxel (i, j, k) = (0, 0, 0).
    direction : numpy.ndarray, shape (3, 3)
        Columns are the unit LPS directions of the i, j, k axes (right-handed).
    """

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray

    @property
    def size(self) -> tuple[int, int, int]:
        """(columns, rows, slices) = voxels along i, j, k."""
        k, j, i = self.shape
        return (i, j, k)

    @property
    def voxel_volume_mm3(self) -> float:
        return float(np.prod(self.spacing))

    @property
    def affine(self) -> np.ndarray:
        """4x4 matrix mapping (i, j, k, 1) to LPS mm."""
        m = np.eye(4)
        m[:3, :3] = self.direction * np.asarray(self.spacing)[None, :]
        m[:3, 3] = self.origin
        return m

    def index_to_lps(self, ijk: np.ndarray | tuple) -> np.ndarray:
        """LPS mm of voxel indices (i, j, k), one per row; fractional indices allowed."""
        ijk = np.asarray(ijk, dtype=float)
        scaled = self.direction * np.asarray(self.spacing)[None, :]
        return ijk @ scaled.T + np.asarray(self.origin)

    def lps_to_index(self, xyz: np.ndarray | tuple) -> np.ndarray:
        """Continuous voxel indices (i, j, k) of LPS mm points, one per row."""
        xyz = np.asarray(xyz, dtype=float) - np.asarray(self.origin)
        inv = np.linalg.inv(self.direction * np.asarray(self.spacing)[None, :])
        return xyz @ inv.T

    def contains_index(self, ijk: np.ndarray) -> np.ndarray:
        """True where rounded indices (i, j, k) fall inside the grid."""
        ijk = np.rint(np.atleast_2d(ijk)).astype(int)
        size = np.asarray(self.size)
        return np.all((ijk >= 0) & (ijk < size), axis=1)

    def bounds(self) -> tuple[float, float, float, float, float, float]:
        """(xmin, xmax, ymin, ymax, zmin, zmax) in LPS mm of the voxel centres."""
        i, j, k = self.size
        corners = np.array(
            [[a, b, c] for a in (0, i - 1) for b in (0, j - 1) for c in (0, k - 1)], dtype=float
        )
        pts = self.index_to_lps(corners)
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        return (lo[0], hi[0], lo[1], hi[1], lo[2], hi[2])


@dataclass(frozen=True, eq=False)
class Volume:
    """A 3D image on a regular grid.

    Attributes
    ----------
    array : numpy.ndarray, shape (slices, rows, columns)
        Voxel values, indexed ``[k, j, i]``; HU for CT. Read-only (volumes are shared).
    spacing : tuple of float
        (x, y, z) = voxel size along i, j, k in mm.
    origin : tuple of float
        LPS mm of the centre of voxel (i, j, k) = (0, 0, 0).
    direction : numpy.ndarray, shape (3, 3)
        Columns are the unit LPS directions of the i, j, k axes (right-handed).
    info : VolumeInfo
        Modality, description, dates, units.
    patient : PatientInfo
        Identifiers, kept separate so exports can leave them out.
    findings : tuple of Finding
        What was found and corrected while loading.
    source_files : tuple of str
        The files the volume was read from.
    """

    array: np.ndarray
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray
    info: VolumeInfo = field(default_factory=VolumeInfo)
    patient: PatientInfo = field(default_factory=PatientInfo)
    findings: tuple[Finding, ...] = ()
    source_files: tuple[str, ...] = ()

    @property
    def geometry(self) -> ImageGeometry:
        return ImageGeometry(tuple(self.array.shape), self.spacing, self.origin, self.direction)

    @property
    def size(self) -> tuple[int, int, int]:
        """(columns, rows, slices) = voxels along i, j, k."""
        return self.geometry.size

    @property
    def nbytes(self) -> int:
        return int(self.array.nbytes)

    @property
    def affine(self) -> np.ndarray:
        return self.geometry.affine

    def index_to_lps(self, ijk: np.ndarray | tuple) -> np.ndarray:
        """LPS mm of voxel indices (i, j, k), one per row; fractional indices allowed."""
        return self.geometry.index_to_lps(ijk)

    def lps_to_index(self, xyz: np.ndarray | tuple) -> np.ndarray:
        """Continuous voxel indices (i, j, k) of LPS mm points, one per row."""
        return self.geometry.lps_to_index(xyz)

    def value_at(self, xyz: np.ndarray | tuple) -> float:
        """Voxel value at the nearest voxel to an LPS point (mm).

        Raises
        ------
        ValueError
            When the point lies outside the volume (never wraps to the opposite side).
        """
        ijk = np.rint(self.lps_to_index(xyz)).astype(int)
        if not self.geometry.contains_index(ijk)[0]:
            raise ValueError(f"point {tuple(np.round(xyz, 2))} mm (LPS) lies outside the volume")
        i, j, k = ijk
        return float(self.array[k, j, i])

    def bounds(self) -> tuple[float, float, float, float, float, float]:
        """(xmin, xmax, ymin, ymax, zmin, zmax) in LPS mm of the voxel centres."""
        return self.geometry.bounds()

    def to_sitk(self):
        """A SimpleITK image sharing the geometry (the pixels are copied)."""
        import SimpleITK as sitk

        img = sitk.GetImageFromArray(np.ascontiguousarray(self.array))
        img.SetSpacing([float(v) for v in self.spacing])
        img.SetOrigin([float(v) for v in self.origin])
        img.SetDirection([float(v) for v in self.direction.reshape(-1)])
        return img
