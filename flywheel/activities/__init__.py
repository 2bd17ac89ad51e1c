"""Thin Temporal activities: unpack input, call curation/scoring/clients/platforms, heartbeat."""
