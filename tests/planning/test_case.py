"""planning.case on the bundled phantom: fields through the on-disk cache, progress and cancel
of field builds and of build_plan."""

from __future__ import annotations

import numpy as np
import pytest

from surgtwin.errors import LoadCancelled
from surgtwin.geometry.field_cache import FieldCache
from surgtwin.planning import case
from surgtwin.planning.commands import CommandStack
from surgtwin.planning.cuts import plane_cut
from surgtwin.planning.plan import Plan
from surgtwin.segmentation.labelmap import LabelMap
from testdata import REPO

PHANTOM = REPO / "sample_dicom"


@pytest.fixture(scope="module")
def built() -> Plan:
    return case.build_plan(PHANTOM)


def _probe(field) -> np.ndarray:
    lo = field.origin
    hi = lo + (np.array(field.values.shape[::-1]) - 1) * field.spacing
    return np.random.default_rng(5).uniform(lo, hi, size=(5000, 3))


def test_second_build_is_a_disk_cache_hit_with_identical_samples(built, tmp_path, monkeypatch):
    cache = FieldCache(tmp_path)
    canal = built.structures[case.CANAL_NAME]
    monkeypatch.setattr(case, "_FIELDS", type(case._FIELDS)())  # an empty in-process cache
    seen: list[tuple[int, int]] = []
    first = case.CaseGeometry(built, cache).field(canal, progress=lambda d, t: seen.append((d, t)))
    assert (cache.misses, cache.writes, cache.hits) == (1, 1, 0)
    assert seen[-1][0] == seen[-1][1] and len(seen) > 3
    case._FIELDS.clear()  # as after restarting the application
    seen.clear()
    again = case.CaseGeometry(built, cache).field(canal, progress=lambda d, t: seen.append((d, t)))
    assert cache.hits == 1 and again is not first and seen == [(1, 1)]
    probe = _probe(first)
    np.testing.assert_array_equal(again.sample(probe)[0], first.sample(probe)[0])
    # the exact queries come back with the surface
    np.testing.assert_array_equal(again.exact_at(probe[:20]), first.exact_at(probe[:20]))
    # within the process it is the same object, without reading the disk
    assert case.CaseGeometry(built, cache).field(canal) is again and cache.hits == 1


def test_cancelled_field_build_raises_and_caches_nothing(built, tmp_path, monkeypatch):
    cache = FieldCache(tmp_path)
    monkeypatch.setattr(case, "_FIELDS", type(case._FIELDS)())
    geo = case.CaseGeometry(built, cache)
    seen: list[int] = []
    with pytest.raises(LoadCancelled, match="cancelled"):
        geo.field(
            built.structures["Bone"],
            progress=lambda d, t: seen.append(d),
            cancel=lambda: bool(seen) and seen[-1] > 100,
        )
    assert cache.writes == 0 and not cache.entries() and not case._FIELDS


def test_fields_follow_the_plan_edits(built, tmp_path, monkeypatch):
    """A cut changes the label map and the surface: the same CaseGeometry gives the new field,
    and undo gives back the cached one."""
    lm = built.labelmap
    plan = Plan(built.name, built.case, LabelMap(lm.geometry, lm.array.copy(), lm.labels.values()))
    for s in built.structures.values():
        plan.structures.add(s)
    cache = FieldCache(tmp_path)
    geo = case.CaseGeometry(plan, cache)
    before = geo.field(plan.structures["Bone"])
    top = np.array([[0.0, -23.0, 6.0]])  # inside the L4 body, above the cut
    assert before.sample(top)[0][0] < -3.0
    stack = CommandStack(plan)
    stack.push(plane_cut(plan, "Bone", [0.0, 0.0, 0.5], [0.0, 0.0, 1.0], geometry=geo))
    after = geo.field(plan.structures["Bone"])
    assert after is not before and after.sample(top)[0][0] == pytest.approx(5.5, abs=0.1)
    stack.undo()
    assert geo.field(plan.structures["Bone"]) is before


def test_build_plan_can_be_cancelled(monkeypatch):
    with pytest.raises(LoadCancelled, match="loading"):
        case.build_plan(PHANTOM, cancel=lambda: True)
    # cancelled after the bone preset, before the canal is grown
    import surgtwin.segmentation as segmentation

    done: list[str] = []
    real = segmentation.apply_preset

    def preset(labelmap, volume, key):
        real(labelmap, volume, key)
        done.append(key)

    monkeypatch.setattr(segmentation, "apply_preset", preset)
    with pytest.raises(LoadCancelled, match="building the plan was cancelled"):
        case.build_plan(PHANTOM, cancel=lambda: bool(done))
    assert done == ["bone"]
