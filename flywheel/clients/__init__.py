"""Everything that talks to the outside world: stores, artifact storage, model endpoints."""
