"""Hostile and broken input: every file ends in a clear message and exit code 0, 1 or 2.

The shared bad files (``$SURGTWIN_TEST_DATA/bad``) and the hostile files generated here are all
run through ``surgtwin info --json`` and ``surgtwin load`` in ONE subprocess with a memory limit
and a timeout, so that a crash, a hang or a huge allocation fails the test instead of the test run.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import shutil
import signal
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from surgtwin.errors import DicomError
from surgtwin.imaging import load, scan
from testdata import data_root

try:
    from .dicom_factory import uid, write_ct_series
except ImportError:  # tests/ is not a package: pytest puts this folder on sys.path
    from dicom_factory import uid, write_ct_series

DATA = data_root()
if not (DATA / "bad").is_dir():
    _reason = f"test data not found: {DATA / 'bad'} (set SURGTWIN_TEST_DATA)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(_reason, pytrace=False)
    pytest.skip(_reason, allow_module_level=True)

BAD = DATA / "bad"
MEMORY_LIMIT = 3 << 30  # address space of the subprocess
TIMEOUT_S = 120
COMMAND_BUDGET_S = 10  # per file and command, inside the subprocess
EXIT_CODES = {0, 1, 2}

# ---------------------------------------------------------------------------- raw DICOM bytes

_LONG_VRS = {b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN"}
_UNDEFINED = 0xFFFFFFFF
_ITEM = struct.pack("<HHI", 0xFFFE, 0xE000, _UNDEFINED)
_ITEM_END = struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
_SEQ_END = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
_CONTENT_SEQUENCE = 0x0040A730


def _element_header(tag: int, vr: bytes, length: int, implicit: bool) -> bytes:
    group, elem = tag >> 16, tag & 0xFFFF
    if implicit:
        return struct.pack("<HHI", group, elem, length)
    if vr in _LONG_VRS:
        return struct.pack("<HH2sHI", group, elem, vr, 0, length)
    return struct.pack("<HH2sH", group, elem, vr, length)


def _element(tag: int, vr: bytes, value: bytes, implicit: bool) -> bytes:
    return _element_header(tag, vr, len(value), implicit) + value


def _image_head(implicit: bool, rows: int = 4, columns: int = 4, **more) -> bytes:
    """A Part 10 CT header (everything up to group 0028) written by pydicom."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = uid("hostile", implicit, rows, columns, sorted(more))
    meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
    ds.StudyInstanceUID = uid("hostile study")
    ds.SeriesInstanceUID = uid("hostile series", meta.MediaStorageSOPInstanceUID)
    ds.ImagePositionPatient = [0, 0, 0]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.PixelSpacing = [1, 1]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    for keyword, value in more.items():
        setattr(ds, keyword, value)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _pixels(implicit: bool, n_bytes: int = 32) -> bytes:
    return _element(0x7FE00010, b"OW", bytes(n_bytes), implicit)


def deep_undefined(depth: int, implicit: bool) -> bytes:
    """A content sequence nested ``depth`` levels, undefined lengths, then pixel data."""
    sq = _element_header(_CONTENT_SEQUENCE, b"SQ", _UNDEFINED, implicit)
    nested = (sq + _ITEM) * depth + (_ITEM_END + _SEQ_END) * depth
    return _image_head(implicit) + nested + _pixels(implicit)


def deep_defined(depth: int) -> bytes:
    """The same nesting with every sequence and item length given (explicit VR)."""
    content = b""
    for _ in range(depth):
        item = struct.pack("<HHI", 0xFFFE, 0xE000, len(content)) + content
        content = _element(_CONTENT_SEQUENCE, b"SQ", item, False)
    return _image_head(False) + content + _pixels(False)


def huge_dims() -> bytes:
    """65535 x 65535 x 100000 frames declared, 16 bytes of pixel data present."""
    return _image_head(False, rows=65535, columns=65535, NumberOfFrames="100000") + _pixels(
        False, 16
    )


def huge_private_element() -> bytes:
    """A private OB element claiming 4 GB (0xFFFFFFF0 bytes) in a 1 kB file."""
    creator = _element(0x00290010, b"LO", b"SURGTWIN", False)
    huge = _element_header(0x00291010, b"OB", 0xFFFFFFF0, False) + bytes(64)
    return _image_head(False) + creator + huge + _pixels(False)


