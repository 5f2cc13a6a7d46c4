"""The bundled training scenarios, on SurgTwin's lumbar phantom (L3-L5).

=================  ===========================================================================
key                task
=================  ===========================================================================
``l4-bilateral``   a pedicle screw in each pedicle of L4
``l3-l5-screws``   six pedicle screws, left and right, L3 to L5
``l4-lesion``      resect the lytic lesion in the L4 vertebral body with a 5 mm margin
=================  ===========================================================================

The case is the phantom series segmented as ``surgtwin plan new`` does
(:func:`surgtwin.planning.case.build_plan`: the bone preset and the spinal canal grown from the
ground truth). The lesion scenario adds the lesion as the target structure ``L4 lesion``: a
surface of the ground truth's sphere (exact). It is not grown from the image: the lesion is a
cavity enclosed by cancellous bone, which the bone preset fills (the lesion counts as part of
the vertebra, as in the ground truth's bone volumes), so its voxels belong to ``Bone``.

The expert plans come from the phantom's ground truth (``ground_truth.json``):

* screws along the ideal trajectories (entry, target) of each level and side, diameter
  :data:`SCREW_DIAMETER_MM` (about 60 % of the outer pedicle width: 9, 11, 13 mm), the
  catalogue length nearest to the entry-target distance, named ``"L4 left pedicle screw"``;
* the resection: an axis-aligned box centred on the lesion, edges twice the lesion's radius
  plus :data:`EXPERT_MARGIN_MM` (a margin 0.5 mm over the 5 mm required).

The phantom series is found in ``SURGTWIN_SAMPLE_DICOM``, else in the ``sample_dicom`` folder
of a source checkout, else it is generated once (deterministically, a few seconds) into the
cache folder (:func:`surgtwin.paths.cache_dir`).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from surgtwin.errors import SurgTwinError
from surgtwin.planning.plan import Cut, Implant, Plan, Structure
from surgtwin.training.scenario import (
    Scenario,
    ScenarioError,
    ScenarioInfo,
    Tolerances,
    copy_plan,
)

__all__ = [
    "BUNDLED",
    "EXPERT_MARGIN_MM",
    "LESION_NAME",
    "SCREW_DIAMETER_MM",
    "bundled_scenario",
    "lesion_structure",
    "list_scenarios",
    "phantom_series_dir",
    "user_scenario_dir",
]

#: Expert screw diameter per level (mm).
SCREW_DIAMETER_MM: dict[str, float] = {"L3": 6.0, "L4": 6.5, "L5": 7.0}
#: Margin (mm) of the expert's resection box around the lesion.
EXPERT_MARGIN_MM = 5.5
#: Name of the lesion's target structure.
LESION_NAME = "L4 lesion"
SAMPLE_ENV = "SURGTWIN_SAMPLE_DICOM"


@dataclass(frozen=True)
class _Spec:
    title: str
    task: str
    levels: tuple[str, ...] = ()
    lesion: bool = False
    time_limit_s: float | None = None


BUNDLED: dict[str, _Spec] = {
    "l4-bilateral": _Spec(
        "Bilateral pedicle screws at L4",
        "Place a pedicle screw in each pedicle of L4 (left and right). Choose the diameter and "
        "length from the catalogue, enter at the junction of the transverse process and the "
        "facet, keep each screw inside its pedicle and at least 2 mm from the spinal canal, "
        "and converge towards the vertebral body without crossing the midline.",
        levels=("L4",),
        time_limit_s=15 * 60.0,
    ),
    "l3-l5-screws": _Spec(
        "Pedicle screws L3 to L5 (six screws)",
        "Place six pedicle screws, left and right at L3, L4 and L5, for a posterior "
        "instrumentation L3-L5. Keep each screw inside its pedicle and at least 2 mm from the "
        "spinal canal; mind that the pedicles widen and converge more from L3 to L5.",
        levels=("L3", "L4", "L5"),
        time_limit_s=30 * 60.0,
    ),
    "l4-lesion": _Spec(
        "Resection of a lesion in the L4 body",
        f"Resect the lytic lesion ({LESION_NAME!r}) in the vertebral body of L4 en bloc with a "
        "margin of at least 5 mm of healthy bone all round, removing as little healthy bone as "
        "you can. Cut the structure 'Bone' (a box, plane, sphere or polygon cut); place no "
        "implant.",
        lesion=True,
        time_limit_s=20 * 60.0,
    ),
}


def _checkout_sample() -> Path:
    return Path(__file__).resolve().parents[3] / "sample_dicom"


def _is_phantom(folder: Path) -> bool:
    return (folder / "ground_truth.json").is_file() and (folder / "CT").is_dir()


def phantom_series_dir() -> Path:
    """The folder of the phantom series (``CT/`` and ``ground_truth.json``), generating it
    into the cache folder when no copy is found.

    Raises
    ------
    ScenarioError
        ``SURGTWIN_SAMPLE_DICOM`` names a folder without the phantom.
    """
    override = os.environ.get(SAMPLE_ENV)
    if override:
        folder = Path(override)
        if not _is_phantom(folder):
            raise ScenarioError(f"{SAMPLE_ENV}={override}: no phantom (CT/, ground_truth.json)")
        return folder
    checkout = _checkout_sample()
    if _is_phantom(checkout):
        return checkout
    from surgtwin.paths import cache_dir
    from surgtwin.phantom import generate

    folder = cache_dir() / "sample_dicom"
    if not _is_phantom(folder):
        generate(folder)
    return folder


def _truth(folder: Path) -> dict[str, Any]:
    from surgtwin.planning.case import phantom_ground_truth

    truth = phantom_ground_truth(folder)
    if truth is None:
        raise ScenarioError(f"{folder}: the phantom's ground truth cannot be read")
    return truth


def lesion_structure(truth: dict[str, Any]) -> Structure:
    """The lesion as a target structure: a surface of the ground truth's sphere (LPS mm)."""
    import trimesh

    from surgtwin.geometry.mesh import Mesh

    lesion = truth.get("lesion")
    if not isinstance(lesion, dict):
        raise ScenarioError("the phantom's ground truth has no lesion: regenerate the phantom")
    ball = trimesh.creation.icosphere(subdivisions=4, radius=float(lesion["radius_mm"]))
    colour = (0.85, 0.25, 0.3)
    mesh = Mesh(
        ball.vertices + lesion["centre"],
        ball.faces,
        name=LESION_NAME,
        color=colour,
        role="target",
        metadata={"source": "phantom ground truth"},
    )
    return Structure(LESION_NAME, "target", colour, source="mesh", mesh=mesh)


