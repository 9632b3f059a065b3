"""The test registry: what a test is, how it is stored and how it is imported."""
