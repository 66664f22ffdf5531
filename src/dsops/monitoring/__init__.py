"""Monitoring: drift and data quality of live inputs, accuracy once labels arrive, alerts."""
