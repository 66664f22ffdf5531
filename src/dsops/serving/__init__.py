"""Serving: the gateway, the prediction log and feedback."""
