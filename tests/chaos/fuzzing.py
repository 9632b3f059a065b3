"""Bad input, generated: roadmap files with cells and bytes changed, policies with values
changed, and Slack payloads of any shape. Each must be refused whole (exit 1, or an HTTP
status under 500), name where it is wrong, and write nothing: the export and the row
counts stay as they were. An input that happens to be valid may be accepted: then it is
not counted as bad."""

from __future__ import annotations

import csv
import io
import json
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.product_bench.slack_requests import FORM, http, signature_headers
from tests.chaos.actors import SIGNING_SECRET, PartCounts, Serving, tower_here
from tests.chaos.setting import POLICY, Setting
from tests.support.people import MANAGER
from tower.audit.models import AuditEvent
from tower.db import create_database_engine, create_session_factory
from tower.experiments.models import Experiment
from tower.outbox.models import OutboxMessage

MUST_BE_ZERO = ("tracebacks", "unnamed", "writes", "server_errors")
# Where a refusal must say the mistake is: a roadmap's line and column, a policy's path.
ROADMAP_PLACE = re.compile(r"line \d+, column \w+")
POLICY_PLACE = re.compile(r"^  [\w\[\].-]+: ", re.MULTILINE)

WEIRD = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            "=cmd|' /C calc'!A0",
            "T-0",
            "T-99999999999999999999",
            "\uff11\uff12",  # digits of another script
            "1e309",
            "nan",
            "-0",
            "2027-02-30",
            "20270111",
            "web/nowhere",
            "U0NOBODY",
            "\x00",
            "x" * 300,
            "AB_TEST",
            "Checkout-Squad",
            "a;a",
        ]
    ),
)


@dataclass
class Counts(PartCounts):
    inputs: int = 0
    refused: int = 0
    accepted: int = 0
    tracebacks: int = 0
    unnamed: int = 0
    writes: int = 0
    server_errors: int = 0


def run(setting: Setting, scratch: Path, *, examples: int) -> dict[str, Any]:
    """`examples` generated inputs of each kind (hypothesis, derandomized: the same inputs
    each run)."""
    counts = Counts()
    base = tower_here(setting, ["export", "-"])[1]
    _fuzz_roadmaps(setting, scratch, counts, base, examples)
    _fuzz_policies(setting, scratch, counts, examples)
    with Serving(setting, scratch, SIGNING_SECRET) as url:
        _fuzz_payloads(setting, url, counts, examples)
    return counts.as_dict()


def _rows(setting: Setting) -> tuple[int, int, int]:
    engine = create_database_engine(setting.database_url)
    try:
        with create_session_factory(engine)() as session:
            return tuple(  # type: ignore[return-value]
                int(session.scalar(select(func.count()).select_from(table)) or 0)
                for table in (Experiment, AuditEvent, OutboxMessage)
            )
    finally:
        engine.dispose()


def _refused_whole(
    setting: Setting,
    counts: Counts,
    what: str,
    code: int,
    output: str,
    before: Any,
    place: re.Pattern[str],
) -> None:
    counts.inputs += 1
    if "Traceback" in output:
        counts.tracebacks += 1
        counts.problem(f"{what}: traceback")
    if code == 0:
        counts.accepted += 1
        return
    counts.refused += 1
    if not place.search(output):
        counts.unnamed += 1
        counts.problem(f"{what}: {' '.join(output.split())}")
    if before is not None and (tower_here(setting, ["export", "-"])[1], _rows(setting)) != before:
        counts.writes += 1
        counts.problem(f"{what}: refused, yet something was written")


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        database=None,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )


