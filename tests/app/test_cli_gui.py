"""``surgtwin gui PATH --screenshot FILE.png``: opens PATH as ``make run`` does, saves the window,
exits; bad input gives one line naming the file and exit 1, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from guitools import assert_not_blank

from testdata import REPO

pytestmark = pytest.mark.gui


def _gui(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    return subprocess.run(
        [sys.executable, "-m", "surgtwin.cli", "gui", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO,
    )


def test_screenshot_of_the_sample(tmp_path):
    from PyQt6.QtGui import QImage

    out = tmp_path / "window.png"
    result = _gui("sample_dicom", "--screenshot", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("window.png")
    image = QImage(str(out))
    assert image.width() >= 1200 and image.height() >= 800
    assert_not_blank(out)
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("kind", ["empty folder", "not a plan", "missing"])
def test_bad_input_is_one_line(tmp_path, kind):
    if kind == "empty folder":
        path = tmp_path / "empty"
        path.mkdir()
    elif kind == "not a plan":
        path = tmp_path / "bad.surgplan"
        path.write_bytes(b"junk")
    else:
        path = tmp_path / "missing"
    result = _gui(str(path), "--screenshot", str(tmp_path / "x.png"), timeout=120)
    assert result.returncode == 1
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("surgtwin")]
    assert len(lines) == 1 and str(path) in lines[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x.png").exists()
