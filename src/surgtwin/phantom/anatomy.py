"""Lumbar spine L3-L5 anatomy: shapes to a Hounsfield volume plus its geometric ground truth.

Coordinates are patient LPS millimetres: +x = patient left, +y = posterior, +z = superior.
The spinal canal is a straight vertical tube centred on x = 0, y = 0; the L4 vertebral body is
centred on z = 0, so the L4 canal centre is the LPS origin (and falls on a voxel centre).

Each structure is a signed-distance shape (:mod:`surgtwin.phantom.shapes`). Tissues are painted
in order (later ones on top) with a linear partial-volume ramp ``RAMP_MM`` wide across each
surface; then Gaussian noise with a fixed seed is added and the result is rounded to int16 HU.
A vertebra is the union of its parts (body, pedicles, laminae, spinous and transverse
processes, articular processes) minus the spinal canal: its cortical shell is the band between
that surface and the union of the parts shrunk by their cortical thickness.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from surgtwin.phantom.shapes import (
    ArrayLike,
    Box,
    EllipticCylinder,
    Frame,
    Shape,
    Sphere,
    Vec3,
    VerticalTube,
    unit,
)

#: Nominal tissue values (HU) before partial-volume blending and noise.
TISSUE_HU: dict[str, float] = {
    "air": -1000.0,
    "fat": -100.0,
    "skin": 40.0,
    "muscle": 55.0,
    "ligament": 65.0,
    "csf": 12.0,
    "disc": 90.0,
    "cancellous_bone": 250.0,
    "cortical_bone": 1300.0,
    "marker": 2800.0,
    "lesion": 40.0,
}

#: Standard deviation (HU) of the additive Gaussian noise.
NOISE_SIGMA_HU = 15.0
#: Seed of the legacy ``numpy.random.RandomState`` stream (frozen across numpy versions).
NOISE_SEED = 20240607
#: Width (mm) of the linear partial-volume ramp across every tissue boundary.
RAMP_MM = 0.8
#: Representable HU range of the series (12 stored bits with rescale intercept -1024).
HU_MIN, HU_MAX = -1024, 3071

#: Cortical thickness (mm) of the vertebral bodies (walls and endplates).
BODY_CORTEX_MM = 2.0
#: Cortical thickness (mm) of the posterior elements and of the canal lining.
ARCH_CORTEX_MM = 1.5
#: Skin thickness (mm).
SKIN_MM = 2.5
#: Screw target: fraction of the body chord along the pedicle axis, from the posterior wall.
TARGET_DEPTH_FRACTION = 0.8

SIDES: dict[str, float] = {"left": 1.0, "right": -1.0}
#: y (mm) of the transverse processes' mid-plane (slightly posterior to the canal centre).
TP_Y = 4.0


@dataclass(frozen=True)
class Grid:
    """Voxel grid of the phantom: axial slices, identity orientation, LPS mm.

    Attributes
    ----------
    size : tuple of int
        ``(columns, rows, slices)`` = number of voxels along x, y, z.
    spacing : tuple of float
        Voxel spacing (mm) along x, y, z.
    origin : tuple of float
        LPS position (mm) of the centre of voxel ``(0, 0, 0)``.
    """

    size: tuple[int, int, int]
    spacing: Vec3
    origin: Vec3

    @property
    def shape(self) -> tuple[int, int, int]:
        """Numpy array shape ``(slices, rows, columns)`` = (z, y, x)."""
        return (self.size[2], self.size[1], self.size[0])

    def axis(self, dim: int) -> np.ndarray:
        """Voxel-centre coordinates (mm) along x (``dim=0``), y (1) or z (2)."""
        return self.origin[dim] + np.arange(self.size[dim], dtype=np.float64) * self.spacing[dim]

    def index_to_lps(self, ijk: ArrayLike) -> np.ndarray:
        """LPS position (mm) of voxel index ``(i, j, k)`` = (column, row, slice)."""
        return np.asarray(self.origin) + np.asarray(ijk, dtype=np.float64) * np.asarray(
            self.spacing
        )

    def lps_to_index(self, point: ArrayLike) -> np.ndarray:
        """Continuous voxel index ``(i, j, k)`` of an LPS point (mm)."""
        return (np.asarray(point, dtype=np.float64) - np.asarray(self.origin)) / np.asarray(
            self.spacing
        )

    def extent(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper LPS bounds (mm) of the imaged box (voxel edges)."""
        o = np.asarray(self.origin)
        s = np.asarray(self.spacing)
        n = np.asarray(self.size)
        return o - s / 2, o + (n - 0.5) * s


