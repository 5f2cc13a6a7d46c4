"""SurgTwin planning layer."""
