"""The evented plan model: events fire once per real change, batches emit once, exact values."""

from __future__ import annotations

import gc
import math

import numpy as np
import pytest

from surgtwin.geometry.mesh import Mesh
from surgtwin.planning.events import Event, EventEmitter, values_equal
from surgtwin.planning.plan import (
    CaseReference,
    Cut,
    Implant,
    Measurement,
    Plan,
    Structure,
    default_margin_mm,
)


def screw(name: str = "L4 left pedicle screw", x: float = 10.0) -> Implant:
    pose = np.eye(4)
    pose[:3, 3] = (x, -20.0, 35.5)
    return Implant(name, "pedicle_screw", "generic-6.5x45", {"diameter_mm": 6.5}, pose)


def recorder(plan: Plan) -> list[Event]:
    seen: list[Event] = []
    plan.events.connect(seen.append)
    return seen


def test_emit_only_on_real_change_numpy_aware():
    em = EventEmitter()
    seen: list[Event] = []
    em.connect(seen.append)
    a = np.eye(4)
    assert not em.emit("pose", a, a.copy())  # equal arrays: nothing
    assert not em.emit("params", {"d": np.array([1.0, np.nan])}, {"d": np.array([1.0, np.nan])})
    assert not em.emit("opacity", 0.5, 0.5)
    assert em.emit("pose", a, a * 2)
    assert em.emit("pose", np.zeros(3), np.zeros(4))  # shape change is a change
    assert len(seen) == 2 and seen[0].name == "pose" and seen[0].kind == "changed"


def test_values_equal_records_with_arrays():
    assert values_equal(screw(), screw())
    assert not values_equal(screw(), screw(x=10.000000001))
    assert not values_equal((1, 2), [1, 2])


def test_batch_emits_once_per_field_and_nothing_for_round_trips():
    plan = Plan()
    seen = recorder(plan)
    with plan.batch():
        for i in range(10):
            plan.notes = f"draft {i}"
        plan.name = "L4-L5 fusion"
        plan.name = "untitled"  # changed back: no event
        with plan.batch():  # nested batches flush with the outermost
            plan.notes = "final"
        assert seen == []
    assert [(e.name, e.old, e.new) for e in seen] == [("notes", "", "final")]


def test_connect_disconnect_and_weak_methods():
    em = EventEmitter()

    class View:
        def __init__(self):
            self.n = 0

        def on(self, event):
            self.n += 1

    view = View()
    em.connect(view.on)
    em.connect(view.on)  # connecting twice calls once
    em.emit("x", 1, 2)
    assert view.n == 1
    em.disconnect(view.on)
    em.emit("x", 2, 3)
    assert view.n == 1
    em.connect(view.on)
    del view
    gc.collect()
    assert em.n_callbacks == 0  # a deleted view is dropped, not kept alive
    em.emit("x", 3, 4)


def test_collections_emit_added_changed_removed_once():
    plan = Plan()
    seen = recorder(plan)
    plan.implants.add(screw())
    plan.implants.replace(screw())  # same values: no event
    moved = screw(x=12.0)
    plan.implants.replace(moved)
    plan.implants.remove(moved.name)
    assert [(e.name, e.key, e.kind) for e in seen] == [
        ("implants", "L4 left pedicle screw", "added"),
        ("implants", "L4 left pedicle screw", "changed"),
        ("implants", "L4 left pedicle screw", "removed"),
    ]
    with pytest.raises(ValueError, match="has a implant"):
        plan.implants.add(screw())
        plan.implants.add(screw())
    with pytest.raises(KeyError, match="no structure named 'L9'"):
        plan.structures["L9"]


def test_add_then_remove_in_a_batch_emits_nothing():
    plan = Plan()
    seen = recorder(plan)
    with plan.batch():
        plan.implants.add(screw())
        plan.implants.remove("L4 left pedicle screw")
    assert seen == []


def test_structure_defaults_and_validation():
    canal = Structure("spinal canal", "critical", (0.95, 0.8, 0.2), label_value=3)
    bone = Structure("L4", "bone", label_value=1)
    assert canal.margin_mm == 2.0 == default_margin_mm("critical")
    assert bone.margin_mm == 0.0
    assert Structure("aorta", "critical", label_value=4, margin_mm=5).margin_mm == 5.0
    tri = Mesh(np.eye(3), [[0, 1, 2]], name="plate")
    assert Structure("plate", source="mesh", mesh=tri).mesh is tri
    with pytest.raises(ValueError, match="role"):
        Structure("x", "organ", label_value=1)
    with pytest.raises(ValueError, match="label value"):
        Structure("x", "bone")
    with pytest.raises(ValueError, match="opacity"):
        Structure("x", label_value=1, opacity=1.5)
    with pytest.raises(ValueError, match="margin"):
        Structure("x", label_value=1, margin_mm=-1)


def test_implant_pose_is_copied_and_read_only():
    pose = np.eye(4)
    imp = Implant("cage", "cage", "c1", {"height_mm": np.float32(11.0)}, pose)
    pose[0, 3] = 99.0
    assert imp.pose[0, 3] == 0.0
    assert type(imp.parameters["height_mm"]) is float
    with pytest.raises(ValueError):
        imp.pose[0, 3] = 1.0
    with pytest.raises(ValueError, match="last row"):
        Implant("bad", "cage", pose=np.ones((4, 4)))
    with pytest.raises(TypeError, match="cannot be stored"):
        Implant("bad", "cage", parameters={"f": object()})


def test_measurements_in_mm_and_degrees():
    d = Measurement("pedicle width", "distance", [(0, 0, 0), (3, 4, 12)])
    assert d.value == 13.0 and d.unit == "mm"
    right = Measurement("a", "angle", [(1, 0, 0), (0, 0, 0), (0, 5, 0)])
    assert right.value == pytest.approx(90.0, abs=1e-12) and right.unit == "degrees"
    lordosis = Measurement(
        "L1-S1", "angle", [(0, 0, 0), (0, 0, 10), (0, math.sin(0.7), 10 + math.cos(0.7))]
    )
    assert lordosis.value == pytest.approx(180 - math.degrees(0.7), abs=1e-9)
    tiny = Measurement("t", "angle", [(1, 0, 0), (0, 0, 0), (1, 1e-9, 0)])
    assert tiny.value == pytest.approx(math.degrees(1e-9), rel=1e-6)
    with pytest.raises(ValueError, match="3 finite"):
        Measurement("a", "angle", [(0, 0, 0), (1, 1, 1)])


def test_to_dict_captures_everything_and_is_json_ready():
    import json

    plan = Plan("fusion", CaseReference("1.2.3", ("1.2.3.4",), "1.2.3.9", "/data/ct"))
    plan.structures.add(Structure("L4", "bone", label_value=1))
    plan.implants.add(screw())
    plan.cuts.add(Cut("osteotomy", "L4", "plane", {"point": [0, 0, 0], "normal": [0, 0, 1]}))
    plan.measurements.add(Measurement("w", "distance", [(0, 0, 0), (0, 0, 7.5)]))
    plan.notes = "watch the left pedicle"
    d = plan.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["implants"][0]["pose"][0][3] == 10.0
    assert d["measurements"][0]["value"] == 7.5
    assert d["structures"][0]["margin_mm"] == 0.0
    with pytest.raises(ValueError, match="cut tool"):
        Cut("c", "L4", "laser")