#: 0.8 mm x 0.8 mm x 1 mm, 160 x 176 x 120 voxels; voxel (80, 70, 60) is the LPS origin.
GRID = Grid(size=(160, 176, 120), spacing=(0.8, 0.8, 1.0), origin=(-64.0, -56.0, -60.0))


@dataclass(frozen=True)
class LevelSpec:
    """Dimensions (mm, degrees) of one lumbar vertebra.

    Attributes
    ----------
    name : str
        Level name, e.g. ``"L4"``.
    z_centre : float
        Height (mm) of the vertebral body's mid-plane.
    body_height : float
        Body height (mm) between the endplates.
    body_radii : tuple of float
        Body semi-axes (mm) along x (half width) and y (half depth).
    canal_radii : tuple of float
        Spinal canal semi-axes (mm) along x and y at ``z_centre``.
    pedicle_width, pedicle_height : float
        Outer pedicle diameters (mm): transverse (perpendicular to the axis, in the axial
        plane) and craniocaudal.
    medial_angle_deg : float
        Angle (degrees) between the pedicle axis and the sagittal plane; the axis runs from
        posterolateral to anteromedial.
    tp_tip_x : float
        Lateral reach (mm from the midline) of the transverse processes.
    tp_half_thickness, tp_half_height : float
        Half sizes (mm) of the transverse processes along y and z.
    spinous_tip_y : float
        Posterior reach (mm, y) of the spinous process.
    spinous_half_width : float
        Half width (mm, x) of the spinous process.
    """

    name: str
    z_centre: float
    body_height: float
    body_radii: tuple[float, float]
    canal_radii: tuple[float, float]
    pedicle_width: float
    pedicle_height: float
    medial_angle_deg: float
    tp_tip_x: float
    tp_half_thickness: float
    tp_half_height: float
    spinous_tip_y: float
    spinous_half_width: float

    @property
    def z_top(self) -> float:
        """Height (mm) of the superior endplate."""
        return self.z_centre + self.body_height / 2

    @property
    def z_bottom(self) -> float:
        """Height (mm) of the inferior endplate."""
        return self.z_centre - self.body_height / 2

    @property
    def pedicle_z(self) -> float:
        """Height (mm) of the pedicle axis (pedicles arise from the upper body)."""
        return self.z_centre + PEDICLE_Z_OFFSET_MM

    @property
    def body_centre_y(self) -> float:
        """y (mm) of the body centre: its posterior wall reaches 1.5 mm into the canal."""
        return -self.canal_radii[1] + BODY_CANAL_OVERLAP_MM - self.body_radii[1]


#: Pedicle axis height above the body mid-plane (mm).
PEDICLE_Z_OFFSET_MM = 2.0
#: How far the elliptic body would reach into the canal ellipse (mm); carved away.
BODY_CANAL_OVERLAP_MM = 1.5
#: Clearance (mm) between the canal side and the pedicle's medial wall at y = 0.
PEDICLE_CANAL_GAP_MM = 1.0
#: y (mm) of the posterior end of the pedicle axis (the screw entry point).
PEDICLE_POSTERIOR_Y = 10.0
#: Gap (mm) of the facet joints between inferior and superior articular processes.
FACET_GAP_MM = 1.0

