"""A synthetic organisation the size of a large company, reproducible from a seed: its policy
(`policy`) and its portfolio of tests (`portfolio`)."""