def _fuzz_roadmaps(
    setting: Setting, scratch: Path, counts: Counts, base: str, examples: int
) -> None:
    """The portfolio's own export with a few cells changed, or with bytes spliced in."""
    header, *body = list(csv.reader(io.StringIO(base)))
    path = scratch / "fuzzed-roadmap.csv"

    @_settings(examples)
    @given(
        changes=st.lists(
            st.tuples(st.integers(0, len(body) - 1), st.integers(0, len(header) - 1), WEIRD),
            min_size=1,
            max_size=3,
        ),
        splice=st.one_of(st.none(), st.binary(min_size=1, max_size=8)),
    )
    def fuzz(changes: list[tuple[int, int, str]], splice: bytes | None) -> None:
        rows = [list(row) for row in body]
        for row, column, value in changes:
            rows[row][column] = value
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerows([header, *rows])
        raw = buffer.getvalue().encode("utf-8", errors="surrogatepass")
        if splice is not None:
            raw = raw[: len(raw) // 2] + splice + raw[len(raw) // 2 :]
        path.write_bytes(raw)
        before = (tower_here(setting, ["export", "-"])[1], _rows(setting))
        code, output = tower_here(setting, ["import", str(path), "--by", MANAGER])
        what = f"roadmap {changes!r:.80}"
        _refused_whole(setting, counts, what, code, output, before, ROADMAP_PLACE)
        if code == 0:  # a valid variant was imported: put the portfolio back as it was
            path.write_text(base, encoding="utf-8")
            tower_here(setting, ["import", str(path), "--by", MANAGER])

    fuzz()


def _fuzz_policies(setting: Setting, scratch: Path, counts: Counts, examples: int) -> None:
    """The retail policy with values changed: `tower policy check` names every mistake."""
    data = yaml.safe_load(POLICY.read_text(encoding="utf-8"))
    paths = list(_leaves(data))
    path = scratch / "fuzzed-policy.yaml"

    @_settings(examples)
    @given(
        changes=st.lists(
            st.tuples(
                st.sampled_from(paths),
                st.one_of(WEIRD, st.integers(-10, 10**6), st.floats(), st.none(), st.booleans()),
            ),
            min_size=1,
            max_size=4,
        )
    )
    def fuzz(changes: list[tuple[tuple[Any, ...], Any]]) -> None:
        changed = json.loads(json.dumps(data, default=str))
        for where, value in changes:
            _set(changed, where, value)
        path.write_text(yaml.safe_dump(changed, allow_unicode=True), encoding="utf-8")
        code, output = tower_here(setting, ["policy", "check", str(path)])
        what = f"policy {changes!r:.80}"
        _refused_whole(setting, counts, what, code, output, None, POLICY_PLACE)

    fuzz()


def _fuzz_payloads(setting: Setting, url: str, counts: Counts, examples: int) -> None:
    """Signed interaction payloads of any shape: never a 5xx, nothing written."""
    json_values = st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20)),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=10), inner, max_size=3)
        ),
        max_leaves=10,
    )
    shaped = st.fixed_dictionaries(
        {
            "type": st.sampled_from(
                ["block_actions", "view_submission", "block_suggestion", "shortcut", "x"]
            ),
            "user": st.one_of(
                st.fixed_dictionaries({"id": st.sampled_from([MANAGER, "U0X"])}), json_values
            ),
            "actions": st.one_of(
                st.lists(
                    st.fixed_dictionaries(
                        {
                            "action_id": st.sampled_from(["approve", "acknowledge", "nope"]),
                            "value": st.one_of(
                                st.text(max_size=20),
                                st.sampled_from(["T-1:1", "C-1:T-1", "T-9999:1"]),
                            ),
                        }
                    ),
                    max_size=2,
                ),
                json_values,
            ),
            "view": json_values,
        }
    )

    @_settings(examples)
    @given(payload=st.one_of(shaped, json_values))
    def fuzz(payload: Any) -> None:
        body = ("payload=" + urllib.parse.quote(json.dumps(payload))).encode()
        before = _rows(setting)
        headers = {"Content-Type": FORM, **signature_headers(body, secret=SIGNING_SECRET)}
        status = http(f"{url}/slack/events", body=body, headers=headers).status
        counts.inputs += 1
        if status >= 500:
            counts.server_errors += 1
            counts.problem(f"payload {json.dumps(payload)[:80]}: HTTP {status}")
        if _rows(setting)[0] != before[0]:
            counts.writes += 1
            counts.problem(f"payload {json.dumps(payload)[:80]}: a test was written")

    fuzz()


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> Any:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _leaves(value, (*path, index))
    else:
        yield path


def _set(node: Any, path: tuple[Any, ...], value: Any) -> None:
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
