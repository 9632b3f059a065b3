"""Collisions between tests: detected by the engine, kept as records with a life."""
