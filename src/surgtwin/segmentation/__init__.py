"""SurgTwin segmentation layer."""
