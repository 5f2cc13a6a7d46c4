"""VTK XML PolyData (``.vtp``): writing through VTK, reading with a pure-Python reader.

Written files are VTK XML PolyData (appended, zlib), float64 positions, with field data
``SPACE``, ``Name``, ``Role``, ``Color``, ``Units`` (and ``PatientName``/``PatientID`` only when
asked). Reading does not use VTK's C++ reader, which can abort the whole process on some damaged
files: :class:`_VtpReader` checks every size found in the file against the bytes present before
anything is allocated or decompressed, so damaged files end in :class:`MeshIOError`.
"""

from __future__ import annotations

import base64
import lzma
import re
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path
from typing import BinaryIO, NoReturn

import numpy as np

from surgtwin.geometry.mesh import Mesh
from surgtwin.geometry.mesh_common import GENERATOR, MeshIOError, one_line, to_space
from surgtwin.imaging.header import PatientInfo


def write_vtp(fh: BinaryIO, mesh: Mesh, space: str, patient: PatientInfo | None) -> None:
    """VTK XML PolyData (appended binary, zlib), float64 positions, descriptive field data."""
    points, faces = to_space(mesh.points, space), mesh.faces
    from vtkmodules.util import numpy_support
    from vtkmodules.vtkCommonCore import vtkDoubleArray, vtkPoints, vtkStringArray
    from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData
    from vtkmodules.vtkIOXML import vtkXMLPolyDataWriter

    poly = vtkPolyData()
    pts = vtkPoints()
    pts.SetData(numpy_support.numpy_to_vtk(np.ascontiguousarray(points, dtype=np.float64), deep=1))
    poly.SetPoints(pts)
    cells = vtkCellArray()
    offsets = np.arange(0, 3 * len(faces) + 1, 3, dtype=np.int64)
    conn = np.ascontiguousarray(faces, dtype=np.int64).reshape(-1)
    cells.SetData(
        numpy_support.numpy_to_vtk(
            offsets, deep=1, array_type=numpy_support.get_vtk_array_type(np.int64)
        ),
        numpy_support.numpy_to_vtk(
            conn, deep=1, array_type=numpy_support.get_vtk_array_type(np.int64)
        ),
    )
    poly.SetPolys(cells)

    fields = {
        "SPACE": space,
        "Units": "mm",
        "Generator": GENERATOR,
        "Name": one_line(mesh.name),
        "Role": one_line(mesh.role),
    }
    if patient is not None:
        fields["PatientName"] = one_line(patient.name)
        fields["PatientID"] = one_line(patient.patient_id)
    fd = poly.GetFieldData()
    for key, value in fields.items():
        arr = vtkStringArray()
        arr.SetName(key)
        arr.InsertNextValue(value)
        fd.AddArray(arr)
    col = vtkDoubleArray()
    col.SetName("Color")
    col.SetNumberOfComponents(3)
    col.InsertNextTuple3(*(float(c) for c in np.asarray(mesh.color, dtype=float)[:3]))
    fd.AddArray(col)

    writer = vtkXMLPolyDataWriter()
    writer.SetInputData(poly)
    writer.SetDataModeToAppended()
    writer.EncodeAppendedDataOff()
    writer.SetHeaderTypeToUInt64()
    writer.SetCompressorTypeToZLib()
    writer.WriteToOutputStringOn()
    if not writer.Write():
        raise MeshIOError("VTK could not encode the mesh as VTP", mesh.name)
    fh.write(bytes(writer.GetOutputString()))


_VTK_TYPES = {
    "Int8": "i1",
    "UInt8": "u1",
    "Char": "i1",
    "String": "u1",
    "Int16": "i2",
    "UInt16": "u2",
    "Int32": "i4",
    "UInt32": "u4",
    "Int64": "i8",
    "UInt64": "u8",
    "Float32": "f4",
    "Float64": "f8",
}


