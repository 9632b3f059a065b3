"""JSON text: orjson's speed with the values the standard library wrote."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from tower import json_text
from tower.engine.kinds import Severity


@dataclass
class _Point:
    x: int


def test_output_for_people_and_scripts_keeps_json_dumps_values() -> None:
    value = {
        "day": date(2027, 1, 4),
        "at": datetime(2027, 1, 4, 9, 30, tzinfo=UTC),
        "severity": Severity.BLOCKING,
        "amount": Decimal("1.50"),
        "point": _Point(3),
        7: "a number as a key",
        "huge": 30943379838103613440,
        "text": "café <b>",
    }
    assert json.loads(json_text.dumps(value)) == json.loads(json.dumps(value, default=str))
    assert json.loads(json_text.dumps(value, indent=True)) == json.loads(
        json.dumps(value, default=str)
    )
    assert json_text.dumps({"a": [1]}, indent=True) == json.dumps({"a": [1]}, indent=2)


def test_a_json_column_takes_only_json_types() -> None:
    stored = {"keys": ["T-1", "T-2"], "share": 0.5, "big": 2**70, "none": None}
    assert json_text.loads(json_text.dumps_stored(stored)) == stored
    for value in (date(2027, 1, 4), datetime(2027, 1, 4, tzinfo=UTC), _Point(1), {1, 2}):
        with pytest.raises(TypeError):
            json_text.dumps_stored({"value": value})


def test_text_the_json_module_wrote_with_nan_still_reads() -> None:
    read = json_text.loads(json.dumps({"value": float("nan"), "top": float("inf")}))
    assert math.isnan(read["value"])
    assert read["top"] == math.inf
