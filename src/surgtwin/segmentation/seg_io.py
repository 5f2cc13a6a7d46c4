"""Label maps to and from files: 3D Slicer ``.seg.nrrd``, NIfTI with a label table, DICOM SEG.

Every position is patient LPS millimetres, like the rest of SurgTwin; each writer puts the
coordinate system in the file the way its format defines it, so the patient's left stays left in
every program that reads it:

* **NRRD** (``.seg.nrrd``, `NRRD format <http://teem.sourceforge.net/nrrd/format.html>`_):
  ``space: left-posterior-superior``, so the grid is written as it is. The 3D Slicer
  segmentation fields (``Segment<N>_*``, ``Segmentation_*``, as read and written by Slicer's
  ``vtkMRMLSegmentationStorageNode``) make Slicer open the file as a Segmentation with each
  segment's name and colour; see :func:`write_seg_nrrd`.
* **NIfTI** (``.nii`` / ``.nii.gz``): written by ITK (SimpleITK), which turns the LPS grid into
  NIfTI's RAS ``qform``/``sform``. Names, colours and roles go to a JSON sidecar
  ``<name>.labels.json``; see :func:`write_nifti`.
* **DICOM SEG** (PS3.3 A.51, via highdicom): binary segments referencing the source CT/MR images.
  It needs the original acquisition grid, so volumes that were tilt-corrected or resampled while
  loading are refused; see :func:`write_dicom_seg`.

Every write is atomic (:mod:`surgtwin.fileio`): the data goes to a temporary file in the target
folder, which replaces the target only once it is complete, so a failure never leaves a partial
file.

This module is the public interface; the work is done in
:mod:`~surgtwin.segmentation.nrrd_io` (Slicer ``.seg.nrrd``, on the NRRD reader of
:mod:`~surgtwin.segmentation.nrrd_format`), :mod:`~surgtwin.segmentation.nifti_io`,
:mod:`~surgtwin.segmentation.dicom_seg` and :mod:`~surgtwin.segmentation.seg_common`.
"""

from surgtwin.segmentation.dicom_seg import write_dicom_seg
from surgtwin.segmentation.nifti_io import labels_sidecar_path, read_nifti, write_nifti
from surgtwin.segmentation.nrrd_io import read_seg_nrrd, write_seg_nrrd
from surgtwin.segmentation.seg_common import SegIOError

__all__ = [
    "SegIOError",
    "labels_sidecar_path",
    "read_nifti",
    "read_seg_nrrd",
    "write_dicom_seg",
    "write_nifti",
    "write_seg_nrrd",
]
