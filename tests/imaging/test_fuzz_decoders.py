"""Damaged compressed pixel data (JPEG, JPEG-LS, JPEG 2000, RLE) ends in a clear error, never a
crash or a traceback: mutated copies of real files are loaded in a subprocess."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap

from testdata import require_data

SYNTAXES = [
    "JPEG2000LosslessOnlyTransferSyntax_1.2.840.10008.1.2.4.90",
    "JPEG2000TransferSyntax_1.2.840.10008.1.2.4.91",
    "JPEGLSLosslessTransferSyntax_1.2.840.10008.1.2.4.80",
    "JPEGProcess14SV1TransferSyntax_1.2.840.10008.1.2.4.70",
    "JPEGProcess1TransferSyntax_1.2.840.10008.1.2.4.50",
    "JPEGProcess2_4TransferSyntax_1.2.840.10008.1.2.4.51",
    "RLELosslessTransferSyntax_1.2.840.10008.1.2.5",
]

RUNNER = textwrap.dedent(
    """
    import io, json, sys
    from contextlib import redirect_stderr, redirect_stdout
    from surgtwin.cli import main
    for path in sys.argv[1:]:
        err = io.StringIO()
        with redirect_stdout(io.StringIO()), redirect_stderr(err):
            code = main(["load", path])
        print(json.dumps({"path": path, "code": code, "stderr": err.getvalue()}), flush=True)
    """
)


def test_mutated_compressed_files_fail_cleanly(tmp_path):
    folder = require_data("syntaxes", "cornerstone")
    rng = random.Random(20261121)
    paths = []
    for n in range(84):
        src = folder / f"CTImage.dcm_{SYNTAXES[n % len(SYNTAXES)]}.dcm"
        data = bytearray(src.read_bytes())
        start = len(data) // 3
        for _ in range(rng.choice([1, 5, 20, 100])):
            data[rng.randrange(start, len(data))] = rng.randrange(256)
        if n % 5 == 0:
            data = data[: rng.randrange(start, len(data))]
        path = tmp_path / f"mutant{n:03d}.dcm"
        path.write_bytes(data)
        paths.append(str(path))
    run = subprocess.run(
        [sys.executable, "-c", RUNNER, *paths], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-2000:]
    records = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert len(records) == len(paths)
    for rec in records:
        assert rec["code"] in (0, 1), rec
        assert "Traceback" not in rec["stderr"] and "internal error" not in rec["stderr"], rec
        if rec["code"]:
            assert rec["path"].rsplit("/", 1)[-1] in rec["stderr"]
    # most mutations hit the entropy-coded data and some must be refused
    assert sum(rec["code"] == 1 for rec in records) >= 5