#: L3 (top) to L5; z_centre values are integers so level centres fall on slice centres.
LEVELS: tuple[LevelSpec, ...] = (
    LevelSpec(
        name="L3",
        z_centre=36.0,
        body_height=25.0,
        body_radii=(22.0, 16.0),
        canal_radii=(10.5, 8.0),
        pedicle_width=9.0,
        pedicle_height=15.0,
        medial_angle_deg=12.0,
        tp_tip_x=44.0,
        tp_half_thickness=3.0,
        tp_half_height=6.0,
        spinous_tip_y=42.0,
        spinous_half_width=3.5,
    ),
    LevelSpec(
        name="L4",
        z_centre=0.0,
        body_height=26.0,
        body_radii=(23.0, 16.5),
        canal_radii=(11.0, 8.0),
        pedicle_width=11.0,
        pedicle_height=15.0,
        medial_angle_deg=15.0,
        tp_tip_x=41.0,
        tp_half_thickness=3.5,
        tp_half_height=6.5,
        spinous_tip_y=41.0,
        spinous_half_width=3.5,
    ),
    LevelSpec(
        name="L5",
        z_centre=-38.0,
        body_height=27.0,
        body_radii=(24.0, 17.0),
        canal_radii=(11.5, 8.5),
        pedicle_width=13.0,
        pedicle_height=14.0,
        medial_angle_deg=19.0,
        tp_tip_x=40.0,
        tp_half_thickness=4.5,
        tp_half_height=7.5,
        spinous_tip_y=36.0,
        spinous_half_width=4.0,
    ),
)

#: Discs above, between and below the vertebrae: (name, upper level or None, lower or None).
DISCS: tuple[tuple[str, str | None, str | None], ...] = (
    ("L2-L3", None, "L3"),
    ("L3-L4", "L3", "L4"),
    ("L4-L5", "L4", "L5"),
    ("L5-S1", "L5", None),
)
#: Radial bulge (mm) of the discs beyond the mean of the adjacent bodies.
DISC_BULGE_MM = 0.5

#: Body outline (skin surface): elliptic cylinder centred anterior to the spine.
OUTLINE_CENTRE: tuple[float, float] = (0.0, -40.0)
OUTLINE_RADII: tuple[float, float] = (150.0, 105.0)
#: Deep fascia: subcutaneous fat lies between it and the skin, muscles inside it.
FASCIA_RADII: tuple[float, float] = (135.0, 90.0)

#: Left-right marker: dense bead in the subcutaneous fat, patient LEFT (+x) only.
MARKER_CENTRE: Vec3 = (40.0, 52.5, 0.0)
MARKER_RADIUS_MM = 3.0

#: Lytic lesion (~40 HU soft tissue replacing bone) in the L4 vertebral body: a sphere in the
#: anterior, caudal part of the body, wholly inside the cancellous bone (1 mm of cancellous bone
#: left towards the anterior cortex and the inferior endplate), 2.3 mm from the body centre (which
#: stays cancellous) and 1.5 mm from the surface of 6.5 mm screws along the ideal L4 trajectories.
#: Anterior and away from the canal, it can be resected en bloc with a 5 mm margin (a box cut).
LESION_LEVEL = "L4"
LESION_CENTRE: Vec3 = (0.0, -30.5, -4.0)
LESION_RADIUS_MM = 6.0


@dataclass(frozen=True)
class Part:
    """A named solid of a vertebra with its cortical thickness (mm)."""

    name: str
    shape: Shape
    cortex_mm: float


