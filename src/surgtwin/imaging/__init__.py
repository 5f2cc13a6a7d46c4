"""Imaging: scan DICOM sources, validate series, load them as volumes in patient LPS mm.

>>> from surgtwin.imaging import scan, load
>>> index = scan("sample_dicom")                      # doctest: +SKIP
>>> volume = load(index.loadable()[0])                # doctest: +SKIP
>>> volume.size, volume.spacing                       # doctest: +SKIP
"""

from surgtwin.errors import DicomError, LoadCancelled
from surgtwin.imaging.findings import Finding, Severity
from surgtwin.imaging.header import ImageHeader, NonImage, PatientInfo
from surgtwin.imaging.load import DEFAULT_CACHE, VolumeCache, load
from surgtwin.imaging.series import Series, SeriesIndex, scan
from surgtwin.imaging.sources import FileRef, Skipped
from surgtwin.imaging.volume import ImageGeometry, Volume, VolumeInfo

__all__ = [
    "DEFAULT_CACHE",
    "DicomError",
    "FileRef",
    "Finding",
    "ImageGeometry",
    "ImageHeader",
    "LoadCancelled",
    "NonImage",
    "PatientInfo",
    "Series",
    "SeriesIndex",
    "Severity",
    "Skipped",
    "Volume",
    "VolumeCache",
    "VolumeInfo",
    "load",
    "scan",
]
