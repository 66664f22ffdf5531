"""Progressive delivery: deployments, approvals, the rollout controller, routes."""