@dataclass(frozen=True)
class Vertebra:
    """One vertebra: its specification, parts and the canal it surrounds."""

    spec: LevelSpec
    parts: tuple[Part, ...]
    canal: VerticalTube

    @property
    def body(self) -> EllipticCylinder:
        """The vertebral body cylinder."""
        shape = self.parts[0].shape
        assert isinstance(shape, EllipticCylinder)
        return shape

    def outer_sdf(self, x: ArrayLike, y: ArrayLike, z: ArrayLike) -> np.ndarray:
        """Signed distance (mm) to the outer bone surface (cortex included)."""
        d = _union(p.shape.sdf(x, y, z) for p in self.parts)
        return np.maximum(d, -self.canal.sdf(x, y, z))

    def inner_sdf(self, x: ArrayLike, y: ArrayLike, z: ArrayLike) -> np.ndarray:
        """Signed distance (mm) to the cancellous core (inside of the cortical shell)."""
        d = _union(p.shape.sdf(x, y, z) + p.cortex_mm for p in self.parts)
        return np.maximum(d, ARCH_CORTEX_MM - self.canal.sdf(x, y, z))

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned box (mm) containing every part."""
        boxes = [p.shape.bounds() for p in self.parts]
        return np.min([b[0] for b in boxes], axis=0), np.max([b[1] for b in boxes], axis=0)

    def pedicle_axis(self, side: str) -> tuple[np.ndarray, np.ndarray]:
        """Pedicle axis of ``side``: a point at y = 0 (mm) and the unit anteromedial direction."""
        return pedicle_axis(self.spec, side)


def pedicle_axis(spec: LevelSpec, side: str) -> tuple[np.ndarray, np.ndarray]:
    """Pedicle axis of one side of a vertebra.

    Parameters
    ----------
    spec : LevelSpec
        The vertebra.
    side : {"left", "right"}
        Patient side.

    Returns
    -------
    point : numpy.ndarray
        Axis point (LPS mm) at y = 0, at the pedicle height; the pedicle's medial wall clears
        the canal side there by ``PEDICLE_CANAL_GAP_MM``.
    direction : numpy.ndarray
        Unit vector from posterolateral to anteromedial, ``medial_angle_deg`` from the
        sagittal plane, in the axial plane.
    """
    s = SIDES[side]
    theta = math.radians(spec.medial_angle_deg)
    x_p = spec.canal_radii[0] + spec.pedicle_width / 2 + PEDICLE_CANAL_GAP_MM
    point = np.array([s * x_p, 0.0, spec.pedicle_z])
    direction = np.array([-s * math.sin(theta), -math.cos(theta), 0.0])
    return point, direction


def _union(distances: Iterator[np.ndarray]) -> np.ndarray:
    """Pointwise minimum of signed distances (CSG union)."""
    out: np.ndarray | None = None
    for d in distances:
        out = d if out is None else np.minimum(out, d)
    assert out is not None
    return out


def build_canal() -> VerticalTube:
    """The spinal canal: radii interpolated linearly between the level mid-planes."""
    ordered = sorted(LEVELS, key=lambda s: s.z_centre)
    return VerticalTube(
        (0.0, 0.0),
        tuple(s.z_centre for s in ordered),
        tuple(s.canal_radii[0] for s in ordered),
        tuple(s.canal_radii[1] for s in ordered),
    )


def _facet_x(upper: LevelSpec | None, lower: LevelSpec | None) -> float:
    """Distance (mm) of a facet joint from the midline (mean canal half-width + 6 mm)."""
    rx = [s.canal_radii[0] for s in (upper, lower) if s is not None]
    return sum(rx) / len(rx) + 6.0


def build_vertebra(spec: LevelSpec, upper: LevelSpec | None, lower: LevelSpec | None) -> Vertebra:
    """Assemble one vertebra from its specification.

    Parameters
    ----------
    spec : LevelSpec
        The vertebra to build.
    upper, lower : LevelSpec or None
        Neighbouring vertebrae (for the facet joint positions), if any.

    Returns
    -------
    Vertebra
        The vertebra; its first part is the body.
    """
    canal = build_canal()
    cx, cy = spec.canal_radii
    body = EllipticCylinder(
        Frame.vertical((0.0, spec.body_centre_y, spec.z_centre)),
        spec.body_radii,
        spec.body_height / 2,
    )
    parts = [Part("body", body, BODY_CORTEX_MM)]
    theta = math.radians(spec.medial_angle_deg)
    zp = spec.pedicle_z
    facet_above = _facet_x(upper, spec)
    facet_below = _facet_x(spec, lower)
    for side, s in SIDES.items():
        point, d = pedicle_axis(spec, side)
        # from the posterior end (y = PEDICLE_POSTERIOR_Y) to the depth of the body centre
        u_post = PEDICLE_POSTERIOR_Y / math.cos(theta)
        u_ant = -spec.body_centre_y / math.cos(theta)
        centre = point + (u_ant - u_post) / 2 * d
        pedicle = EllipticCylinder(
            Frame.in_plane(tuple(centre), tuple(d)),
            (spec.pedicle_width / 2, spec.pedicle_height / 2),
            (u_ant + u_post) / 2,
        )
        parts.append(Part(f"pedicle_{side}", pedicle, ARCH_CORTEX_MM))

        # lamina: oblique plate from the pedicle's posterior end to the midline
        a = (s * (cx + 4.0), 7.0)
        b = (0.0, cy + 4.5)
        ab = unit((b[0] - a[0], b[1] - a[1], 0.0))
        half = math.dist(a, b) / 2 + 0.5
        z_lo, z_hi = spec.z_bottom - 5.0, spec.z_top - 4.0
        lam_centre = (a[0] + half * ab[0], a[1] + half * ab[1], (z_lo + z_hi) / 2)
        lamina = Box(Frame.in_plane(lam_centre, ab), (half, 2.75, (z_hi - z_lo) / 2))
        parts.append(Part(f"lamina_{side}", lamina, ARCH_CORTEX_MM))

        # transverse process: lateral bar at pedicle height, slightly posterior
        x0 = point[0]
        x1 = s * spec.tp_tip_x
        tp = Box(
            Frame.vertical(((x0 + x1) / 2, TP_Y, zp)),
            (spec.tp_half_height, abs(x1 - x0) / 2, spec.tp_half_thickness),
        )
        parts.append(Part(f"transverse_process_{side}", tp, ARCH_CORTEX_MM))

        # superior articular process: rises from the pedicle-lamina junction into the joint
        # with the vertebra above, lateral to that vertebra's inferior articular process
        z_lo, z_hi = zp + 1.5, spec.z_top + 8.0
        sap = EllipticCylinder(
            Frame.vertical((s * (facet_above + FACET_GAP_MM / 2 + 3.0), 13.0, (z_lo + z_hi) / 2)),
            (3.0, 6.0),
            (z_hi - z_lo) / 2,
        )
        parts.append(Part(f"superior_articular_{side}", sap, ARCH_CORTEX_MM))

        # inferior articular process: hangs from the lamina into the joint below
        z_lo, z_hi = spec.z_bottom - 8.0, zp - 3.0
        iap = EllipticCylinder(
            Frame.vertical((s * (facet_below - FACET_GAP_MM / 2 - 3.0), 14.0, (z_lo + z_hi) / 2)),
            (3.0, 6.0),
            (z_hi - z_lo) / 2,
        )
        parts.append(Part(f"inferior_articular_{side}", iap, ARCH_CORTEX_MM))

    # spinous process: midline plate from the laminar junction, tilted 12 degrees caudally
    phi = math.radians(12.0)
    y0 = cy + 3.0
    half_len = (spec.spinous_tip_y - y0) / (2 * math.cos(phi))
    u = (0.0, math.cos(phi), -math.sin(phi))
    w = (0.0, math.sin(phi), math.cos(phi))
    base = (0.0, y0, spec.z_centre - 4.0)
    centre = (0.0, base[1] + half_len * u[1], base[2] + half_len * u[2])
    spinous = Box(Frame(centre, u, (1.0, 0.0, 0.0), w), (half_len, spec.spinous_half_width, 8.5))
    parts.append(Part("spinous_process", spinous, ARCH_CORTEX_MM))
    return Vertebra(spec, tuple(parts), canal)


def build_vertebrae() -> tuple[Vertebra, ...]:
    """All vertebrae, L3 to L5."""
    out = []
    for i, spec in enumerate(LEVELS):
        upper = LEVELS[i - 1] if i > 0 else None
        lower = LEVELS[i + 1] if i + 1 < len(LEVELS) else None
        out.append(build_vertebra(spec, upper, lower))
    return tuple(out)


def _level(name: str | None) -> LevelSpec | None:
    return next((s for s in LEVELS if s.name == name), None)


def disc_geometry(name: str, grid: Grid = GRID) -> dict[str, list[float]]:
    """Centre, radii and z range (mm) of a disc, its z range clipped to the field of view."""
    _, up_name, low_name = next(d for d in DISCS if d[0] == name)
    upper, lower = _level(up_name), _level(low_name)
    adjacent = [s for s in (upper, lower) if s is not None]
    rx = sum(s.body_radii[0] for s in adjacent) / len(adjacent) + DISC_BULGE_MM
    ry = sum(s.body_radii[1] for s in adjacent) / len(adjacent) + DISC_BULGE_MM
    cy = sum(s.body_centre_y for s in adjacent) / len(adjacent)
    lo, hi = grid.extent()
    z_lo = lower.z_top if lower is not None else float(lo[2])
    z_hi = upper.z_bottom if upper is not None else float(hi[2])
    return {"centre": [0.0, cy, (z_lo + z_hi) / 2], "radii_mm": [rx, ry], "z_range": [z_lo, z_hi]}


def _vertical(centre: tuple[float, float], radii: tuple[float, float]) -> EllipticCylinder:
    """Infinite vertical elliptic cylinder."""
    return EllipticCylinder(Frame.vertical((centre[0], centre[1], 0.0)), radii)


def soft_tissue_shapes() -> dict[str, Shape]:
    """Body outline, skin, fascia and muscle shapes keyed by name."""
    inner = (OUTLINE_RADII[0] - SKIN_MM, OUTLINE_RADII[1] - SKIN_MM)
    shapes: dict[str, Shape] = {
        "outline": _vertical(OUTLINE_CENTRE, OUTLINE_RADII),
        "subcutis": _vertical(OUTLINE_CENTRE, inner),
        "fascia": _vertical(OUTLINE_CENTRE, FASCIA_RADII),
    }
    for side, s in SIDES.items():
        shapes[f"erector_spinae_{side}"] = _vertical((s * 22.0, 30.0), (25.0, 23.0))
        shapes[f"psoas_{side}"] = _vertical((s * 33.0, -22.0), (11.0, 14.0))
        shapes[f"quadratus_lumborum_{side}"] = _vertical((s * 55.0, 5.0), (10.0, 8.0))
    return shapes


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


class _Canvas:
    """Float HU volume on a grid, painted shape by shape with partial-volume blending."""

    def __init__(self, grid: Grid, background: float) -> None:
        self.grid = grid
        self.hu = np.full(grid.shape, background, dtype=np.float64)
        self.x, self.y, self.z = grid.axis(0), grid.axis(1), grid.axis(2)

    def region(
        self, bounds: tuple[np.ndarray, np.ndarray]
    ) -> tuple[tuple[slice, slice, slice], np.ndarray, np.ndarray, np.ndarray]:
        """Array slices and broadcast coordinates (mm) of the voxels near ``bounds``."""
        margin = RAMP_MM + 1.0
        ranges = []
        for dim in range(3):
            o, s, n = self.grid.origin[dim], self.grid.spacing[dim], self.grid.size[dim]
            lo, hi = bounds[0][dim] - margin, bounds[1][dim] + margin
            i0 = 0 if not math.isfinite(lo) else min(n, max(0, math.floor((lo - o) / s)))
            i1 = n if not math.isfinite(hi) else min(n, max(0, math.ceil((hi - o) / s) + 1))
            ranges.append(slice(i0, i1))
        sx, sy, sz = ranges
        return (
            (sz, sy, sx),
            self.x[sx][None, None, :],
            self.y[sy][None, :, None],
            self.z[sz][:, None, None],
        )

    def paint(
        self,
        sdf: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
        bounds: tuple[np.ndarray, np.ndarray],
        hu: float,
    ) -> None:
        """Blend ``hu`` into the voxels inside ``sdf`` (linear ramp across the surface)."""
        sub, x, y, z = self.region(bounds)
        if any(s.start >= s.stop for s in sub):
            return
        alpha = np.clip(0.5 - sdf(x, y, z) / RAMP_MM, 0.0, 1.0)
        view = self.hu[sub]
        view += alpha * (hu - view)

    def paint_shape(self, shape: Shape, hu: float) -> None:
        self.paint(shape.sdf, shape.bounds(), hu)


def render_noise_free(grid: Grid = GRID) -> np.ndarray:
    """Noise-free HU volume (float64, array order z, y, x) with partial-volume edges."""
    t = TISSUE_HU
    canvas = _Canvas(grid, t["air"])
    soft = soft_tissue_shapes()
    canvas.paint_shape(soft["outline"], t["skin"])
    canvas.paint_shape(soft["subcutis"], t["fat"])
    fascia = soft["fascia"]
    for name, shape in soft.items():
        if name in ("outline", "subcutis", "fascia"):
            continue

        def clipped(x, y, z, shape=shape):  # muscles stay inside the deep fascia
            return np.maximum(shape.sdf(x, y, z), fascia.sdf(x, y, z))

        canvas.paint(clipped, shape.bounds(), t["muscle"])

    canal = build_canal()
    sleeve = VerticalTube(
        canal.centre_xy,
        canal.z_knots,
        tuple(r + 2.5 for r in canal.rx),
        tuple(r + 2.5 for r in canal.ry),
    )
    canvas.paint_shape(sleeve, t["ligament"])

    lo, hi = grid.extent()
    for name, _, _ in DISCS:
        g = disc_geometry(name, grid)
        z_lo, z_hi = g["z_range"]
        # discs clipped by the field of view extend 5 mm beyond it (no ramp at the edge)
        z_lo = z_lo - 5.0 if z_lo <= lo[2] else z_lo
        z_hi = z_hi + 5.0 if z_hi >= hi[2] else z_hi
        disc = EllipticCylinder(
            Frame.vertical((0.0, g["centre"][1], (z_lo + z_hi) / 2)),
            (g["radii_mm"][0], g["radii_mm"][1]),
            (z_hi - z_lo) / 2,
        )
        canvas.paint_shape(disc, t["disc"])

    for vertebra in build_vertebrae():
        canvas.paint(vertebra.outer_sdf, vertebra.bounds(), t["cortical_bone"])
        canvas.paint(vertebra.inner_sdf, vertebra.bounds(), t["cancellous_bone"])
    canvas.paint_shape(Sphere(LESION_CENTRE, LESION_RADIUS_MM), t["lesion"])

    canvas.paint_shape(canal, t["csf"])
    canvas.paint_shape(Sphere(MARKER_CENTRE, MARKER_RADIUS_MM), t["marker"])
    return canvas.hu


def render_hu(grid: Grid = GRID) -> np.ndarray:
    """The phantom volume: noise-free rendering plus seeded Gaussian noise, as int16 HU.

    Returns
    -------
    numpy.ndarray
        int16 HU, array order (z, y, x), clipped to ``[HU_MIN, HU_MAX]``.
    """
    hu = render_noise_free(grid)
    rng = np.random.RandomState(NOISE_SEED)  # legacy stream: identical across numpy versions
    hu += rng.normal(0.0, NOISE_SIGMA_HU, size=hu.shape)
    return np.clip(np.rint(hu), HU_MIN, HU_MAX).astype(np.int16)


# --------------------------------------------------------------------------------------------
# Ground truth
# --------------------------------------------------------------------------------------------