def huge_pixel_length() -> bytes:
    """A 512 x 512 image whose pixel data claims 4 GB (0xFFFFFFF0 bytes); 32 bytes are there."""
    pixels = _element_header(0x7FE00010, b"OW", 0xFFFFFFF0, False) + bytes(32)
    return _image_head(False, rows=512, columns=512) + pixels


def _zip_bomb(path: Path) -> None:
    """200 MB of zeros, deflated to ~200 kB."""
    chunk = bytes(1 << 20)
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf,
        zf.open("bomb.dcm", "w") as f,
    ):
        for _ in range(200):
            f.write(chunk)


def _zip_claiming_size(path: Path, member: bytes, claimed: int) -> None:
    """A stored member whose local and central headers claim ``claimed`` bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("image.dcm", member)
    data = bytearray(buf.getvalue())
    local = data.index(b"PK\x03\x04")
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, local + 22, claimed)
    struct.pack_into("<I", data, central + 24, claimed)
    path.write_bytes(bytes(data))


def _real_ct_slice() -> Path | None:
    for candidate in (
        DATA / "ct-head-small" / "CTHead1.dcm",
        BAD / "pydicom" / "test_files" / "CT_small.dcm",
    ):
        if candidate.is_file():
            return candidate
    return None


def _truncated_copy(src: Path, dst: Path) -> None:
    """Cut ``src`` in the middle of its pixel data (which must be its last element)."""
    ds = pydicom.dcmread(src)
    data = src.read_bytes()
    pixel_bytes = len(ds.PixelData)
    assert data.endswith(ds.PixelData), "pixel data must end the file"
    dst.write_bytes(data[: len(data) - pixel_bytes // 2])


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict[str, Path]:
    """The generated hostile files and folders, by name."""
    root = tmp_path_factory.mktemp("hostile")
    rng = np.random.default_rng(1234)
    files: dict[str, Path] = {}

    def put(name: str, data: bytes) -> Path:
        path = root / name
        path.write_bytes(data)
        files[name] = path
        return path

    put("empty.dcm", b"")
    put("random100.dcm", rng.bytes(100))
    put("dicm_then_garbage.dcm", bytes(128) + b"DICM" + rng.bytes(600))
    head = _image_head(False)
    meta_end = 132 + 12 + struct.unpack_from("<I", head, 140)[0]  # after group 0002
    put("meta_then_garbage.dcm", head[:meta_end] + rng.bytes(600))
    put("huge_dims.dcm", huge_dims())
    put("deep_explicit_undefined.dcm", deep_undefined(5000, implicit=False))
    put("deep_implicit_undefined.dcm", deep_undefined(5000, implicit=True))
    put("deep_explicit_defined.dcm", deep_defined(5000))
    put("huge_private_element.dcm", huge_private_element())
    put("huge_pixel_length.dcm", huge_pixel_length())
    put("not_dicom.dcm", b"This is a text file that happens to be named .dcm\n" * 20)
    put(".dcm", b"not dicom either, and hidden\n")

    real = _real_ct_slice()
    if real is None:  # pragma: no cover - the shared data has both
        real = write_ct_series(root / "factory", np.zeros((1, 32, 32), np.int16))[0]
    _truncated_copy(real, root / "truncated_ct.dcm")
    files["truncated_ct.dcm"] = root / "truncated_ct.dcm"

    _zip_bomb(root / "zip_bomb.zip")
    files["zip_bomb.zip"] = root / "zip_bomb.zip"
    _zip_claiming_size(root / "zip_claims_4gb.zip", real.read_bytes(), 0xFFFFFFF0)
    files["zip_claims_4gb.zip"] = root / "zip_claims_4gb.zip"

    loop = root / "symlink_loop"
    write_ct_series(loop / "series", np.zeros((3, 8, 8), np.int16), spacing=(1, 1, 2))
    (loop / "self").symlink_to(loop, target_is_directory=True)
    (loop / "series" / "up").symlink_to("..", target_is_directory=True)
    (loop / "a.dcm").symlink_to("b.dcm")
    (loop / "b.dcm").symlink_to("a.dcm")
    files["symlink_loop"] = loop

    folder = root / "dir_named_dcm"
    (folder / "x.dcm").mkdir(parents=True)
    files["dir_named_dcm"] = folder
    files["x.dcm"] = folder / "x.dcm"
    return files


# ---------------------------------------------------------------------------- the subprocess

RUNNER = r"""
import contextlib, io, json, signal, sys, time, traceback
from surgtwin.cli import main


