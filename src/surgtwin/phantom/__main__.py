"""Command line: ``python -m surgtwin.phantom [-o OUT_DIR]`` writes the lumbar phantom."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from surgtwin.phantom import generate


def main(argv: list[str] | None = None) -> int:
    """Generate the phantom series; return the process exit code.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success.
    """
    parser = argparse.ArgumentParser(
        prog="python -m surgtwin.phantom",
        description="Write the deterministic digital lumbar spine (L3-L5) CT phantom.",
    )
    parser.add_argument(
        "-o",
        "--out-dir",
        type=Path,
        default=Path("sample_dicom"),
        help="output directory (default: sample_dicom); the series goes to OUT_DIR/CT",
    )
    args = parser.parse_args(argv)
    series = generate(args.out_dir)
    count = len(list(series.glob("IM*.dcm")))
    print(f"wrote {count} slices to {series} and ground truth to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
