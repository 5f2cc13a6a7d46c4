"""SurgTwin app layer."""