class TooSlow(BaseException):  # not an Exception, so that the CLI cannot swallow it
    pass


def too_slow(signum, frame):
    raise TooSlow()


signal.signal(signal.SIGALRM, too_slow)
budget = int(sys.argv[2])

with open(sys.argv[1], encoding="utf-8") as f:
    paths = [line.rstrip("\n") for line in f if line.strip()]
for path in paths:
    record = {"path": path}
    for name, argv in (("info", ["info", path, "--json"]), ("load", ["load", path])):
        out, err = io.StringIO(), io.StringIO()
        start = time.monotonic()
        signal.alarm(budget)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(argv)
        except SystemExit as exc:
            code = exc.code
        except TooSlow:
            code = f"still running after {budget} s (stopped)"
        except BaseException as exc:  # recorded, never hidden: the CLI must not let one out
            code = f"raised {type(exc).__name__}"
            err.write(traceback.format_exc())
        finally:
            signal.alarm(0)
        record[name] = {
            "code": code,
            "stdout": out.getvalue(),
            "stderr": err.getvalue(),
            "seconds": round(time.monotonic() - start, 3),
        }
    print(json.dumps(record), flush=True)
print("DONE", flush=True)
"""


def _bad_files() -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(BAD):
        dirnames.sort()
        found.extend(Path(dirpath) / name for name in sorted(filenames))
    return found


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


@pytest.fixture(scope="module")
def run(hostile, tmp_path_factory):
    """Run info and load on every bad and hostile path in one subprocess; records by path."""
    paths = [str(p) for p in _bad_files()] + [str(p) for p in hostile.values()]
    work = tmp_path_factory.mktemp("runner")
    listing = work / "paths.txt"
    listing.write_text("\n".join(paths) + "\n", encoding="utf-8")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MALLOC_ARENA_MAX="2")
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-X",
                "faulthandler",
                "-c",
                RUNNER,
                str(listing),
                str(COMMAND_BUDGET_S),
            ],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            preexec_fn=_limit_memory,
            env=env,
            cwd=work,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        last = out.strip().splitlines()[-1:] or ["nothing"]
        pytest.fail(f"the CLI run did not finish in {TIMEOUT_S} s; last record: {last[0][:300]}")
    records = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            rec = json.loads(line)
            records[rec["path"]] = rec
    return proc, paths, records


def _record(run, path: Path) -> dict:
    _proc, _paths, records = run
    assert str(path) in records, f"no record for {path}"
    return records[str(path)]


def _said(text: str, path: Path) -> str:
    """What a message says, without the file's path (whose name may contain any word)."""
    return text.replace(str(path), "<path>").lower()


def _skipped_reasons(info: dict) -> str:
    try:
        doc = json.loads(info["stdout"])
    except json.JSONDecodeError:
        return ""
    return " | ".join(s["reason"] for s in doc.get("skipped", []))


# ---------------------------------------------------------------------------- every file


def test_every_file_ends_in_a_clear_exit(run):
    proc, paths, records = run
    tail = proc.stderr[-2000:]
    assert proc.returncode == 0, f"the CLI run died (return code {proc.returncode}): {tail}"
    assert proc.stdout.rstrip().endswith("DONE"), tail
    assert "Traceback" not in proc.stderr, tail
    missing = [p for p in paths if p not in records]
    assert not missing, f"no record for {missing[:5]}"

    problems = []
    for path in paths:
        rec = records[path]
        for command in ("info", "load"):
            r = rec[command]
            err = r["stderr"]
            where = f"{command} {path}: exit {r['code']!r}: {err.strip()[:300]!r}"
            if r["code"] not in EXIT_CODES:
                problems.append(f"{where} (exit code not 0, 1 or 2)")
            if "Traceback" in err or "internal error" in err:
                problems.append(f"{where} (traceback or internal error)")
            if r["code"] != 0:
                named = path in err or os.path.basename(path.rstrip("/")) in err
                if not named or len(err.strip()) <= 20:
                    problems.append(f"{where} (the message must name the file and say why)")
    assert not problems, "\n".join(problems)


