"""The engine benchmark: a synthetic organisation and portfolio, and what the engine costs on it."""
