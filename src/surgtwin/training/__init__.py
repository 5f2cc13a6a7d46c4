"""SurgTwin training layer."""
