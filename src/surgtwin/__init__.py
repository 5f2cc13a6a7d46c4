"""SurgTwin: patient-specific surgical planning and rehearsal on a digital twin."""

__version__ = "0.1.0"
