"""Experiment tracking: runs, params, metrics, artifacts, lineage."""
