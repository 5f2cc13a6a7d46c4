"""Reading and writing training scenarios: ``.surgscn`` files and scenario folders.

:func:`load_scenario` takes a bundled key, a file or a folder; :func:`save_scenario` writes a
:class:`~surgtwin.training.scenario_model.Scenario` as either.

Scenario files
--------------
A ``.surgscn`` file is a SurgTwin plan file (:mod:`surgtwin.planning.planfile`) holding the
case plan, with two extra members::

    plan.json, meshes/, labelmap.seg.nrrd   the case (as any .surgplan)
    extra/scenario.json                     the scenario (schema below)
    extra/expert.json                       the expert plan's implants and cuts

A scenario folder holds ``scenario.json``, ``expert.json`` and ``case.surgplan``. Both are read
with the plan file's defences (unsafe member names, oversize members and zip bombs are
refused; nothing is extracted; no pickle). The expert plan is hidden from the trainee by the
application, not encrypted: whoever has the file can read it.

``scenario.json``::

    {"format": "surgtwin-scenario", "schema_version": 1,
     "key": "l4-bilateral", "title": "...", "task": "...",
     "allowed_implants": ["pedicle-6.5x45", ...] or null (any catalogue entry),
     "tolerances": {...}, "weights": {...},        see Tolerances and Weights
     "time_limit_s": 900 or null, "midline_x_mm": 0.0,
     "scoring": "how the score is made, in words"}

``expert.json``: ``{"format": "surgtwin-expert-plan", "schema_version": 1, "name": ...,
"implants": [Implant.to_dict()...], "cuts": [Cut.to_dict()...]}``: poses and tool parameters
in LPS mm. The structures are the case's.

Bundled scenarios (the phantom) are built from its ground truth by
:mod:`surgtwin.training.bundled`; :func:`load_scenario` takes their key as well.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from surgtwin.fileio import write_files
from surgtwin.planning.plan import Cut, Implant
from surgtwin.training.scenario_info import SCHEMA_VERSION, ScenarioError, ScenarioInfo
from surgtwin.training.scenario_model import Scenario, copy_plan

__all__ = ["SUFFIX", "expert_document", "load_scenario", "save_scenario"]

EXPERT_FORMAT = "surgtwin-expert-plan"
SUFFIX = ".surgscn"
SCENARIO_MEMBER = "scenario.json"
EXPERT_MEMBER = "expert.json"
CASE_FILE = "case.surgplan"
#: Largest scenario.json / expert.json accepted (bytes).
MAX_JSON_BYTES = 16 << 20


def expert_document(name: str, implants: Iterable[Implant], cuts: Iterable[Cut]) -> dict[str, Any]:
    """The expert plan as plain data: its implants and cuts (``expert.json``)."""
    return {
        "format": EXPERT_FORMAT,
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "implants": [i.to_dict() for i in implants],
        "cuts": [c.to_dict() for c in cuts],
    }


def _expert_records(doc: Any) -> tuple[list[Implant], list[Cut]]:
    if not isinstance(doc, dict) or doc.get("format") != EXPERT_FORMAT:
        raise ScenarioError("expert.json is not a SurgTwin expert plan")
    if not isinstance(doc.get("implants"), list) or not isinstance(doc.get("cuts"), list):
        raise ScenarioError("expert.json: implants and cuts must be lists")
    try:
        implants = [Implant.from_dict(d) for d in doc["implants"]]
        cuts = [Cut.from_dict(d) for d in doc["cuts"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise ScenarioError(f"expert.json is not valid: {exc}") from None
    return implants, cuts


def _json_bytes(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False).encode("utf-8")


def _parse_json(data: bytes, what: str, where: str) -> Any:
    if len(data) > MAX_JSON_BYTES:
        raise ScenarioError(f"{where}: {what} is larger than {MAX_JSON_BYTES} bytes")
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ScenarioError(f"{where}: {what} is not valid JSON ({exc})") from None


def save_scenario(scenario: Scenario, path: str | os.PathLike) -> Path:
    """Write a scenario: a ``.surgscn`` file when ``path`` ends so, else a folder.

    The case plan, the settings and the expert plan are written (atomically, file by file).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ScenarioError, PlanFileError
    """
    from surgtwin.planning.planfile import save_plan

    path = Path(path)
    implants, cuts = scenario._expert()
    expert = expert_document(f"{scenario.info.title} (expert)", implants, cuts)
    case = copy_plan(scenario._case(), scenario.info.title)
    members = {
        SCENARIO_MEMBER: _json_bytes(scenario.info.to_dict()),
        EXPERT_MEMBER: _json_bytes(expert),
    }
    if path.suffix.lower() == SUFFIX:
        return save_plan(case, path, extra=members)
    if path.exists() and not path.is_dir():
        raise ScenarioError(f"exists and is not a folder (use a {SUFFIX} name for a file)", path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ScenarioError(f"cannot make the folder ({exc.strerror or exc})", path) from None
    save_plan(case, path / CASE_FILE)
    write_files(
        [(path / name, lambda fh, data=data: fh.write(data)) for name, data in members.items()],
        error=ScenarioError,
    )
    return path


def _read_folder_json(folder: Path, name: str) -> Any:
    file = folder / name
    try:
        size = file.stat().st_size
        if size > MAX_JSON_BYTES:
            raise ScenarioError(f"{file}: larger than {MAX_JSON_BYTES} bytes")
        data = file.read_bytes()
    except FileNotFoundError:
        raise ScenarioError(f"{folder}: {name} is missing; this is not a scenario folder") from None
    except OSError as exc:
        raise ScenarioError(f"{file}: cannot read it ({exc.strerror or exc})") from None
    return _parse_json(data, name, str(folder))


def _read_zip_json(path: Path, name: str) -> Any:
    from surgtwin.planning.planfile import read_extra_member

    data = read_extra_member(path, name, max_bytes=MAX_JSON_BYTES)
    if data is None:
        raise ScenarioError(f"{path}: {name} is missing; this is not a SurgTwin scenario file")
    return _parse_json(data, name, str(path))


def load_scenario(source: str | os.PathLike) -> Scenario:
    """A scenario by bundled key (``"l4-bilateral"``), ``.surgscn`` file or folder.

    Only the settings are read at once; the case and the expert plan when first needed.

    Raises
    ------
    ScenarioError
        Unknown key, missing or damaged file, invalid settings.
    PlanFileError
        The case plan cannot be read (when it is first needed).
    """
    from surgtwin.planning.planfile import load_plan
    from surgtwin.training import bundled

    text = os.fspath(source)
    if text in bundled.BUNDLED:
        return bundled.bundled_scenario(text)
    path = Path(text)
    if path.is_dir():
        info = ScenarioInfo.from_dict(_read_folder_json(path, SCENARIO_MEMBER), str(path))
        case_file = path / CASE_FILE
        return Scenario(
            info,
            lambda: load_plan(case_file),
            lambda: _expert_records(_read_folder_json(path, EXPERT_MEMBER)),
        )
    if path.is_file():
        info = ScenarioInfo.from_dict(_read_zip_json(path, SCENARIO_MEMBER), str(path))
        return Scenario(
            info,
            lambda: load_plan(path),
            lambda: _expert_records(_read_zip_json(path, EXPERT_MEMBER)),
        )
    keys = ", ".join(bundled.BUNDLED)
    raise ScenarioError(
        f"no scenario {text!r}: neither a bundled scenario ({keys}) nor a {SUFFIX} file or "
        "scenario folder"
    )
