"""Peak memory of a piece of work, measured in a fresh Python process.

``VmHWM`` (peak resident set) starts afresh at exec, unlike ``ru_maxrss``, which a child inherits
from its parent; the probe reads it before and after the work and reports the growth in bytes.
"""

from __future__ import annotations

import json
import subprocess
import sys

PRELUDE = """
import json, sys
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
"""


def measure(probe: str, *args: str) -> dict:
    """Run ``probe`` (which prints one JSON line, using ``hwm()``) and return its JSON."""
    out = subprocess.run(
        [sys.executable, "-c", PRELUDE + probe, *args], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])
