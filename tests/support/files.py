"""The files the suite reads: the small policy, the shipped retail example, pinned data."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
DATA = TESTS / "data"
REPO = TESTS.parent
SMALL_POLICY = DATA / "policy.yaml"
RETAIL_POLICY = REPO / "examples" / "retail" / "tower.yaml"
RETAIL_PORTFOLIO = REPO / "examples" / "retail" / "portfolio.csv"
