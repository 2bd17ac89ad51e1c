"""Deterministic orchestration: FlywheelWorkflow (one run) and CandidateWorkflow (one candidate)."""
