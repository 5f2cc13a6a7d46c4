"""Signed distance fields of structures, sampled by trilinear interpolation (the live path).

A :class:`StructureField` is a signed distance map (mm, negative inside) of one structure on a
small grid: the structure's bounding box plus a margin. It is computed once per structure from
its voxel mask with SimpleITK's ``SignedMaurerDistanceMap`` (Maurer, Qi and Raghavan, "A linear
time algorithm for computing exact Euclidean distance transforms of binary images in arbitrary
dimensions", IEEE TPAMI 25(2), 2003), shifted by half a voxel so that zero lies on the voxel
surface (as in :mod:`surgtwin.segmentation.operations`). Optionally, the narrow band around the
surface is replaced by the exact signed distance to the structure's displayed mesh, so that the
live path and the exact mesh path agree to a few hundredths of a millimetre.

Sampling is vectorised numpy trilinear interpolation; a signed distance function is
1-Lipschitz, so points outside the grid get a conservative lower bound and are flagged.

Building a field of a large structure (the whole bone of an abdominal CT) takes tens of
seconds, most of it in the exact distances of the narrow band: :meth:`StructureField.from_mask`
reports ``progress(done, total)`` and checks ``cancel()`` between stages and between chunks of
exact distances (and inside the distance maps), raising :class:`~surgtwin.errors.LoadCancelled`.
:meth:`StructureField.to_arrays` and :meth:`StructureField.from_arrays` give the field as plain
arrays for the on-disk cache (:mod:`surgtwin.geometry.field_cache`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from surgtwin.errors import LoadCancelled
from surgtwin.geometry.mesh import Mesh
from surgtwin.imaging.volume import ImageGeometry

__all__ = ["StructureField", "mesh_signed_distance"]

ProgressFn = Callable[[int, int], None]
CancelFn = Callable[[], bool]
#: Exact distances evaluated between two progress reports / cancel checks.
CHUNK_POINTS = 1 << 16
#: Progress units of a field build, and the share of each stage (distance maps, exact band,
#: finer slices) measured on an abdominal CT's bone: the exact distances dominate.
PROGRESS_TOTAL = 1000
_STAGES = {"outside": (0, 30), "inside": (30, 60), "band": (60, 400), "slices": (400, 1000)}


class _Steps:
    """Progress and cancel checks of one field build, stage by stage."""

    def __init__(self, progress: ProgressFn | None, cancel: CancelFn | None, name: str):
        self.progress, self.cancel, self.name = progress, cancel, name

    def check(self) -> None:
        if self.cancel is not None and self.cancel():
            raise LoadCancelled(f"building the distance field of {self.name} was cancelled")

    def report(self, stage: str, fraction: float) -> None:
        if self.progress is not None:
            lo, hi = _STAGES[stage]
            self.progress(int(lo + (hi - lo) * min(max(fraction, 0.0), 1.0)), PROGRESS_TOTAL)


def _exact_in_chunks(
    surface: Mesh, points: np.ndarray, implicit, steps: _Steps | None, stage: str
) -> np.ndarray:
    """:func:`mesh_signed_distance` in chunks, reporting progress and checking cancel."""
    implicit = implicit if implicit is not None else _implicit_distance(surface)
    if steps is None:
        return mesh_signed_distance(surface, points, implicit)
    out = np.empty(len(points))
    for start in range(0, len(points), CHUNK_POINTS):
        steps.check()
        stop = start + CHUNK_POINTS
        out[start:stop] = mesh_signed_distance(surface, points[start:stop], implicit)
        steps.report(stage, min(stop, len(points)) / max(len(points), 1))
    return out


def _implicit_distance(mesh: Mesh):
    """A ``vtkImplicitPolyDataDistance`` of the mesh (negative inside, closed meshes)."""
    from vtkmodules.util import numpy_support
    from vtkmodules.vtkCommonCore import vtkPoints
    from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData
    from vtkmodules.vtkFiltersCore import vtkImplicitPolyDataDistance

    poly = vtkPolyData()
    pts = vtkPoints()
    pts.SetData(numpy_support.numpy_to_vtk(np.ascontiguousarray(mesh.points), deep=True))
    poly.SetPoints(pts)
    cells = vtkCellArray()
    offsets = np.arange(0, 3 * len(mesh.faces) + 1, 3, dtype=np.int64)
    cells.SetData(
        numpy_support.numpy_to_vtkIdTypeArray(offsets, deep=True),
        numpy_support.numpy_to_vtkIdTypeArray(mesh.faces.reshape(-1).astype(np.int64), deep=True),
    )
    poly.SetPolys(cells)
    implicit = vtkImplicitPolyDataDistance()
    implicit.SetInput(poly)
    return implicit


def mesh_signed_distance(mesh: Mesh, points: np.ndarray, implicit=None) -> np.ndarray:
    """Exact signed distance (mm, negative inside) from points to a closed mesh.

    Parameters
    ----------
    mesh : Mesh
        A closed, outward-oriented triangle mesh in LPS mm.
    points : numpy.ndarray, shape (n, 3)
        Query points, LPS mm (the mesh's frame).
    implicit : vtkImplicitPolyDataDistance, optional
        A prebuilt distance object for ``mesh`` (its cell locator is the costly part).

    Returns
    -------
    numpy.ndarray, shape (n,)
        Signed distance in mm (VTK's ``vtkImplicitPolyDataDistance``: the sign from the normal
        of the closest cell).
    """
    from vtkmodules.util import numpy_support

    implicit = implicit if implicit is not None else _implicit_distance(mesh)
    pts = np.ascontiguousarray(np.asarray(points, dtype=np.float64).reshape(-1, 3))
    if len(pts) == 0:
        return np.zeros(0)
    arr_in = numpy_support.numpy_to_vtk(pts, deep=True)
    arr_out = numpy_support.numpy_to_vtk(np.zeros(len(pts)), deep=True)
    implicit.FunctionValue(arr_in, arr_out)
    return numpy_support.vtk_to_numpy(arr_out).astype(np.float64)


def _maurer(
    mask: np.ndarray,
    spacing: tuple[float, float, float],
    steps: _Steps | None = None,
    stage: str = "outside",
) -> np.ndarray:
    """ITK signed Maurer distance (mm) of a uint8 mask (k, j, i); positive outside.

    With ``steps``, ITK's progress events are reported and a cancel aborts the filter.
    """
    img = sitk.GetImageFromArray(np.ascontiguousarray(mask, dtype=np.uint8))
    img.SetSpacing(tuple(float(s) for s in spacing))
    f = sitk.SignedMaurerDistanceMapImageFilter()
    f.SetInsideIsPositive(False)
    f.SetSquaredDistance(False)
    f.SetUseImageSpacing(True)
    cancelled = []
    if steps is not None:
        steps.check()

        def on_progress() -> None:
            if steps.cancel is not None and steps.cancel():
                cancelled.append(True)
                f.Abort()
            else:
                steps.report(stage, f.GetProgress())

        f.AddCommand(sitk.sitkProgressEvent, on_progress)
    try:
        dist = f.Execute(img)
    except RuntimeError:
        if cancelled:
            assert steps is not None
            steps.check()  # raises LoadCancelled
        raise
    finally:
        f.RemoveAllCommands()
    return sitk.GetArrayFromImage(dist)


_BLOCK = 8  # in-plane size (points) of the fine band's blocks


def _fine_corners(n: int) -> np.ndarray:
    """Offsets of a cell's 8 corners in a block of n x n points per sub-slice."""
    s1, s2 = n, n * n
    return np.array([0, 1, s1, s1 + 1, s2, s2 + 1, s1 + s2, s1 + s2 + 1])


def _trilinear(values: np.ndarray, flat: np.ndarray, corners: np.ndarray, f: np.ndarray):
    """Trilinear interpolation: the 8 corners from ``flat + corners`` in one gather, then
    three rounds of linear interpolation with the fractions ``f`` (n, 3) along i, j, k."""
    c = values[flat[:, None] + corners]
    fx, fy = f[:, 0:1], f[:, 1:2]
    c = c[:, 0::2] + fx * (c[:, 1::2] - c[:, 0::2])  # along i
    c = c[:, 0::2] + fy * (c[:, 1::2] - c[:, 0::2])  # along j
    return (c[:, 0] + f[:, 2] * (c[:, 1] - c[:, 0])).astype(np.float64)  # along k


@dataclass(eq=False)
class StructureField:
    """A signed distance map (mm, negative inside) of one structure on its own small grid.

    Attributes
    ----------
    values : numpy.ndarray of float32, shape (k, j, i)
        Signed distance to the structure's surface in mm at the grid's voxel centres.
    origin : numpy.ndarray, shape (3,)
        LPS mm of the centre of grid voxel (0, 0, 0).
    spacing : numpy.ndarray, shape (3,)
        Voxel size along i, j, k in mm.
    direction : numpy.ndarray, shape (3, 3)
        Columns: LPS unit vectors of the i, j, k axes.
    margin_mm : float
        Smallest distance (mm) from the structure's surface to the grid's border: points beyond
        the grid are at least this far plus their distance to the grid.
    name : str
        The structure's name.
    """

    values: np.ndarray
    origin: np.ndarray
    spacing: np.ndarray
    direction: np.ndarray
    margin_mm: float
    name: str = "structure"

    def __post_init__(self) -> None:
        self.values = np.ascontiguousarray(self.values, dtype=np.float32)
        self.origin = np.asarray(self.origin, dtype=np.float64).reshape(3)
        self.spacing = np.asarray(self.spacing, dtype=np.float64).reshape(3)
        self.direction = np.asarray(self.direction, dtype=np.float64).reshape(3, 3)
        scaled = self.direction * self.spacing[None, :]
        self._to_index = np.linalg.inv(scaled)  # LPS offset -> (i, j, k)
        self._to_lps = scaled
        k, j, i = self.values.shape
        self._size = np.array([i, j, k], dtype=np.float64)
        self._flat = self.values.reshape(-1)
        self._strides = (1, i, i * j)
        s1, s2 = i, i * j
        self._corners = np.array([0, 1, s1, s1 + 1, s2, s2 + 1, s1 + s2, s1 + s2 + 1])
        # the fine slab band (see refine_slices): none until built
        self.slab_factor = 1
        self._blocks = np.zeros((0, 0, 0), dtype=np.int32)
        self._fine = np.zeros(0, dtype=np.float32)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_mask(
        cls,
        mask: np.ndarray,
        geometry: ImageGeometry,
        margin_mm: float = 10.0,
        *,
        surface: Mesh | None = None,
        band_mm: float | None = None,
        name: str = "structure",
        progress: ProgressFn | None = None,
        cancel: CancelFn | None = None,
    ) -> StructureField:
        """The signed distance map of a voxel mask, cropped to its bounding box plus a margin.

        Parameters
        ----------
        mask : numpy.ndarray of bool, shape (k, j, i)
            The structure on the grid ``geometry``.
        geometry : ImageGeometry
            Spacing (mm), origin (LPS mm) and direction of the mask's grid.
        margin_mm : float
            Margin (mm) kept around the bounding box; beyond it only a lower bound is known.
            The grid extends beyond the image where needed (the structure is absent there).
        surface : Mesh, optional
            The structure's displayed surface (e.g. from ``mask_to_mesh``). When given, grid
            points within ``band_mm`` of the surface take the exact signed distance to it, so
            that the live path agrees with the exact mesh path (:mod:`surgtwin.geometry.exact`);
            for thick slices the band also gets finer slices (:meth:`refine_slices`).
        band_mm : float, optional
            Half width (mm) of that narrow band; default twice the largest spacing.
        name : str
            The structure's name.
        progress : callable, optional
            ``progress(done, total)`` now and then (``total`` = :data:`PROGRESS_TOTAL`).
        cancel : callable, optional
            Returns True to stop: checked between the stages, inside the distance maps and
            between chunks of :data:`CHUNK_POINTS` exact distances.

        Raises
        ------
        ValueError
            If the mask is empty.
        LoadCancelled
            ``cancel()`` returned True.
        """
        steps = _Steps(progress, cancel, name)
        steps.check()
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != tuple(geometry.shape):
            raise ValueError(f"mask shape {mask.shape} is not the grid's {geometry.shape}")
        present = [np.flatnonzero(mask.any(axis=axes)) for axes in ((1, 2), (0, 2), (0, 1))]
        if any(len(p) == 0 for p in present):
            raise ValueError("the mask is empty: no distance field")
        spacing_kji = np.asarray(geometry.spacing, dtype=float)[::-1]
        pad = np.array([math.ceil(margin_mm / s) + 1 for s in spacing_kji])
        lo = np.array([p[0] for p in present]) - pad
        hi = np.array([p[-1] for p in present]) + pad + 1
        crop = np.zeros(tuple(hi - lo), dtype=np.uint8)
        src_lo = np.maximum(lo, 0)
        src_hi = np.minimum(hi, mask.shape)
        dst = tuple(slice(a - o, b - o) for a, b, o in zip(src_lo, src_hi, lo, strict=True))
        crop[dst] = mask[tuple(slice(a, b) for a, b in zip(src_lo, src_hi, strict=True))]
        # Outside: distance to the nearest structure voxel centre (ITK measures to the
        # object's contour voxels, which are those). Inside: ITK's negative values measure to
        # the inner contour, not to the background, so the inside comes from the map of the
        # complement (distance to the nearest background voxel centre).
        outside = _maurer(crop, geometry.spacing, steps, "outside")
        inside = _maurer(1 - crop, geometry.spacing, steps, "inside")
        half = np.float32(0.5 * min(geometry.spacing))
        # zero on the voxel surface, half a voxel from the boundary voxels' centres
        values = np.where(crop.astype(bool), half - inside, outside - half).astype(np.float32)
        del outside, inside
        origin = geometry.index_to_lps(lo[::-1].astype(float)[None, :])[0]
        margin = float(np.min((pad - 0.5) * spacing_kji))
        field = cls(values, origin, geometry.spacing, geometry.direction, margin, name)
        if surface is not None:
            field._refine_with_surface(surface, band_mm, steps)
            field._refine_slices(surface, None, None, None, steps, field._implicit)
        steps.report("slices", 1.0)
        return field

    # ------------------------------------------------------------------ as arrays
    def to_arrays(self) -> dict[str, np.ndarray]:
        """The field as plain arrays (no objects), for :meth:`from_arrays` and ``np.savez``."""
        return {
            "values": self.values,
            "origin": self.origin,
            "spacing": self.spacing,
            "direction": self.direction,
            "margin_mm": np.array(self.margin_mm, dtype=np.float64),
            "name": np.array(self.name),
            "slab_factor": np.array(self.slab_factor, dtype=np.int64),
            "blocks": self._blocks,
            "fine": self._fine,
        }

    @classmethod
    def from_arrays(
        cls, arrays: Mapping[str, np.ndarray], surface: Mesh | None = None
    ) -> StructureField:
        """A field from :meth:`to_arrays`; ``surface`` (the mesh it was refined with) restores
        the exact point queries (:meth:`exact_at`).

        Raises
        ------
        ValueError
            The arrays do not describe a field (missing, wrong type or shape).
        """
        try:
            values = np.asarray(arrays["values"])
            blocks = np.asarray(arrays["blocks"])
            fine = np.asarray(arrays["fine"])
            r = int(arrays["slab_factor"])
            field = cls(
                values,
                arrays["origin"],
                arrays["spacing"],
                arrays["direction"],
                float(arrays["margin_mm"]),
                str(arrays["name"]),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a distance field: {exc}") from None
        if values.dtype != np.float32 or values.ndim != 3 or min(values.shape) < 2:
            raise ValueError("not a distance field: bad values")
        if r > 1:
            nk, nj, ni = values.shape
            b = _BLOCK
            want_blocks = (nk - 1, -(-nj // b), -(-ni // b))
            n = int(blocks.max()) + 1 if blocks.size else 0
            if (
                blocks.dtype != np.int32
                or blocks.shape != want_blocks
                or fine.dtype != np.float32
                or fine.size != n * (r + 1) * (b + 1) ** 2
            ):
                raise ValueError("not a distance field: bad fine band")
            field.slab_factor = r
            field._blocks = np.ascontiguousarray(blocks)
            field._fine = np.ascontiguousarray(fine)
        if surface is not None:
            field.attach_surface(surface)
        return field

    def attach_surface(self, surface: Mesh) -> None:
        """Use ``surface`` (closed, LPS mm) for the exact point queries (:meth:`exact_at`,
        :meth:`exact_closest_point`); the values are not changed."""
        self._implicit = _implicit_distance(surface)

    # ------------------------------------------------------------------ refinement
    def refine_with_surface(
        self,
        surface: Mesh,
        band_mm: float | None = None,
        *,
        progress: ProgressFn | None = None,
        cancel: CancelFn | None = None,
    ) -> int:
        """Replace the narrow band by the exact signed distance to ``surface``.

        Parameters
        ----------
        surface : Mesh
            The structure's closed surface, LPS mm.
        band_mm : float, optional
            Grid points with ``|d| < band_mm`` are recomputed (default 2 x largest spacing,
            at least 4 mm).

        progress, cancel : callable, optional
            As in :meth:`from_mask`.

        Returns
        -------
        int
            Number of grid points recomputed.
        """
        return self._refine_with_surface(surface, band_mm, _Steps(progress, cancel, self.name))

    def _refine_with_surface(
        self, surface: Mesh, band_mm: float | None, steps: _Steps | None
    ) -> int:
        # at least 4 mm: clearances are judged against margins of about 2 mm, so the field is
        # exact (not interpolated from voxel distances) wherever a margin is decided
        band = max(2.0 * float(self.spacing.max()), 4.0) if band_mm is None else float(band_mm)
        # kept for exact point queries (see exact_at): the cell locator is built once
        self._implicit = _implicit_distance(surface)
        flat_idx = np.flatnonzero(np.abs(self._flat) < band)
        if len(flat_idx) == 0:
            return 0
        k, rem = np.divmod(flat_idx, self._strides[2])
        j, i = np.divmod(rem, self._strides[1])
        pts = np.stack([i, j, k], axis=1).astype(float) @ self._to_lps.T + self.origin
        exact = _exact_in_chunks(surface, pts, self._implicit, steps, "band")
        self._flat[flat_idx] = exact.astype(np.float32)
        return len(flat_idx)

    def exact_closest_point(self, point_lps: np.ndarray) -> np.ndarray | None:
        """The exact closest point (LPS mm) on the structure's surface, or ``None`` without a
        surface mesh."""
        implicit = getattr(self, "_implicit", None)
        if implicit is None:
            return None
        closest = [0.0, 0.0, 0.0]
        implicit.EvaluateFunctionAndGetClosestPoint(
            [float(v) for v in np.asarray(point_lps).reshape(3)], closest
        )
        return np.asarray(closest, dtype=np.float64)

    def exact_at(self, points_lps: np.ndarray) -> np.ndarray | None:
        """Exact signed distances (mm) to the structure's surface at a few points, or ``None``
        when the field was built without a surface mesh."""
        implicit = getattr(self, "_implicit", None)
        if implicit is None:
            return None
        pts = np.asarray(points_lps, dtype=np.float64).reshape(-1, 3)
        # a handful of points: direct calls cost less than building VTK arrays
        return np.array([implicit.EvaluateFunction(*p) for p in pts.tolist()], dtype=np.float64)

    def refine_slices(
        self,
        surface: Mesh,
        band_mm: float | None = None,
        spacing_mm: float | None = None,
        inside_band_mm: float | None = None,
        *,
        progress: ProgressFn | None = None,
        cancel: CancelFn | None = None,
    ) -> int:
        """Give the narrow band finer slices, filled with the exact distance to ``surface``.

        Trilinear interpolation across thick slices (e.g. 3 mm against 1 mm in plane) is off by
        a few tenths of a millimetre near the surface, where the distance bends. This splits
        every slab between two slices that meets the band into ``r`` sub-slices, so that the
        band's grid is about isotropic, and evaluates the exact signed distance to the mesh at
        the new points within the band (the slice points are those of
        :meth:`refine_with_surface`). Stored sparsely: 8 x 8 columns of the in-plane grid by one
        slab each, with a one-point apron, so a query needs no neighbour look-up.

        Parameters
        ----------
        surface : Mesh
            The structure's closed surface, LPS mm.
        band_mm : float, optional
            Outside half width of the band, mm (default 2 x largest spacing): new points with
            ``0 <= d < band_mm`` get the exact distance, others the linear one along k.
        spacing_mm : float, optional
            Target slice spacing in the band, mm (default the smallest spacing in plane).
        inside_band_mm : float, optional
            Inside half width, mm (default half of ``band_mm``): penetration depths deeper than
            that are read from the linear values (they matter less than the clearance).
        progress, cancel : callable, optional
            As in :meth:`from_mask`.

        Returns
        -------
        int
            Number of exact distances evaluated (0 if the slices are not thicker than
            ``1.5 * spacing_mm``).
        """
        steps = _Steps(progress, cancel, self.name)
        return self._refine_slices(surface, band_mm, spacing_mm, inside_band_mm, steps, None)

    def _refine_slices(
        self,
        surface: Mesh,
        band_mm: float | None,
        spacing_mm: float | None,
        inside_band_mm: float | None,
        steps: _Steps | None,
        implicit,
    ) -> int:
        band = 2.0 * float(self.spacing.max()) if band_mm is None else float(band_mm)
        inner = 0.5 * band if inside_band_mm is None else float(inside_band_mm)
        h = float(self.spacing[:2].min()) if spacing_mm is None else float(spacing_mm)
        nk, nj, ni = self.values.shape
        r = math.ceil(self.spacing[2] / h - 1e-6)
        if self.spacing[2] < 1.5 * h or nk < 2:
            return 0
        b = _BLOCK
        # slabs (between slices k, k+1) near the surface, dilated by one point in plane
        near = (self.values > -inner - self.spacing[2]) & (self.values < band + self.spacing[2])
        near = near[:-1] | near[1:]
        pad = np.zeros((nk - 1, -(-nj // b) * b + 1, -(-ni // b) * b + 1), dtype=bool)
        pad[:, :nj, :ni] = near
        pad[:, :-1] |= pad[:, 1:].copy()
        pad[:, :, :-1] |= pad[:, :, 1:].copy()
        nbj, nbi = (pad.shape[1] - 1) // b, (pad.shape[2] - 1) // b
        pad = pad[:, : nbj * b, : nbi * b].reshape(nk - 1, nbj, b, nbi, b).any(axis=(2, 4))
        bk, bj, bi = np.nonzero(pad)
        table = np.full(pad.shape, -1, dtype=np.int32)
        table[bk, bj, bi] = np.arange(len(bk), dtype=np.int32)
        # the blocks' points: (block, m, a, c) -> slice k + m / r, row j, column i
        a = np.arange(b + 1)
        jj = np.minimum(bj[:, None] * b + a, nj - 1)  # (n, b+1)
        ii = np.minimum(bi[:, None] * b + a, ni - 1)
        plane = jj[:, :, None] * ni + ii[:, None, :]  # (n, b+1, b+1)
        lo = self._flat[bk[:, None, None] * nj * ni + plane]
        hi = self._flat[(bk[:, None, None] + 1) * nj * ni + plane]
        t = (np.arange(r + 1, dtype=np.float32) / r)[None, :, None, None]
        fine = ((1 - t) * lo[:, None] + t * hi[:, None]).astype(np.float32)  # (n, r+1, b+1, b+1)
        # exact distances at the new (inner) sub-slice points in the band, each point once
        key = (bk[:, None, None, None] * r + np.arange(r)[None, :, None, None]) * (nj * ni)
        key = key + plane[:, None]  # (n, r, b+1, b+1): fine slice index * nj * ni + plane
        vals = fine[:, :r]
        sel = (vals > -inner) & (vals < band)
        sel[:, 0] = False  # sub-slice 0 is the slice itself (already exact in the band)
        uniq, inv = np.unique(key[sel], return_inverse=True)
        kf, rem = np.divmod(uniq, nj * ni)
        jf, i_f = np.divmod(rem, ni)
        ijk = np.stack([i_f, jf, kf / r], axis=1).astype(float)
        implicit = getattr(self, "_implicit", None)
        exact = _exact_in_chunks(
            surface, ijk @ self._to_lps.T + self.origin, implicit, steps, "slices"
        )
        vals[sel] = exact.astype(np.float32)[inv]
        fine[:, :r] = vals
        self.slab_factor = r
        self._blocks = table
        self._fine = np.ascontiguousarray(fine.reshape(-1))
        return len(uniq)

    # ------------------------------------------------------------------ queries
    @property
    def nbytes(self) -> int:
        """Memory of the distance values (coarse grid and fine band), bytes."""
        return int(self.values.nbytes + self._fine.nbytes + self._blocks.nbytes)

    def sample(self, points_lps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Signed distance (mm) at LPS points, trilinearly interpolated.

        Parameters
        ----------
        points_lps : numpy.ndarray, shape (n, 3)
            Points in LPS mm.

        Returns
        -------
        distance : numpy.ndarray of float64, shape (n,)
            Signed distance in mm, negative inside. For points beyond the grid: a lower bound,
            the larger of ``margin_mm + distance to the grid`` and the value at the nearest grid
            point minus the distance to it (the field is 1-Lipschitz).
        outside : numpy.ndarray of bool, shape (n,)
            True where the point is beyond the grid (the distance is a lower bound).
        """
        p = np.asarray(points_lps, dtype=np.float64).reshape(-1, 3)
        idx = (p - self.origin) @ self._to_index.T
        top = self._size - 1.0
        clamped = np.clip(idx, 0.0, top)
        base = np.minimum(clamped.astype(np.int64), (top - 1).astype(np.int64))
        f = (clamped - base).astype(np.float32)
        s1, s2 = self._strides[1], self._strides[2]
        outside = np.any(idx != clamped, axis=1)
        d = np.empty(len(p))
        fine = np.zeros(len(p), dtype=bool)
        if self.slab_factor > 1:
            b, r = _BLOCK, self.slab_factor
            blk = self._blocks[base[:, 2], base[:, 1] // b, base[:, 0] // b]
            fine = blk >= 0
            if fine.any():
                bf, ff = base[fine], f[fine]
                fz = ff[:, 2] * np.float32(r)
                m = np.minimum(fz.astype(np.int64), r - 1)
                n = b + 1
                flat = ((blk[fine] * (r + 1) + m) * n + bf[:, 1] % b) * n + bf[:, 0] % b
                ff[:, 2] = fz - m
                d[fine] = _trilinear(self._fine, flat, _fine_corners(n), ff)
        coarse = ~fine
        if coarse.any():
            bc = base[coarse]
            flat = bc[:, 0] + bc[:, 1] * s1 + bc[:, 2] * s2
            d[coarse] = _trilinear(self._flat, flat, self._corners, f[coarse])
        if outside.any():
            gap = np.linalg.norm((idx[outside] - clamped[outside]) * self.spacing, axis=1)
            d[outside] = np.maximum(self.margin_mm + gap, d[outside] - gap)
        return d, outside

    def gradient(self, points_lps: np.ndarray, step_mm: float | None = None) -> np.ndarray:
        """Gradient of the signed distance at LPS points (central differences, unitless).

        Parameters
        ----------
        points_lps : numpy.ndarray, shape (n, 3)
            Points in LPS mm.
        step_mm : float, optional
            Difference step in mm (default half the smallest spacing).

        Returns
        -------
        numpy.ndarray, shape (n, 3)
            d(distance)/d(LPS), about unit length away from the medial axis.
        """
        p = np.asarray(points_lps, dtype=np.float64).reshape(-1, 3)
        h = 0.5 * float(self.spacing.min()) if step_mm is None else float(step_mm)
        offsets = np.concatenate([np.eye(3) * h, -np.eye(3) * h])
        q = (p[:, None, :] + offsets[None, :, :]).reshape(-1, 3)
        d = self.sample(q)[0].reshape(-1, 6)
        return (d[:, :3] - d[:, 3:]) / (2.0 * h)

    def closest_points(self, points_lps: np.ndarray, iterations: int = 2) -> np.ndarray:
        """Closest points (LPS mm) on the structure's surface: ``p - d * grad / |grad|``,
        repeated ``iterations`` times (a Newton projection onto the zero set).

        Parameters
        ----------
        points_lps : numpy.ndarray, shape (n, 3)
            Points in LPS mm.
        iterations : int
            Projection steps (the first is exact for an exact distance field).

        Returns
        -------
        numpy.ndarray, shape (n, 3)
            Estimated closest surface points, LPS mm (exact to a fraction of a voxel).
        """
        q = np.asarray(points_lps, dtype=np.float64).reshape(-1, 3).copy()
        for _ in range(max(1, iterations)):
            d = self.sample(q)[0]
            g = self.gradient(q)
            norm = np.linalg.norm(g, axis=1, keepdims=True)
            unit = np.divide(g, norm, out=np.zeros_like(g), where=norm > 1e-9)
            q -= d[:, None] * unit
        return q
