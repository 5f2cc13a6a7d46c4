"""SurgTwin geometry layer."""
