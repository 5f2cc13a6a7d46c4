"""Images of the plan report: the 3D overview and CT slices along each implant's axis.

All images are PNG bytes. The overview is rendered off screen with PyVista (VTK falls back to
an off-screen OpenGL context when there is no display); when that fails,
:func:`render_overview` returns ``None`` and the reason, and the report says so instead of
failing. Slices are resampled from the CT by trilinear interpolation on a plane containing the
implant axis and drawn with Matplotlib's Agg canvas (no GUI, no Qt):

* **axial-oblique**: the plane through the axis that contains the horizontal direction
  perpendicular to the axis (the axial plane tilted by the sagittal angle); patient right on
  the left of the image, anterior at the top.
* **sagittal-oblique**: the plane through the axis that contains the direction perpendicular to
  the axis and to LPS x (the sagittal plane turned by the axial angle); anterior on the left,
  superior at the top.

The outline of the implant and of the plan's structures is the intersection of their surfaces
with the plane.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from surgtwin.geometry.mesh import Mesh

__all__ = [
    "SliceImage",
    "oblique_planes",
    "plane_segments",
    "png_bytes",
    "render_overview",
    "render_slice",
    "resample_plane",
]

#: Display window of the slices (HU): level 400, width 1800 (bone and soft tissue).
WINDOW_HU = (-500.0, 1300.0)
#: Sample spacing of the slices (mm).
SLICE_SPACING_MM = 0.5
#: Value outside the CT (HU).
OUTSIDE_HU = -1000.0
#: Colour of the implants in the images (cyan, apart from the structures' colours).
IMPLANT_COLOUR = (0.0, 0.85, 1.0)


@dataclass(frozen=True)
class SliceImage:
    """One oblique slice through an implant: PNG bytes and a caption."""

    implant: str
    plane: str
    caption: str
    png: bytes


def png_bytes(rgb: np.ndarray) -> bytes:
    """PNG encoding of an RGB(A) uint8 image (Matplotlib, no GUI)."""
    from matplotlib.image import imsave

    buf = io.BytesIO()
    imsave(buf, np.ascontiguousarray(rgb), format="png")
    return buf.getvalue()


# ---------------------------------------------------------------------- 3D overview


def render_overview(
    structures: Sequence[tuple[Mesh, tuple[float, float, float], float]],
    implants: Sequence[Mesh],
    size: tuple[int, int] = (1200, 900),
) -> tuple[bytes | None, str]:
    """The structures and implants seen from posterolateral, rendered off screen.

    Parameters
    ----------
    structures : sequence of (Mesh, rgb, opacity)
        Surfaces in LPS mm with their colour (0..1) and opacity.
    implants : sequence of Mesh
        Implant surfaces in LPS mm.
    size : (int, int)
        Width and height in pixels.

    Returns
    -------
    (bytes or None, str)
        The PNG, or None and the reason rendering failed.
    """
    try:
        import pyvista as pv

        plotter = pv.Plotter(off_screen=True, window_size=list(size))
        try:
            plotter.set_background("white")
            for mesh, colour, opacity in structures:
                plotter.add_mesh(
                    mesh.to_pyvista(), color=colour, opacity=opacity, smooth_shading=True
                )
            for mesh in implants:
                plotter.add_mesh(mesh.to_pyvista(), color=IMPLANT_COLOUR, smooth_shading=True)
            # LPS: +y is posterior, +z superior; look from posterior, right and above
            plotter.view_vector((-0.6, 1.0, 0.35), viewup=(0.0, 0.0, 1.0))
            plotter.reset_camera()
            plotter.camera.zoom(1.5)
            img = plotter.screenshot(return_img=True)
        finally:
            plotter.close()
    except Exception as exc:  # no display, no OpenGL, VTK errors: the report goes on
        return None, f"the 3D overview could not be rendered ({type(exc).__name__}: {exc})"
    if img is None or np.asarray(img).std() == 0:
        return None, "the 3D overview could not be rendered (empty image)"
    return png_bytes(np.asarray(img, dtype=np.uint8)), ""


# ---------------------------------------------------------------------- slices


def oblique_planes(
    entry: np.ndarray, tip: np.ndarray
) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray, tuple[str, str, str, str]]]:
    """The axial- and sagittal-oblique planes containing an implant axis.

    Returns
    -------
    list of (name, centre, h, v, (left, right, top, bottom))
        Each plane as its centre (the axis midpoint), in-plane unit vectors ``h`` (image right)
        and ``v`` (image up), LPS, and the patient directions at the image edges.
    """
    entry, tip = np.asarray(entry, float), np.asarray(tip, float)
    d = tip - entry
    d = d / np.linalg.norm(d)
    centre = (entry + tip) / 2
    out = []
    specs = (
        ("axial-oblique", (0.0, 0.0, 1.0), (1.0, 0.0, 0.0), (0.0, -1.0, 0.0), "RLAP"),
        ("sagittal-oblique", (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), "APSI"),
    )
    for name, across, h_hint, v_hint, letters in specs:
        e = np.cross(d, across)
        if np.linalg.norm(e) < 1e-6:  # the axis runs along `across`: any perpendicular will do
            e = np.cross(d, v_hint)
        e /= np.linalg.norm(e)
        normal = np.cross(d, e)
        normal /= np.linalg.norm(normal)
        h = np.asarray(h_hint) - np.dot(h_hint, normal) * normal
        if np.linalg.norm(h) < 1e-6:
            h = d.copy()
        h /= np.linalg.norm(h)
        v = np.cross(normal, h)
        if np.dot(v, v_hint) < 0:
            v = -v
        out.append((name, centre, h, v, tuple(letters)))
    return out


def resample_plane(
    array: np.ndarray,
    lps_to_index,
    centre: np.ndarray,
    h: np.ndarray,
    v: np.ndarray,
    half_mm: float,
    spacing_mm: float = SLICE_SPACING_MM,
) -> np.ndarray:
    """Trilinear samples of a volume on a square of the plane (row 0 at the top, +v).

    Parameters
    ----------
    array : numpy.ndarray, shape (k, j, i)
    lps_to_index : callable
        LPS mm points (n, 3) -> continuous indices (i, j, k).
    centre, h, v : numpy.ndarray
        Plane centre (LPS mm) and in-plane unit vectors (image right, image up).
    half_mm, spacing_mm : float
        Half the side of the square and the sample spacing (mm).

    Returns
    -------
    numpy.ndarray, shape (n, n)
        Values; :data:`OUTSIDE_HU` outside the volume.
    """
    s = np.arange(-half_mm, half_mm + 1e-9, spacing_mm)
    uu, ww = np.meshgrid(s, s[::-1])
    pts = centre + uu[..., None] * h + ww[..., None] * v
    ijk = lps_to_index(pts.reshape(-1, 3))
    shape = np.array(array.shape[::-1])  # (ni, nj, nk)
    inside = np.all((ijk >= 0) & (ijk <= shape - 1), axis=1)
    base = np.clip(np.floor(ijk).astype(int), 0, np.maximum(shape - 2, 0))
    frac = np.clip(ijk - base, 0.0, 1.0)
    out = np.zeros(len(ijk))
    data = np.asarray(array)  # gathered per corner below: no float copy of the whole volume
    for di in (0, 1):
        for dj in (0, 1):
            for dk in (0, 1):
                i = np.minimum(base[:, 0] + di, shape[0] - 1)
                j = np.minimum(base[:, 1] + dj, shape[1] - 1)
                k = np.minimum(base[:, 2] + dk, shape[2] - 1)
                w = (
                    (frac[:, 0] if di else 1 - frac[:, 0])
                    * (frac[:, 1] if dj else 1 - frac[:, 1])
                    * (frac[:, 2] if dk else 1 - frac[:, 2])
                )
                out += w * data[k, j, i]
    out[~inside] = OUTSIDE_HU
    return out.reshape(uu.shape)


def plane_segments(mesh: Mesh, centre: np.ndarray, h: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Where a surface crosses the plane: segments in plane coordinates (mm).

    Returns
    -------
    numpy.ndarray, shape (n, 2, 2)
        Each segment's two points as (along h, along v).
    """
    normal = np.cross(h, v)
    pts = np.asarray(mesh.points, dtype=float)
    faces = np.asarray(mesh.faces, dtype=int)
    if len(faces) == 0:
        return np.zeros((0, 2, 2))
    dist = (pts - centre) @ normal
    dist[dist == 0] = 1e-9
    tri = dist[faces]
    cross = (tri.min(axis=1) < 0) & (tri.max(axis=1) > 0)
    faces, tri = faces[cross], tri[cross]
    ends = []
    for a, b in ((0, 1), (1, 2), (2, 0)):
        da, db = tri[:, a], tri[:, b]
        t = da / np.where(da == db, 1.0, da - db)
        p = pts[faces[:, a]] + t[:, None] * (pts[faces[:, b]] - pts[faces[:, a]])
        ends.append((np.sign(da) != np.sign(db), p))
    segs = []
    for n in range(len(faces)):
        two = [p[n] for ok, p in ends if ok[n]]
        if len(two) == 2:
            segs.append(two)
    if not segs:
        return np.zeros((0, 2, 2))
    seg = np.asarray(segs) - centre
    return np.stack([seg @ h, seg @ v], axis=-1)


