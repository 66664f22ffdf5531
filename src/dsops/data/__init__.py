"""Versioned, validated, profiled datasets."""
