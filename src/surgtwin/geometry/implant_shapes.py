"""Parametric implant shapes: watertight, outward-oriented meshes in the implant's local frame.

Local frame
-----------
Every generator returns a :class:`~surgtwin.geometry.mesh.Mesh` in millimetres in the implant's
own frame: the implant axis is **+z, from the tip (z = 0, at the origin) towards the head or
entry (z = length)**. Heads, tulips and abutments sit above z = length and do not count in the
length. Rotationally symmetric parts are centred on the z axis; plates and cages are centred in
x and y. The x and y axes only matter for parts that are not rotationally symmetric: the tulip's
rod slot runs along x, a dental abutment tilts towards +y, a plate's width is along x and its
thickness along y, a cage's width along x and its height along y.

Threads are stacked ridges (a revolved sawtooth profile), not an exact helix: the outer and core
diameters, the pitch and the volume are right, which is what planning needs. Circles have a
number of segments that is a multiple of 4 with a vertex at 0 degrees, so the bounding box of a
round part is its exact diameter.

Every generator checks its parameters first and raises :class:`ImplantParameterError` naming
the parameter and its allowed range; :func:`validate_parameters` runs the same checks without
building anything (used to validate catalogues).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

import manifold3d as mf
import numpy as np

from surgtwin.errors import SurgTwinError
from surgtwin.geometry.mesh import Mesh

IMPLANT_COLOR = (0.75, 0.78, 0.82)


class ImplantParameterError(SurgTwinError, ValueError):
    """An implant parameter is missing, unknown or outside its allowed range."""


# ---------------------------------------------------------------------------------------------
# parameter checks


def _num(name: str, value: Any, lo: float, hi: float, unit: str = "mm") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ImplantParameterError(f"{name} must be a number ({lo:g} to {hi:g} {unit})")
    v = float(value)
    if not math.isfinite(v) or v < lo or v > hi:
        raise ImplantParameterError(
            f"{name} = {value!r} is outside the allowed range {lo:g} to {hi:g} {unit}"
        )
    return v


def _segments(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ImplantParameterError("segments must be an integer multiple of 4 (16 to 256)")
    if value < 16 or value > 256 or value % 4:
        raise ImplantParameterError(
            f"segments = {value!r} must be a multiple of 4 in the allowed range 16 to 256"
        )
    return int(value)


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ImplantParameterError(f"{name} must be true or false, not {value!r}")
    return value


# ---------------------------------------------------------------------------------------------
# construction helpers


def revolve_profile(profile_rz: np.ndarray, segments: int) -> tuple[np.ndarray, np.ndarray]:
    """Revolve an (r, z) profile about the z axis into a closed, outward-oriented surface.

    Parameters
    ----------
    profile_rz : numpy.ndarray, shape (k, 2)
        Radius and height (mm). The first and last points lie on the axis (r = 0), all others
        have r > 0; together with the axis the profile must bound a simple polygon.
    segments : int
        Number of vertices per ring, the first at 0 degrees.

    Returns
    -------
    points, faces : numpy.ndarray
        Vertices (n, 3) and triangles (m, 3), counter-clockwise seen from outside.
    """
    prof = np.asarray(profile_rz, dtype=float)
    inner = prof[1:-1]
    if len(inner) == 0 or prof[0, 0] != 0 or prof[-1, 0] != 0 or np.any(inner[:, 0] <= 0):
        raise ValueError("profile must start and end on the axis and stay off it in between")
    ang = 2 * np.pi * np.arange(segments) / segments
    cos, sin = np.cos(ang), np.sin(ang)
    cos[np.isclose(cos, 0, atol=1e-15)] = 0.0
    sin[np.isclose(sin, 0, atol=1e-15)] = 0.0
    rings = np.stack(
        [inner[:, :1] * cos, inner[:, :1] * sin, np.repeat(inner[:, 1:], segments, axis=1)],
        axis=-1,
    ).reshape(-1, 3)
    n_r = len(inner)
    bottom, top = n_r * segments, n_r * segments + 1
    points = np.vstack([rings, [0.0, 0.0, prof[0, 1]], [0.0, 0.0, prof[-1, 1]]])
    j = np.arange(segments)
    jn = (j + 1) % segments
    faces = [np.stack([np.full(segments, bottom), jn, j], axis=1)]
    for i in range(n_r - 1):
        a, b = i * segments, (i + 1) * segments
        faces.append(np.stack([a + j, a + jn, b + jn], axis=1))
        faces.append(np.stack([a + j, b + jn, b + j], axis=1))
    last = (n_r - 1) * segments
    faces.append(np.stack([np.full(segments, top), last + j, last + jn], axis=1))
    f = np.vstack(faces).astype(np.int64)
    v = points[f]
    if np.einsum("ij,ij->i", v[:, 0], np.cross(v[:, 1], v[:, 2])).sum() < 0:
        f = f[:, ::-1].copy()
    return points, f


def _to_manifold(points: np.ndarray, faces: np.ndarray) -> mf.Manifold:
    m = mf.Manifold(
        mf.Mesh64(
            vert_properties=np.ascontiguousarray(points, dtype=np.float64),
            tri_verts=np.ascontiguousarray(faces, dtype=np.uint32),
        )
    )
    if m.status() != mf.Error.NoError:  # pragma: no cover - guards against generator bugs
        raise RuntimeError(f"internal: not a manifold ({m.status()})")
    return m


def _from_manifold(m: mf.Manifold, name: str) -> Mesh:
    mesh = m.to_mesh64()
    pts = np.asarray(mesh.vert_properties, dtype=np.float64)[:, :3]
    return Mesh(
        pts,
        np.asarray(mesh.tri_verts, dtype=np.int64),
        name=name,
        color=IMPLANT_COLOR,
        role="implant",
    )


def _mesh(points: np.ndarray, faces: np.ndarray, name: str) -> Mesh:
    return Mesh(points, faces, name=name, color=IMPLANT_COLOR, role="implant")


Profile = list[tuple[float, float]]
ThreadForm = tuple[tuple[float, ...], tuple[float, ...]]

# thread forms: (fractions of the pitch, level 0 = root .. 1 = crest). The steep flank of the
# buttress faces the head (pull-out load), the gentle flank faces the tip.
BUTTRESS: ThreadForm = ((0.0, 0.15, 0.65, 0.8, 0.95), (0.0, 0.0, 1.0, 1.0, 0.0))
SYMMETRIC: ThreadForm = ((0.0, 0.2, 0.45, 0.55, 0.8), (0.0, 0.0, 1.0, 1.0, 0.0))


def _thread(z0: float, z1: float, pitch: float, form: ThreadForm) -> tuple[np.ndarray, np.ndarray]:
    """Break points (mm) and levels (0 root .. 1 crest) of stacked ridges from z0 to z1."""
    n = max(1, math.ceil((z1 - z0) / pitch))
    zs = (z0 + pitch * np.arange(n)[:, None] + pitch * np.asarray(form[0])[None, :]).ravel()
    lv = np.tile(form[1], n)
    return zs[zs <= z1], lv[zs <= z1]


def _shank(
    length: float,
    d: float,
    core: float,
    pitch: float,
    thread_end: float,
    form: ThreadForm,
    shaft_d: float,
    tip: float,
) -> Profile:
    """(r, z) of a threaded shank from a blunt conical tip (z = 0) to z = length, open on top.

    The thread runs from the tip to ``thread_end`` (diameters ``d`` outer, ``core`` root), the
    shaft above has diameter ``shaft_d``; the tip cone grows from 0.2 x core to ``d`` over
    ``tip`` mm and clips the thread.
    """
    zt, lv = _thread(0.0, thread_end, pitch, form)
    zs = np.concatenate(
        [zt, np.linspace(0, tip, max(4, math.ceil(6 * tip / pitch)) + 1), [thread_end, length]]
    )
    zs = np.unique(np.round(zs[(zs > 0) & (zs <= length)], 9))
    r = np.interp(zs, zt, core / 2 + (d - core) / 2 * lv, left=core / 2, right=core / 2)
    r = np.where(zs > thread_end, shaft_d / 2, r)
    r0 = 0.1 * core
    r = np.minimum(r, r0 + (d / 2 - r0) * zs / tip)
    return [(0.0, 0.0), (r0, 0.0), *zip(r.tolist(), zs.tolist(), strict=True)]


def _cylinder(r: float, z0: float, z1: float, n: int) -> mf.Manifold:
    return _to_manifold(*revolve_profile(np.array([(0, z0), (r, z0), (r, z1), (0, z1)]), n))


def _screw(
    p: dict[str, Any], d_range: tuple[float, float], l_range: tuple[float, float], core_ratio: float
) -> tuple[float, float, float, float, int]:
    d = _num("diameter_mm", p["diameter_mm"], *d_range)
    length = _num("length_mm", p["length_mm"], *l_range)
    pitch = _num("pitch_mm", p["pitch_mm"], 0.5, 4.0)
    core = p["core_diameter_mm"]
    core = core_ratio * d if core is None else _num("core_diameter_mm", core, 1.0, d - 0.2)
    return d, length, pitch, core, _segments(p["segments"])


# ---------------------------------------------------------------------------------------------
# generators; each _check_<kind> takes the generator's arguments as a dict


def _check_pedicle(p: dict[str, Any]) -> tuple:
    values = _screw(p, (3.5, 10.0), (20.0, 100.0), 0.7)
    if _flag("tulip", p["tulip"]):
        td = _num("tulip_diameter_mm", p["tulip_diameter_mm"], 8.0, 16.0)
        th = _num("tulip_height_mm", p["tulip_height_mm"], 8.0, 20.0)
        rod = _num("rod_diameter_mm", p["rod_diameter_mm"], 3.0, min(6.35, td - 3.0))
        return (*values, td, th, rod)
    return (*values, 0.0, 0.0, 0.0)


def pedicle_screw(
    diameter_mm: float,
    length_mm: float,
    pitch_mm: float = 2.75,
    core_diameter_mm: float | None = None,
    tulip: bool = True,
    tulip_height_mm: float = 12.0,
    tulip_diameter_mm: float = 11.0,
    rod_diameter_mm: float = 5.5,
    segments: int = 48,
) -> Mesh:
    """A pedicle screw: cylindrical core, buttress thread, conical tip, optional tulip.

    Parameters
    ----------
    diameter_mm : float
        Outer (thread) diameter, 3.5 to 10 mm.
    length_mm : float
        From the tip to the top of the shank (the entry), 20 to 100 mm; the tulip sits above
        and does not count.
    pitch_mm : float
        Thread pitch, 0.5 to 4 mm.
    core_diameter_mm : float, optional
        Root diameter, 1 mm to ``diameter_mm`` - 0.2 mm; default 0.7 x ``diameter_mm``.
    tulip : bool
        Add a U-shaped polyaxial tulip (rod slot along x) on top of z = length.
    tulip_height_mm, tulip_diameter_mm, rod_diameter_mm : float
        Tulip height 8 to 20 mm, outer diameter 8 to 16 mm; rod 3 to 6.35 mm (and at least
        3 mm less than the tulip).
    segments : int
        Vertices per circle, a multiple of 4 (16 to 256).
    """
    d, length, pitch, core, n, td, th, rod = _check_pedicle(dict(locals()))
    name = f"pedicle screw {d:g} x {length:g} mm"
    prof = _shank(length, d, core, pitch, length - 1.0, BUTTRESS, core, min(1.2 * d, 0.4 * length))
    if not tulip:
        return _mesh(*revolve_profile(np.array([*prof, (0.0, length)]), n), name)
    floor, top = 3.0, length + th
    prof.append((core / 2, length + floor / 2))  # the neck reaches into the tulip floor
    shank = _to_manifold(*revolve_profile(np.array([*prof, (0.0, length + floor / 2)]), n))
    bore = _cylinder(min(td / 2 - 1.2, rod / 2 + 1.5), length + floor, top + 1, n)
    zc, slot_w = length + floor + rod / 2, rod + 0.2
    slot = mf.Manifold.cube((td + 2, slot_w, top + 1 - zc)).translate(
        (-(td + 2) / 2, -slot_w / 2, zc)
    )
    saddle = mf.Manifold.cylinder(td + 2, slot_w / 2, slot_w / 2, n).rotate((0, 90, 0))
    saddle = saddle.translate((-(td + 2) / 2, 0, zc))
    tulip_m = _cylinder(td / 2, length, top, n) - bore - slot - saddle
    return _from_manifold(shank + tulip_m, name)


def _check_bone_screw(p: dict[str, Any]) -> tuple:
    canc = _flag("cancellous", p["cancellous"])
    d = _num("diameter_mm", p["diameter_mm"], 1.5, 8.0)
    if p["pitch_mm"] is None:
        p["pitch_mm"] = 2.75 if canc and d >= 5 else (1.75 if canc or d >= 4 else 1.25)
    d, length, pitch, core, n = _screw(p, (1.5, 8.0), (6.0, 150.0), 0.46 if canc else 0.67)
    thread = p["thread_length_mm"]
    thread = length if thread is None else _num("thread_length_mm", thread, 2 * pitch, length)
    hd = p["head_diameter_mm"]
    hd = min(1.8 * d, d + 3.5) if hd is None else _num("head_diameter_mm", hd, d + 0.5, 3 * d + 2)
    return canc, d, length, pitch, core, n, min(thread, length - 1.0), hd


def bone_screw(
    diameter_mm: float,
    length_mm: float,
    cancellous: bool = False,
    pitch_mm: float | None = None,
    core_diameter_mm: float | None = None,
    thread_length_mm: float | None = None,
    head_diameter_mm: float | None = None,
    segments: int = 48,
) -> Mesh:
    """A cortical or cancellous bone screw: head with hex socket, shaft, thread, conical tip.

    Cortical screws have a fine, shallow, symmetric thread along the whole shaft; cancellous
    screws a coarse, deep buttress thread, optionally only near the tip (lag screw) with a
    smooth shaft of 0.7 x diameter above.

    Parameters
    ----------
    diameter_mm : float
        Outer thread diameter, 1.5 to 8 mm.
    length_mm : float
        From the tip to the underside of the head (the entry), 6 to 150 mm.
    cancellous : bool
        Cancellous thread (default: cortical).
    pitch_mm : float, optional
        0.5 to 4 mm; default 1.25 (cortical under 4 mm), 1.75 (other cortical, cancellous
        under 5 mm) or 2.75 (cancellous).
    core_diameter_mm : float, optional
        1 mm to ``diameter_mm`` - 0.2 mm; default 0.67 (cortical) or 0.46 (cancellous) x
        ``diameter_mm``.
    thread_length_mm : float, optional
        Threaded length from the tip, 2 pitches to ``length_mm``; default fully threaded (the
        last mm below the head is always smooth).
    head_diameter_mm : float, optional
        ``diameter_mm`` + 0.5 to 3 x ``diameter_mm`` + 2 mm; default min(1.8 x diameter,
        diameter + 3.5 mm). The head is 0.55 x its diameter tall.
    segments : int
        Vertices per circle, a multiple of 4 (16 to 256).
    """
    canc, d, length, pitch, core, n, thread, hd = _check_bone_screw(dict(locals()))
    hh = 0.55 * hd
    shaft = max(core, 0.7 * d) if canc else core
    prof = _shank(
        length, d, core, pitch, thread, BUTTRESS if canc else SYMMETRIC, shaft, min(d, 0.4 * length)
    )
    prof += [
        (hd / 2, length + 0.35 * hh),
        (hd / 2, length + 0.7 * hh),
        (0.65 * hd / 2, length + hh),
        (0.0, length + hh),
    ]
    screw = _to_manifold(*revolve_profile(np.array(prof), n))
    socket = mf.Manifold.extrude(mf.CrossSection.circle(0.36 * hd, 6), 0.6 * hh + 1)
    kind = "cancellous" if canc else "cortical"
    return _from_manifold(
        screw - socket.translate((0, 0, length + 0.4 * hh)), f"{kind} screw {d:g} x {length:g} mm"
    )


def _check_dental(p: dict[str, Any]) -> tuple:
    ah = _num("abutment_height_mm", p["abutment_height_mm"], 0.0, 10.0)
    if 0 < ah < 3:
        raise ImplantParameterError(
            f"abutment_height_mm = {ah:g} must be 0 (no abutment) or 3 to 10 mm"
        )
    return (
        _num("diameter_mm", p["diameter_mm"], 3.0, 6.0),
        _num("length_mm", p["length_mm"], 6.0, 16.0),
        _num("abutment_angle_deg", p["abutment_angle_deg"], 0.0, 30.0, "degrees"),
        ah,
        _num("pitch_mm", p["pitch_mm"], 0.6, 1.5),
        _segments(p["segments"]),
    )


def dental_implant(
    diameter_mm: float,
    length_mm: float,
    abutment_angle_deg: float = 0.0,
    abutment_height_mm: float = 5.0,
    pitch_mm: float = 1.0,
    segments: int = 48,
) -> Mesh:
    """A root-form dental implant: tapered threaded body, smooth collar, angled abutment.

    The apical 40 % tapers to 0.65 x the diameter; the top 1.2 mm is a smooth collar; V
    threads are up to 0.4 mm deep.

    Parameters
    ----------
    diameter_mm : float
        Platform (and maximum thread) diameter, 3.0 to 6.0 mm.
    length_mm : float
        Apex to platform, 6 to 16 mm.
    abutment_angle_deg : float
        Tilt of the abutment axis from the implant axis towards +y, 0 to 30 degrees.
    abutment_height_mm : float
        Abutment height above the platform along its axis, 0 (none) or 3 to 10 mm.
    pitch_mm : float
        Thread pitch, 0.6 to 1.5 mm.
    segments : int
        Vertices per circle, a multiple of 4 (16 to 256).
    """
    d, length, angle, ah, pitch, n = _check_dental(dict(locals()))
    r, depth, collar = d / 2, min(0.4, 0.12 * d), 1.2
    zt, lv = _thread(0.3, length - collar, pitch, SYMMETRIC)
    zs = np.concatenate([zt, np.linspace(0, 0.4 * length, 5), [length - collar, length]])
    zs = np.unique(np.round(zs[zs > 0], 9))
    ridge = np.where(zs >= length - collar, 1.0, np.interp(zs, zt, lv, left=0, right=0))
    radius = np.interp(zs, [0, 0.4 * length, length], [0.65 * r, r, r]) - depth * (1 - ridge)
    prof = [(0.0, 0.0), (0.4 * r, 0.0), *zip(radius.tolist(), zs.tolist(), strict=True)]
    body = revolve_profile(np.array([*prof, (0.0, length)]), n)
    name = f"dental implant {d:g} x {length:g} mm"
    if ah == 0:
        return _mesh(*body, name)
    rb, rt = 0.8 * r, 0.6 * r
    post = revolve_profile(
        np.array([(0, 0.3), (rb, 0.3), (rb, 1.5), (rt, ah - 0.4), (rt - 0.4, ah), (0, ah)]), n
    )
    a = math.radians(angle)  # rotation about +x by -angle tilts +z towards +y
    rot = np.array([[1, 0, 0], [0, math.cos(a), math.sin(a)], [0, -math.sin(a), math.cos(a)]])
    abutment = mf.Manifold.batch_hull(
        [
            _to_manifold(post[0] @ rot.T + (0, 0, length), post[1]),
            _cylinder(rb, length - 0.5, length + 0.3, n),
        ]
    )
    return _from_manifold(_to_manifold(*body) + abutment, name)


def _check_kwire(p: dict[str, Any]) -> tuple:
    return (
        _num("diameter_mm", p["diameter_mm"], 0.6, 4.0),
        _num("length_mm", p["length_mm"], 30.0, 450.0),
        _segments(p["segments"]),
    )


def kwire(diameter_mm: float, length_mm: float, segments: int = 16) -> Mesh:
    """A Kirschner wire: a thin cylinder with a three-faceted trocar point at the origin.

    Parameters
    ----------
    diameter_mm : float
        0.6 to 4 mm.
    length_mm : float
        Point to end, 30 to 450 mm. The facets are 1.5 x diameter long.
    segments : int
        Vertices per circle, a multiple of 4 (16 to 256).
    """
    d, length, n = _check_kwire(dict(locals()))
    wire = _cylinder(d / 2, -1.0, length, n)
    gamma = math.atan2(d / 2, 1.5 * d)
    for k in range(3):  # three planes through the origin; keeps n . p >= 0
        th = 2 * math.pi * k / 3 + math.pi / 6
        c = math.cos(gamma)
        wire = wire.trim_by_plane((-math.cos(th) * c, -math.sin(th) * c, math.sin(gamma)), 0.0)
    return _from_manifold(wire, f"K-wire {d:g} x {length:g} mm")


def _rounded_rect(width: float, length: float, radius: float, n: int) -> mf.CrossSection:
    """Rounded rectangle spanning x in [-width/2, width/2] and y in [0, length] (mm)."""
    core = mf.CrossSection.square((width - 2 * radius, length - 2 * radius))
    core = core.translate((-(width - 2 * radius) / 2, radius))
    return core.offset(radius, mf.JoinType.Round, circular_segments=n)


def _extrude_along_y(section: mf.CrossSection, thickness: float) -> mf.Manifold:
    """Extrude a section in (x, z) symmetrically along y, from -thickness/2 to thickness/2."""
    swap = np.array([[1.0, 0, 0, 0], [0, 0, 1, -thickness / 2], [0, 1, 0, 0]])
    return mf.Manifold.extrude(section, thickness).transform(swap)


def _check_plate(p: dict[str, Any]) -> tuple:
    length = _num("length_mm", p["length_mm"], 20.0, 400.0)
    holes = p["holes"]
    if isinstance(holes, bool) or not isinstance(holes, int | np.integer) or not 1 <= holes <= 24:
        raise ImplantParameterError(f"holes = {holes!r} must be an integer from 1 to 24")
    w = _num("width_mm", p["width_mm"], 4.0, 40.0)
    hd = _num("hole_diameter_mm", p["hole_diameter_mm"], 1.0, 10.0)
    if hd > min(w - 2, length / holes - 1):
        raise ImplantParameterError(
            f"hole_diameter_mm = {hd:g} leaves less than 1 mm of plate: at most "
            f"{min(w - 2, length / holes - 1):g} mm for this width, length and number of holes"
        )
    t = _num("thickness_mm", p["thickness_mm"], 1.0, 10.0)
    return length, int(holes), w, t, hd, _segments(p["segments"])


def bone_plate(
    length_mm: float,
    holes: int,
    width_mm: float = 12.0,
    thickness_mm: float = 4.0,
    hole_diameter_mm: float = 5.0,
    segments: int = 32,
) -> Mesh:
    """A straight bone plate with evenly spaced round through holes.

    The plate runs along z from 0 to ``length_mm``; width along x, thickness along y, centred.

    Parameters
    ----------
    length_mm : float
        20 to 400 mm.
    holes : int
        1 to 24; hole centres at (i + 0.5) x length / holes.
    width_mm, thickness_mm, hole_diameter_mm : float
        Width 4 to 40 mm, thickness 1 to 10 mm, holes 1 to 10 mm leaving at least 1 mm of
        plate around and between them.
    segments : int
        Vertices per circle, a multiple of 4 (16 to 256).
    """
    length, holes, w, t, hd, n = _check_plate(dict(locals()))
    section = _rounded_rect(w, length, min(w / 2 - 0.01, 3.0), n)
    for i in range(holes):
        section = section - mf.CrossSection.circle(hd / 2, n).translate(
            (0, (i + 0.5) * length / holes)
        )
    return _from_manifold(_extrude_along_y(section, t), f"plate {holes} holes {length:g} mm")


def _check_cage(p: dict[str, Any]) -> tuple:
    length = _num("length_mm", p["length_mm"], 15.0, 60.0)
    h = _num("height_mm", p["height_mm"], 5.0, 20.0)
    lord = _num("lordosis_deg", p["lordosis_deg"], 0.0, 20.0, "degrees")
    trailing = h - 2 * length * math.tan(math.radians(lord) / 2)
    if trailing < 4.0:
        raise ImplantParameterError(
            f"lordosis_deg = {lord:g} leaves the trailing end {trailing:.1f} mm tall; it must be "
            "at least 4 mm (use a taller or shorter cage, or less lordosis)"
        )
    return (
        length,
        _num("width_mm", p["width_mm"], 8.0, 45.0),
        h,
        lord,
        _flag("window", p["window"]),
        _segments(p["segments"]),
    )


def interbody_cage(
    length_mm: float,
    width_mm: float,
    height_mm: float,
    lordosis_deg: float = 0.0,
    window: bool = True,
    segments: int = 32,
) -> Mesh:
    """An interbody fusion cage: a box with rounded edges, lordotic wedge and graft window.

    Inserted leading end first: the leading end is at z = 0, the trailing end at
    z = ``length_mm``. Width along x, height along y; the top and bottom faces each tilt by
    half the lordosis, so the cage is ``height_mm`` tall at the leading end and
    ``height_mm`` - 2 ``length_mm`` tan(lordosis / 2) at the trailing end.

    Parameters
    ----------
    length_mm : float
        Along the insertion axis, 15 to 60 mm.
    width_mm : float
        8 to 45 mm.
    height_mm : float
        At the leading end, 5 to 20 mm.
    lordosis_deg : float
        Angle between the top and bottom faces, 0 to 20 degrees; the trailing end must stay at
        least 4 mm tall.
    window : bool
        A central graft window (45 % of width and length) through top and bottom.
    segments : int
        Vertices per full circle of the rounded corners, a multiple of 4 (16 to 256).
    """
    length, w, h, lord, window, n = _check_cage(dict(locals()))
    section = _rounded_rect(w, length, min(2.0, w / 4), n)
    if window:
        hole = _rounded_rect(0.45 * w, 0.45 * length, 0.1 * w, n)
        section = section - hole.translate((0, 0.275 * length))
    cage = _extrude_along_y(section, h)
    if lord > 0:
        slope = math.tan(math.radians(lord) / 2)
        c = math.cos(math.atan(slope))
        cage = cage.trim_by_plane((0, -c, -slope * c), -h / 2 * c)  # y <= h/2 - z slope
        cage = cage.trim_by_plane((0, c, -slope * c), -h / 2 * c)  # y >= z slope - h/2
    return _from_manifold(cage, f"cage {length:g} x {w:g} x {h:g} mm, {lord:g} deg")


def _check_cup(p: dict[str, Any]) -> tuple:
    d = _num("outer_diameter_mm", p["outer_diameter_mm"], 36.0, 80.0)
    t = _num("wall_thickness_mm", p["wall_thickness_mm"], 1.0, min(10.0, d / 3))
    return d, t, _segments(p["segments"])


def acetabular_cup(
    outer_diameter_mm: float, wall_thickness_mm: float = 4.0, segments: int = 64
) -> Mesh:
    """A hemispherical acetabular shell: dome apex at the origin, rim (opening) at z = R.

    Parameters
    ----------
    outer_diameter_mm : float
        36 to 80 mm; the axial length (apex to rim) is half of it.
    wall_thickness_mm : float
        1 to 10 mm and at most a third of the outer diameter.
    segments : int
        Vertices per circle, a multiple of 4 (16 to 256).
    """
    d, t, n = _check_cup(dict(locals()))
    big, small = d / 2, d / 2 - t
    phi = np.linspace(0, np.pi / 2, n // 4 + 1)
    outer = np.stack([big * np.sin(phi), big - big * np.cos(phi)], axis=1)
    inner = np.stack([small * np.sin(phi), big - small * np.cos(phi)], axis=1)[::-1]
    outer[0, 0] = inner[-1, 0] = 0.0
    return _mesh(*revolve_profile(np.vstack([outer, inner]), n), f"acetabular cup {d:g} mm")


# ---------------------------------------------------------------------------------------------
# by kind


def _cortical(**kw: Any) -> Mesh:
    return bone_screw(cancellous=False, **kw)


def _cancellous(**kw: Any) -> Mesh:
    return bone_screw(cancellous=True, **kw)


_KINDS: dict[str, tuple[Callable[..., Mesh], Callable[[dict[str, Any]], tuple]]] = {
    "pedicle_screw": (pedicle_screw, _check_pedicle),
    "cortical_screw": (_cortical, _check_bone_screw),
    "cancellous_screw": (_cancellous, _check_bone_screw),
    "dental_implant": (dental_implant, _check_dental),
    "kwire": (kwire, _check_kwire),
    "plate": (bone_plate, _check_plate),
    "cage": (interbody_cage, _check_cage),
    "cup": (acetabular_cup, _check_cup),
}
KINDS: tuple[str, ...] = tuple(_KINDS)
"""Implant kinds with a parametric shape (parameters are the generator's keyword arguments)."""


def validate_parameters(kind: str, parameters: Mapping[str, Any]) -> None:
    """Check an implant kind's parameters without building its mesh.

    Raises
    ------
    ImplantParameterError
        Unknown kind, unknown or missing parameter, or a value outside its allowed range.
    """
    if kind not in _KINDS:
        raise ImplantParameterError(f"unknown implant kind {kind!r}; known: {', '.join(KINDS)}")
    sig = inspect.signature(
        bone_screw if kind.endswith("_screw") and kind != "pedicle_screw" else _KINDS[kind][0]
    )
    allowed = [n for n in sig.parameters if n != "cancellous"]
    unknown = sorted(set(parameters) - set(allowed))
    if unknown:
        raise ImplantParameterError(
            f"unknown parameter(s) {', '.join(unknown)} for {kind}; allowed: {', '.join(allowed)}"
        )
    bound = sig.bind_partial(**parameters)
    missing = [
        n
        for n, p in sig.parameters.items()
        if p.default is inspect.Parameter.empty and n not in bound.arguments
    ]
    if missing:
        raise ImplantParameterError(f"missing parameter(s) {', '.join(missing)} for {kind}")
    bound.apply_defaults()
    args = dict(bound.arguments)
    if kind != "pedicle_screw" and kind.endswith("_screw"):
        args["cancellous"] = kind == "cancellous_screw"
    _KINDS[kind][1](args)


def make_shape(kind: str, parameters: Mapping[str, Any]) -> Mesh:
    """The local-frame mesh of an implant ``kind`` built from its parameters (mm, degrees)."""
    validate_parameters(kind, parameters)
    return _KINDS[kind][0](**parameters)