@functools.lru_cache(maxsize=4)
def _base_case(folder: str, lesion: bool) -> Plan:
    """The segmented phantom, built once per process (callers copy it)."""
    from surgtwin.planning.case import build_plan

    plan = build_plan(folder, presets=("bone",), name="Lumbar phantom")
    if lesion:
        plan.structures.add(lesion_structure(_truth(Path(folder))))
    return plan


def _expert_screws(plan: Plan, truth: dict[str, Any], levels: tuple[str, ...]) -> list[Implant]:
    from surgtwin.planning.case import place_implant

    work = copy_plan(plan)
    out = []
    for level in levels:
        for side in ("left", "right"):
            screw = truth["levels"][level]["pedicle_screws"][side]
            record, _spec = place_implant(
                work,
                "pedicle_screw",
                screw["entry"],
                screw["target"],
                diameter_mm=SCREW_DIAMETER_MM[level],
                name=f"{level} {side} pedicle screw",
            )
            out.append(record)
    return out


def _expert_resection(plan: Plan, truth: dict[str, Any]) -> list[Cut]:
    from surgtwin.geometry.resection import make_tool
    from surgtwin.planning.case import CaseGeometry
    from surgtwin.training.resections import measure_resection

    lesion = truth["lesion"]
    edge = 2.0 * (float(lesion["radius_mm"]) + EXPERT_MARGIN_MM)
    params: dict[str, Any] = {"centre": list(lesion["centre"]), "size": [edge, edge, edge]}
    geo = CaseGeometry(plan)
    bone, target = geo.structure("Bone"), geo.structure(LESION_NAME)
    m = measure_resection(geo.mesh(bone), [make_tool("box", params)], geo.mesh(target))
    params.update(
        {
            "structure_mm3": m.structure_mm3,
            "removed_mm3": m.removed_mm3,
            "remaining_mm3": m.structure_mm3 - m.removed_mm3,
            "margin_mm": m.margin_mm,
            "target_removed": m.target_removed,
            "targets": [LESION_NAME],
        }
    )
    return [Cut(f"{LESION_NAME} resection", bone.name, "box", params)]


def bundled_scenario(key: str) -> Scenario:
    """A bundled scenario by key (see the module notes); the phantom is segmented when the case
    is first needed (a few seconds, once per process).

    Raises
    ------
    ScenarioError
        Unknown key.
    """
    spec = BUNDLED.get(key)
    if spec is None:
        raise ScenarioError(f"no bundled scenario {key!r} (known: {', '.join(BUNDLED)})")
    if spec.lesion:
        allowed: tuple[str, ...] = ()
    else:
        from surgtwin.planning.implants import Catalogue

        allowed = tuple(s.key for s in Catalogue.builtin().of_kind("pedicle_screw"))
    info = ScenarioInfo(
        key=key,
        title=spec.title,
        task=spec.task,
        allowed_implants=allowed,
        tolerances=Tolerances(),
        time_limit_s=spec.time_limit_s,
        midline_x_mm=0.0,  # the phantom's canal is centred on x = 0
        source="bundled",
    )
    state: dict[str, Any] = {}

    def folder() -> Path:
        if "folder" not in state:
            state["folder"] = phantom_series_dir()
        return state["folder"]

    def case() -> Plan:
        return copy_plan(_base_case(str(folder()), spec.lesion), spec.title)

    def expert() -> tuple[list[Implant], list[Cut]]:
        truth = _truth(folder())
        base = _base_case(str(folder()), spec.lesion)
        cuts = _expert_resection(base, truth) if spec.lesion else []
        return _expert_screws(base, truth, spec.levels), cuts

    return Scenario(info, case, expert)


def user_scenario_dir() -> Path:
    """Where the user's own scenarios are listed from: ``<data folder>/scenarios``."""
    from surgtwin.paths import data_dir

    return data_dir() / "scenarios"


def list_scenarios(extra_folders: tuple[str | os.PathLike, ...] = ()) -> list[ScenarioInfo]:
    """The bundled scenarios, then the ``.surgscn`` files and scenario folders found in
    :func:`user_scenario_dir` and ``extra_folders`` (unreadable ones are skipped); each info's
    ``source`` says where it came from (``"bundled"`` or the path to load it from)."""
    from surgtwin.training.scenario import SCENARIO_MEMBER, SUFFIX, load_scenario

    out = [bundled_scenario(key).info for key in BUNDLED]
    for base in (user_scenario_dir(), *extra_folders):
        folder = Path(base)
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            is_scn = path.suffix.lower() == SUFFIX and path.is_file()
            if is_scn or (path / SCENARIO_MEMBER).is_file():
                try:
                    out.append(load_scenario(path).info)
                except (SurgTwinError, OSError):  # a damaged file must not hide the others
                    continue
    return out