class _VtpReader:
    """A pure-Python reader of VTK XML PolyData (.vtp), written from the VTK file-format
    documentation ("VTK File Formats", XML section).

    Supported: ascii, inline binary (base64) and appended (raw or base64) data, no compression
    or zlib/LZMA compression, UInt32/UInt64 headers, either byte order, several pieces, polygons
    (fan-triangulated) and triangle strips. Every size read from the file is checked against the
    bytes actually present before anything is allocated or decompressed, so a damaged file ends
    in MeshIOError (VTK's own reader can abort the process on some damaged files).
    """

    def __init__(self, data: bytes, path: Path):
        self.path = path
        # decoded bytes allowed per array: what the file could hold at zlib's best ratio
        self.cap = max(1 << 26, 1100 * len(data))
        start = data.find(b"<AppendedData")
        self.appended = b""
        self.encoding = "raw"
        if start >= 0:
            close = data.find(b">", start)
            underscore = data.find(b"_", close) if close >= 0 else -1
            end = data.rfind(b"</AppendedData>")
            if close < 0 or underscore < 0 or end < underscore:
                self.fail("is truncated (its appended data section is not complete)")
            found = re.search(rb'encoding\s*=\s*"(\w+)"', data[start:close])
            self.encoding = found.group(1).decode() if found else "raw"
            if self.encoding not in ("raw", "base64"):
                self.fail(f"uses an unknown appended encoding {self.encoding!r}")
            self.appended = data[underscore + 1 : end]
            if b"</VTKFile>" not in data[end:]:
                self.fail("is truncated (it does not end with </VTKFile>)")
            xml_text = data[:start] + b"</VTKFile>"
        else:
            xml_text = data
        try:
            self.root = ET.fromstring(xml_text)
        except ET.ParseError as exc:
            self.fail(f"is damaged or truncated (XML error: {exc})")
        if self.root.tag != "VTKFile" or self.root.get("type") != "PolyData":
            self.fail("is not VTK XML PolyData")
        order = "<" if self.root.get("byte_order", "LittleEndian") == "LittleEndian" else ">"
        self.order = order
        header = self.root.get("header_type", "UInt32")
        if header not in ("UInt32", "UInt64"):
            self.fail(f"has an unknown header type {header!r}")
        self.hsize = 4 if header == "UInt32" else 8
        self.hdtype = np.dtype(f"{order}u{self.hsize}")
        compressor = self.root.get("compressor", "")
        if compressor in ("", "none"):
            self.codec = None
        elif compressor == "vtkZLibDataCompressor":
            self.codec = "zlib"
        elif compressor == "vtkLZMADataCompressor":
            self.codec = "lzma"
        else:
            self.fail(
                f"uses the {compressor} compression, which SurgTwin cannot read; "
                "re-save it with zlib compression or none"
            )

    def fail(self, problem: str) -> NoReturn:
        raise MeshIOError(f"the VTP file {problem}", self.path)

    # --- binary blocks

    def _ints(self, buf: bytes, pos: int, count: int) -> list[int]:
        if count < 0 or pos < 0 or pos + count * self.hsize > len(buf):
            self.fail("is damaged or truncated (a data header runs past the end)")
        return [int(v) for v in np.frombuffer(buf, self.hdtype, count=count, offset=pos)]

    def _inflate(self, blob: bytes, sizes: list[int], block: int, last: int) -> bytes:
        out = []
        pos = 0
        for k, size in enumerate(sizes):
            want = last if (k == len(sizes) - 1 and last) else block
            try:
                if self.codec == "zlib":
                    chunk = zlib.decompressobj().decompress(blob[pos : pos + size], want)
                else:
                    chunk = lzma.LZMADecompressor().decompress(blob[pos : pos + size], want)
            except (zlib.error, lzma.LZMAError) as exc:
                self.fail(f"is damaged (compressed data cannot be unpacked: {exc})")
            if len(chunk) != want:
                self.fail("is damaged (a compressed block has the wrong size)")
            out.append(chunk)
            pos += size
        return b"".join(out)

    def _check_blocks(self, n_blocks: int, block: int, last: int, room: int) -> None:
        if n_blocks < 0 or n_blocks * self.hsize > room or block < 0 or last < 0:
            self.fail("is damaged (impossible compression header)")
        if n_blocks and (last > block or (n_blocks - 1) * block + (last or block) > self.cap):
            self.fail("is damaged (it declares more data than it can hold)")

    def _raw_block(self, buf: bytes, pos: int) -> bytes:
        h = self.hsize
        if self.codec is None:
            (n,) = self._ints(buf, pos, 1)
            if n > len(buf) - pos - h:
                self.fail("is truncated (an array runs past the end)")
            return buf[pos + h : pos + h + n]
        n_blocks, block, last = self._ints(buf, pos, 3)
        self._check_blocks(n_blocks, block, last, len(buf) - pos)
        sizes = self._ints(buf, pos + 3 * h, n_blocks)
        start = pos + (3 + n_blocks) * h
        if min(sizes, default=0) < 0 or start + sum(sizes) > len(buf):
            self.fail("is truncated (compressed data run past the end)")
        return self._inflate(buf[start : start + sum(sizes)], sizes, block, last)

    def _b64_block(self, text: bytes) -> bytes:
        h = self.hsize

        def decode(chars: int) -> bytes:
            if chars > len(text):
                self.fail("is truncated (encoded data run past the end)")
            return base64.b64decode(text[:chars], validate=True)

        if self.codec is None:  # header and data are one base64 stream
            (n,) = self._ints(decode(4 * -(-h // 3)), 0, 1)
            if n > len(text):
                self.fail("is damaged (an array is larger than the file)")
            return decode(4 * -(-(h + n) // 3))[h : h + n]
        # compressed: the header is encoded on its own, then the data
        n_blocks, block, last = self._ints(decode(4 * h), 0, 3)
        self._check_blocks(n_blocks, block, last, len(text))
        head_chars = 4 * -(-((3 + n_blocks) * h) // 3)
        sizes = self._ints(decode(head_chars), 3 * h, n_blocks)
        if min(sizes, default=0) < 0:
            self.fail("is damaged (negative block size)")
        total = sum(sizes)
        data_chars = 4 * -(-total // 3)
        if head_chars + data_chars > len(text):
            self.fail("is truncated (compressed data run past the end)")
        blob = base64.b64decode(text[head_chars : head_chars + data_chars], validate=True)
        return self._inflate(blob[:total], sizes, block, last)

    # --- arrays

    def array(self, elem: ET.Element | None, what: str, n_values: int | None) -> np.ndarray:
        """The values of a DataArray/Array element, checked against the expected count."""
        if elem is None:
            self.fail(f"has no {what} array")
        kind = elem.get("type", "")
        if kind not in _VTK_TYPES:
            self.fail(f"has a {what} array of unknown type {kind!r}")
        dtype = np.dtype(self.order + _VTK_TYPES[kind])
        fmt = elem.get("format", "ascii")
        try:
            if fmt == "ascii":
                tokens = (elem.text or "").split()
                values = np.array(tokens, dtype=np.float64 if dtype.kind == "f" else np.int64)
            else:
                if fmt == "binary":
                    raw = self._b64_block(b"".join((elem.text or "").encode("ascii").split()))
                elif fmt == "appended":
                    offset = int(elem.get("offset", "-1"))
                    if not 0 <= offset <= len(self.appended):
                        self.fail(f"has a {what} array outside its appended data")
                    if self.encoding == "raw":
                        raw = self._raw_block(self.appended, offset)
                    else:
                        raw = self._b64_block(self.appended[offset:])
                else:
                    self.fail(f"has a {what} array in an unknown format {fmt!r}")
                if len(raw) % dtype.itemsize:
                    self.fail(f"is damaged (the {what} array has a partial value)")
                values = np.frombuffer(raw, dtype=dtype)
        except (ValueError, UnicodeError) as exc:
            self.fail(f"is damaged (the {what} array cannot be read: {exc})")
        if n_values is not None and values.size != n_values:
            self.fail(f"is damaged (the {what} array has {values.size} values, not {n_values})")
        return values

    def _count(self, elem: ET.Element, key: str) -> int:
        try:
            n = int(elem.get(key, "0"))
        except ValueError:
            self.fail(f"has an invalid {key}")
        if not 0 <= n <= self.cap:
            self.fail(f"has an impossible {key} ({n})")
        return n

    def _cells(self, piece: ET.Element, kind: str, n_points: int) -> np.ndarray:
        n = self._count(piece, f"NumberOf{kind}")
        if n == 0:
            return np.zeros((0, 3), dtype=np.int64)
        section = piece.find(kind)
        if section is None:
            self.fail(f"declares {n} {kind.lower()} but has none")
        arrays = {e.get("Name"): e for e in section.findall("DataArray")}
        offsets = self.array(arrays.get("offsets"), f"{kind} offsets", None).astype(np.int64)
        if offsets.size == n + 1 and offsets[0] == 0:
            offsets = offsets[1:]
        if offsets.size != n:
            self.fail(f"is damaged ({kind.lower()} offsets do not match their count)")
        sizes = np.diff(np.r_[0, offsets])
        if np.any(sizes < 0):
            self.fail(f"is damaged ({kind.lower()} offsets go backwards)")
        conn = self.array(arrays.get("connectivity"), f"{kind} connectivity", int(offsets[-1]))
        conn = conn.astype(np.int64)
        if conn.size and (conn.min() < 0 or conn.max() >= n_points):
            self.fail(f"is damaged ({kind.lower()} refer to points that do not exist)")
        if kind == "Polys" and np.all(sizes == 3):
            return conn.reshape(-1, 3)
        # polygons: a fan around the first corner; strips: alternate the winding
        n_tri = np.maximum(sizes - 2, 0)
        cell = np.repeat(np.arange(n), n_tri)
        k = np.arange(int(n_tri.sum())) - np.repeat(np.cumsum(n_tri) - n_tri, n_tri)
        base = (offsets - sizes)[cell]
        if kind == "Polys":
            return np.stack([conn[base], conn[base + k + 1], conn[base + k + 2]], axis=1)
        a, b, c = conn[base + k], conn[base + k + 1], conn[base + k + 2]
        odd = k % 2 == 1
        return np.stack([np.where(odd, b, a), np.where(odd, a, b), c], axis=1)

    # --- the whole file

    def read(self):
        poly = self.root.find("PolyData")
        if poly is None:
            self.fail("has no PolyData element")
        points, faces, n0 = [], [], 0
        for piece in poly.findall("Piece"):
            n_points = self._count(piece, "NumberOfPoints")
            if n_points == 0:
                continue
            elem = piece.find("Points/DataArray")
            if elem is not None and elem.get("NumberOfComponents", "1") != "3":
                self.fail("has points that are not 3-D")
            pts = self.array(elem, "Points", 3 * n_points).astype(np.float64).reshape(-1, 3)
            tris = [self._cells(piece, kind, n_points) for kind in ("Polys", "Strips")]
            points.append(pts)
            faces.extend(t + n0 for t in tris)
            n0 += n_points
        if not points or not sum(len(f) for f in faces):
            self.fail("contains no surface triangles")
        fields = {}
        section = poly.find("FieldData")
        for elem in [] if section is None else list(section):
            name = elem.get("Name")
            if name in ("SPACE", "Name") and elem.get("type") == "String":
                raw = self.array(elem, f"field {name}", None).astype(np.uint8).tobytes()
                fields[name] = raw.split(b"\0")[0].decode("utf-8", "replace")
            elif name == "Color" and elem.get("NumberOfComponents") == "3":
                values = self.array(elem, "field Color", None)
                if values.size >= 3:
                    fields[name] = tuple(float(v) for v in values[:3])
        return np.vstack(points), np.vstack(faces), fields


def read_vtp(
    data: bytes, path: Path
) -> tuple[np.ndarray, np.ndarray, list[bytes], str | None, tuple[float, float, float] | None]:
    """VTK XML PolyData through :class:`_VtpReader`."""
    if b"<VTKFile" not in data[:4096]:
        raise MeshIOError("is not a VTK XML (.vtp) file", path)
    points, faces, fields = _VtpReader(data, path).read()
    space = fields.get("SPACE")
    marks = [space.encode("ascii", "replace")] if space else []
    return points, faces, marks, fields.get("Name"), fields.get("Color")
