"""ELBO Studio engine: torch + numpy only. Never imports Qt (tests/engine/test_boundaries.py enforces it)."""
