"""Patient directions: medial/lateral from the side of the midline, angles of a direction."""

from __future__ import annotations

import math

import pytest

from surgtwin.training.directions import (
    PatientFrame,
    angle_between_deg,
    describe_offset,
    insertion_angles,
)


def test_medial_and_lateral_depend_on_the_side():
    left, right = PatientFrame(20.0), PatientFrame(-20.0)
    assert left.side == "left" and right.side == "right" and PatientFrame(0.4).side is None
    assert left.dominant([1.0, 0, 0]) == "lateral" and right.dominant([1.0, 0, 0]) == "medial"
    assert PatientFrame(0.0).dominant([1.0, 0, 0]) == "left"
    assert left.dominant([0, 0, -2.0]) == "caudal" and left.dominant([0, 3.0, 0]) == "posterior"
    assert PatientFrame(-5.0, midline_x_mm=-10.0).side == "left"


def test_describe_offset():
    frame = PatientFrame(20.0)
    assert describe_offset([-3.1, 0.2, 1.04], frame) == "3.1 mm medial and 1.0 mm cranial"
    assert describe_offset([0.0, -0.2, 0.1], frame) == "0.2 mm anterior"
    assert describe_offset([1, 2, 3], frame, most=1) == "3.0 mm cranial"


def test_insertion_angles():
    theta = math.radians(15.0)
    # the ideal left L4 screw: anteromedial, 15 degrees from the sagittal plane
    left = [-math.sin(theta), -math.cos(theta), 0.0]
    assert insertion_angles(left, PatientFrame(20.0)) == pytest.approx((15.0, 0.0))
    right = [math.sin(theta), -math.cos(theta), 0.0]
    assert insertion_angles(right, PatientFrame(-20.0)) == pytest.approx((15.0, 0.0))
    up = [0.0, -1.0, math.tan(math.radians(10.0))]
    assert insertion_angles(up, PatientFrame(20.0)) == pytest.approx((0.0, 10.0))
    assert angle_between_deg([1, 0, 0], [1, 1e-9, 0]) == pytest.approx(0.0, abs=1e-6)
    assert angle_between_deg([1, 0, 0], [-1, 0, 0]) == pytest.approx(180.0)
