"""The `flywheel` command line (entry point: flywheel/starter.py)."""