def test_info_exit_code_matches_whether_load_works(run):
    """``info`` exits 0 exactly when a series is loadable, so ``load`` must then succeed."""
    _proc, paths, records = run
    mismatches = [
        f"{p}: info {records[p]['info']['code']}, load {records[p]['load']['code']}: "
        f"{records[p]['load']['stderr'].strip()[:200]}"
        for p in paths
        if p in records and (records[p]["info"]["code"] == 0) != (records[p]["load"]["code"] == 0)
    ]
    assert not mismatches, "\n".join(mismatches)


def test_no_file_takes_long(run):
    _proc, paths, records = run
    slow = [
        (p, records[p][c]["seconds"])
        for p in paths
        if p in records
        for c in ("info", "load")
        if records[p][c]["seconds"] > 5
    ]
    assert not slow, slow


# ---------------------------------------------------------------------------- specific outcomes


def test_mr_truncated_is_refused_as_truncated(run):
    rec = _record(run, BAD / "pydicom" / "test_files" / "MR_truncated.dcm")
    assert rec["info"]["code"] == 2
    assert rec["load"]["code"] == 1
    assert "truncated" in rec["load"]["stderr"]
    doc = json.loads(rec["info"]["stdout"])
    codes = {f["code"] for s in doc["series"] for f in s["findings"]}
    assert "truncated" in codes


def test_truncated_real_ct_slice(run, hostile):
    rec = _record(run, hostile["truncated_ct.dcm"])
    assert rec["load"]["code"] == 1
    assert "truncated" in rec["load"]["stderr"]


@pytest.mark.parametrize(
    "name",
    ["deep_explicit_undefined.dcm", "deep_implicit_undefined.dcm", "deep_explicit_defined.dcm"],
)
def test_deep_nesting_is_refused_with_a_reason(run, hostile, name):
    path = hostile[name]
    rec = _record(run, path)
    if name == "deep_explicit_defined.dcm" and rec["info"]["code"] == 0:
        # Every length is given, so a reader may skip the sequence unread and load the image
        # (4 x 4 pixels): safe, and then it must load.
        assert rec["load"]["code"] == 0, rec["load"]["stderr"]
        (series,) = json.loads(rec["info"]["stdout"])["series"]
        assert series["size"] == [4, 4, 1]
        return
    assert rec["info"]["code"] == 2
    assert rec["load"]["code"] == 1
    words = ("nest", "damaged", "deep")
    reasons = _said(_skipped_reasons(rec["info"]), path)
    assert any(w in reasons for w in words), reasons
    # `surgtwin load file.dcm` must say why this file cannot be used, not only that it was skipped
    said = _said(rec["load"]["stderr"], path)
    assert any(w in said for w in words), said


def test_huge_dimensions_are_refused_by_size(run, hostile):
    rec = _record(run, hostile["huge_dims.dcm"])
    assert rec["info"]["code"] == 2
    assert rec["load"]["code"] == 1
    err = _said(rec["load"]["stderr"], hostile["huge_dims.dcm"])
    assert "gib" in err or "size" in err, err
    assert "65535" in err


class _TooSlow(BaseException):
    """Not an Exception, so that the code under test cannot swallow it."""