def render_slice(
    image: np.ndarray,
    half_mm: float,
    outlines: Sequence[tuple[np.ndarray, tuple[float, float, float], str]],
    title: str,
    letters: tuple[str, str, str, str],
) -> bytes:
    """A resampled slice with outlines as PNG (Matplotlib Agg).

    Parameters
    ----------
    image : numpy.ndarray, shape (n, n)
        HU from :func:`resample_plane`.
    half_mm : float
        Half the side of the square (mm).
    outlines : sequence of (segments, rgb, label)
        From :func:`plane_segments`.
    title : str
    letters : (left, right, top, bottom)
        Patient directions at the image edges.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.0, 5.2), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ext = (-half_mm, half_mm, -half_mm, half_mm)
    lo, hi = WINDOW_HU
    ax.imshow(image, cmap="gray", vmin=lo, vmax=hi, extent=ext, origin="upper")
    handles = []
    for segs, colour, label in outlines:
        if len(segs):
            lc = LineCollection(segs, colors=[colour], linewidths=1.4, label=label)
            ax.add_collection(lc)
            handles.append(lc)
    ax.set_xlim(-half_mm, half_mm)
    ax.set_ylim(-half_mm, half_mm)
    ax.set_xlabel("mm")
    ax.set_ylabel("mm")
    ax.set_title(title, fontsize=9)
    left, right, top, bottom = letters
    style = {"color": "yellow", "fontsize": 11, "fontweight": "bold"}
    ax.text(0.02, 0.5, left, transform=ax.transAxes, va="center", **style)
    ax.text(0.98, 0.5, right, transform=ax.transAxes, va="center", ha="right", **style)
    ax.text(0.5, 0.98, top, transform=ax.transAxes, ha="center", va="top", **style)
    ax.text(0.5, 0.02, bottom, transform=ax.transAxes, ha="center", va="bottom", **style)
    if handles:
        ax.legend(handles=handles, loc="lower right", fontsize=7, framealpha=0.6)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
