"""Access control and the audit trail."""