@contextlib.contextmanager
def _time_limit(seconds: int):
    def stop(signum, frame):
        raise _TooSlow(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    except _TooSlow as exc:
        pytest.fail(str(exc), pytrace=False)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_huge_dimensions_allocate_nothing(hostile):
    """In this process too: refusing the file is quick and touches no gigabytes of memory."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux
    with _time_limit(5):
        series = scan(hostile["huge_dims.dcm"]).series
    assert len(series) == 1 and not series[0].loadable
    message = series[0].errors()[0].message
    assert "GiB" in message
    with pytest.raises(DicomError) as err, _time_limit(5):
        load(series[0], cache=None)
    assert "GiB" in str(err.value)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 200


@pytest.mark.parametrize("name", ["huge_private_element.dcm", "huge_pixel_length.dcm"])
def test_element_claiming_4gb(run, hostile, name):
    rec = _record(run, hostile[name])
    assert rec["info"]["code"] == 2
    assert rec["load"]["code"] == 1
    said = _said(rec["load"]["stderr"], hostile[name])
    assert any(w in said for w in ("truncated", "damaged", "too large", "ends before")), said


_DAMAGED = ("damaged", "corrupt", "not a readable", "not a dicom", "not dicom", "truncated")


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("empty.dcm", ("empty",)),
        ("random100.dcm", ("not a dicom", "not dicom")),
        ("not_dicom.dcm", ("not a dicom", "not dicom")),
        ("dicm_then_garbage.dcm", _DAMAGED),
        ("meta_then_garbage.dcm", _DAMAGED),
    ],
)
def test_not_dicom_files_say_why(run, hostile, name, words):
    path = hostile[name]
    rec = _record(run, path)
    assert rec["info"]["code"] == 2
    assert rec["load"]["code"] == 1
    # info: the file is listed as skipped with its reason (not as a non-image DICOM object)
    reasons = _said(_skipped_reasons(rec["info"]), path)
    assert any(w in reasons for w in words), reasons
    said = _said(rec["load"]["stderr"], path)
    assert any(w in said for w in words), said


def test_zip_bomb_is_not_expanded(run, hostile):
    rec = _record(run, hostile["zip_bomb.zip"])
    assert rec["info"]["code"] == 2
    assert rec["load"]["code"] == 1
    assert "zip bomb" in _skipped_reasons(rec["info"])
    assert rec["info"]["seconds"] < 5


def test_zip_member_claiming_4gb_is_not_read(run, hostile):
    rec = _record(run, hostile["zip_claims_4gb.zip"])
    assert rec["info"]["code"] == 2
    assert rec["load"]["code"] == 1
    reasons = _skipped_reasons(rec["info"])
    assert "zip bomb" in reasons or "4 GiB" in reasons, reasons


def test_symlink_loop_is_not_followed(run, hostile):
    rec = _record(run, hostile["symlink_loop"])
    assert rec["info"]["code"] == 0
    assert rec["load"]["code"] == 0
    doc = json.loads(rec["info"]["stdout"])
    (series,) = doc["series"]
    assert series["n_files"] == 3  # not repeated through `self` or `up`
    skipped = {os.path.basename(s["path"]) for s in doc["skipped"]}
    assert {"a.dcm", "b.dcm"} <= skipped


def test_directory_named_dcm(run, hostile):
    for name in ("dir_named_dcm", "x.dcm"):
        rec = _record(run, hostile[name])
        assert rec["info"]["code"] == 2
        assert rec["load"]["code"] == 1
        assert "no" in rec["load"]["stderr"] and "image" in rec["load"]["stderr"]


def test_hidden_dot_dcm_file_given_directly(run, hostile):
    rec = _record(run, hostile[".dcm"])
    assert rec["info"]["code"] == 2
    assert rec["load"]["code"] == 1


def test_loadable_bad_data_still_loads(run):
    """Files that are odd but valid must not be refused wholesale."""
    for rel in ("pydicom/test_files/CT_small.dcm", "pydicom/test_files/MR_small.dcm"):
        rec = _record(run, BAD / rel)
        assert rec["info"]["code"] == 0, rec["info"]["stderr"]
        assert rec["load"]["code"] == 0, rec["load"]["stderr"]


def test_hostile_files_in_one_folder(hostile, tmp_path):
    """A folder mixing the hostile files with one good series: the good series is found."""
    folder = tmp_path / "mixed"
    vol = np.arange(4 * 8 * 8, dtype=np.int16).reshape(4, 8, 8) - 1000
    write_ct_series(folder / "good", vol, spacing=(1, 1, 2), series_uid=uid("the good one"))
    for name, path in hostile.items():
        # huge_dims.dcm has its own tests (and is slow to refuse while frames are expanded)
        if path.is_file() and not path.is_symlink() and name != "huge_dims.dcm":
            shutil.copy(path, folder / name)
    with _time_limit(10):
        index = scan(folder)
    good = index.get(uid("the good one"))
    assert good.loadable and len(good.slices) == 4
    np.testing.assert_array_equal(load(good, cache=None).array, vol)
    skipped = {os.path.basename(s.path.split("!")[0]) for s in index.skipped}
    assert {"empty.dcm", "random100.dcm", "not_dicom.dcm", "zip_bomb.zip"} <= skipped
