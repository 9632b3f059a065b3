"""The bot's Block Kit, without Slack or a database: the register/edit modal and reading a
submission back (`submitted_texts`), command replies and the App Home, within Slack's limits
(50 blocks a message, 100 a modal or Home tab, 3000 characters a section, 75 an option's text,
100 options a select, 24 a modal's title).
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from bot.ids import BlockId, CallbackId
from bot.listeners.submissions import field_errors
from bot.views import replies
from bot.views.modal import reason_modal, submitted_texts
from bot.views.modal import test_modal as build_modal  # not a test: keep pytest off it
from tests.support.people import OWNER
from tests.support.slack.harness import END, START, fill_modal, spec, texts_of, valid_answers
from tower.experiments.spec import (
    CONFIDENCE_SCALE,
    IMPACT_SCALE,
    ExperimentKind,
    ExperimentSpec,
)
from tower.paging import Page
from tower.pipeline.overview import Overview
from tower.policy import Policy
from tower.policy.schema import Team

MODAL_BLOCKS = {block.value for block in BlockId if block != BlockId.REASON}
SQUAD = ["checkout-squad"]
BOTH = ["checkout-squad", "ecommerce"]


def inputs(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}


def options(block: dict[str, Any]) -> list[str]:
    return [o["value"] for o in block["element"]["options"]]


def all_options(view: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for block in inputs(view).values():
        element = block["element"]
        found += element.get("options", []) + element.get("initial_options", [])
        found += [element["initial_option"]] if "initial_option" in element else []
    return found


def with_teams(policy: Policy, teams: list[Team]) -> Policy:
    return policy.model_copy(update={"teams": teams})


# -- the register modal ---------------------------------------------------------------------


def test_the_register_modal_has_one_labelled_input_per_field(small_policy: Policy) -> None:
    view = build_modal(small_policy, SQUAD)
    assert view["type"] == "modal"
    assert view["callback_id"] == CallbackId.REGISTER
    assert view["private_metadata"] == ""
    for name in ("title", "submit", "close"):
        assert view[name]["type"] == "plain_text" and 0 < len(view[name]["text"]) <= 24
    assert len(view["blocks"]) <= 100
    blocks = inputs(view)
    assert set(blocks) == MODAL_BLOCKS
    assert len(blocks) == len(view["blocks"])  # nothing but inputs
    for block_id, block in blocks.items():
        label = block["label"]
        assert label["type"] == "plain_text" and 0 < len(label["text"]) <= 2000, block_id
        assert block["element"]["action_id"] == block_id  # errors land on the field
        assert len(block.get("hint", {}).get("text", "")) <= 2000
    required = {b for b, block in blocks.items() if not block["optional"]}
    assert required == {"title", "team", "kind", "surfaces", "start", "end", "traffic"}
    assert "start" in blocks["start"]["label"]["text"].lower()
    assert "end" in blocks["end"]["label"]["text"].lower()


def test_the_register_modal_offers_the_given_teams_and_the_policys_choices(
    small_policy: Policy,
) -> None:
    one = inputs(build_modal(small_policy, SQUAD))
    assert options(one["team"]) == SQUAD
    assert one["team"]["element"]["initial_option"]["value"] == "checkout-squad"  # the only one
    assert one["team"]["element"]["options"][0]["text"]["text"] == "Checkout Squad"

    two = inputs(build_modal(small_policy, BOTH))
    assert options(two["team"]) == BOTH
    assert "initial_option" not in two["team"]["element"]  # the user chooses

    assert options(one["kind"]) == [k.value for k in ExperimentKind]
    assert one["kind"]["element"]["initial_option"]["value"] == ExperimentKind.AB_TEST.value
    assert options(one["primary_kpi"]) == list(small_policy.kpis)
    assert options(one["impact"]) == [f"{v:g}" for v in IMPACT_SCALE]
    assert options(one["confidence"]) == [f"{v:g}" for v in CONFIDENCE_SCALE]
    for name in ("surfaces", "audiences", "exclude_audiences"):  # searchable: block_suggestion
        element = one[name]["element"]
        assert element["type"] == "multi_external_select"
        assert element["action_id"] == name and "initial_options" not in element
    assert one["start"]["element"] == {"action_id": "start", "type": "datepicker"}
    assert one["traffic"]["element"]["initial_value"] == "100"


def test_the_edit_modal_is_filled_with_the_test_and_names_its_version(
    small_policy: Policy,
) -> None:
    made = spec(
        audiences=("logged_in",),
        exclude_audiences=("loyalty",),
        traffic=12.5,
        exclusion_group="checkout-2027",
        impact=0.25,
        confidence=1.0,
        effort_weeks=0.5,
    )
    view = build_modal(small_policy, BOTH, spec=made, key="T-7", version=4)
    assert view["callback_id"] == CallbackId.EDIT
    assert view["title"]["text"] == "Edit T-7"
    assert json.loads(view["private_metadata"]) == {"key": "T-7", "version": 4}
    blocks = inputs(view)
    assert blocks["title"]["element"]["initial_value"] == "Sticky basket"
    assert blocks["team"]["element"]["initial_option"]["value"] == "checkout-squad"
    assert [o["value"] for o in blocks["audiences"]["element"]["initial_options"]] == ["logged_in"]
    assert blocks["start"]["element"]["initial_date"] == START.isoformat()
    assert blocks["end"]["element"]["initial_date"] == END.isoformat()
    assert blocks["traffic"]["element"]["initial_value"] == "12.5"
    assert blocks["impact"]["element"]["initial_option"]["value"] == "0.25"
    assert blocks["confidence"]["element"]["initial_option"]["value"] == "1"


def test_a_hypothesis_longer_than_a_slack_input_is_kept_not_cut_by_the_edit_modal(
    small_policy: Policy,
) -> None:
    long = "If we show it, more people buy, because they see it. " * 100  # 5,300 characters
    made = spec(hypothesis=long)
    view = build_modal(small_policy, BOTH, spec=made, key="T-7", version=4)
    assert "hypothesis" not in inputs(view)
    notes = [b for b in view["blocks"] if b["type"] == "context"]
    assert any("5,300 characters" in n["elements"][0]["text"] for n in notes)
    assert all(len(json.dumps(block)) < 3000 for block in view["blocks"])
    # Saving the form without it keeps the hypothesis whole.
    submitted = fill_modal(view, {BlockId.TITLE: "Sticky basket, v2"})
    edited, problems = field_errors(submitted_texts(submitted), small_policy, made, OWNER)
    assert problems == {} and edited is not None
    assert (edited.title, edited.hypothesis) == ("Sticky basket, v2", long)
    short = build_modal(
        small_policy, BOTH, spec=spec(hypothesis="If we, then."), key="T-7", version=4
    )
    assert inputs(short)["hypothesis"]["element"]["initial_value"] == "If we, then."
    assert inputs(short)["hypothesis"]["element"]["max_length"] == 3000


def test_the_reason_modal_asks_for_a_labelled_reason_and_remembers_the_message() -> None:
    where = {"channel": "C0TOWER", "ts": "1700000000.000016"}
    view = reason_modal("request_changes", "T-123", 3, where)
    assert view["callback_id"] == CallbackId.DECISION_REASON
    assert len(view["title"]["text"]) <= 24
    assert json.loads(view["private_metadata"]) == {
        "action": "request_changes",
        "key": "T-123",
        "version": 3,
        **where,
    }
    [block] = view["blocks"]
    assert block["block_id"] == BlockId.REASON and block["label"]["text"]


def test_the_modal_stays_within_slacks_option_limits_for_the_policys_teams(
    small_policy: Policy,
) -> None:
    view = build_modal(small_policy, BOTH)
    assert all(len(o["text"]["text"]) <= 75 for o in all_options(view))
    assert all(len(o["value"]) <= 150 for o in all_options(view))


def test_a_long_team_name_still_fits_in_an_option(small_policy: Policy) -> None:
    long_name = "Personalisation, Recommendations and Search Relevance Squad (web, app, e-mail)"
    assert len(long_name) > 75
    [squad, bau] = small_policy.teams
    policy = with_teams(small_policy, [squad.model_copy(update={"name": long_name}), bau])
    view = build_modal(policy, BOTH)
    assert all(len(o["text"]["text"]) <= 75 for o in all_options(view))


def test_a_managers_team_select_stays_within_100_options(small_policy: Policy) -> None:
    [squad, _] = small_policy.teams
    teams = [
        squad.model_copy(update={"key": f"squad-{n}", "name": f"Squad {n}", "channel": None})
        for n in range(120)
    ]
    view = build_modal(with_teams(small_policy, teams), [t.key for t in teams])
    team = inputs(view)["team"]["element"]
    assert len(team.get("options", [])) <= 100 or team["type"] == "external_select"


def test_a_kpi_select_past_100_kpis_becomes_searchable(small_policy: Policy) -> None:
    policy = small_policy.model_copy(update={"kpis": {f"kpi_{n}": 1.0 for n in range(150)}})
    kpi = inputs(build_modal(policy, BOTH))["primary_kpi"]["element"]
    assert kpi["type"] == "external_select" and "options" not in kpi
    chosen = spec(primary_kpi="kpi_140")
    edit = inputs(build_modal(policy, BOTH, spec=chosen, key="T-1", version=1))["primary_kpi"]
    assert edit["element"]["initial_option"]["value"] == "kpi_140"


# -- reading a submission back ---------------------------------------------------------------


def test_submitted_texts_reads_every_kind_of_element_as_the_roadmap_csv_writes_it() -> None:
    view = {
        "state": {
            "values": {
                "title": {"title": {"type": "plain_text_input", "value": "Sticky basket"}},
                "team": {
                    "team": {"type": "static_select", "selected_option": {"value": "ecommerce"}}
                },
                "kpi": {"kpi": {"type": "static_select", "selected_option": None}},
                "surfaces": {
                    "surfaces": {
                        "type": "multi_external_select",
                        "selected_options": [{"value": "web/home"}, {"value": "web/product"}],
                    }
                },
                "audiences": {"audiences": {"type": "multi_external_select"}},
                "start": {"start": {"type": "datepicker", "selected_date": "2026-03-16"}},
                "end": {"end": {"type": "datepicker", "selected_date": None}},
                "traffic": {"traffic": {"type": "number_input", "value": "12.5"}},
                "hypothesis": {"hypothesis": {"type": "plain_text_input", "value": None}},
            }
        }
    }
    assert submitted_texts(view) == {
        "title": "Sticky basket",
        "team": "ecommerce",
        "kpi": "",
        "surfaces": "web/home;web/product",
        "audiences": "",
        "start": "2026-03-16",
        "end": "",
        "traffic": "12.5",
        "hypothesis": "",
    }
    assert submitted_texts({}) == {}


def test_a_filled_register_modal_reads_back_into_the_spec_it_describes(
    small_policy: Policy,
) -> None:
    view = fill_modal(build_modal(small_policy, SQUAD), valid_answers())
    texts = submitted_texts(view)
    assert texts["surfaces"] == "web/checkout/cart"
    assert texts["start"] == START.isoformat()
    made, problems = field_errors(texts, small_policy, None, OWNER)
    assert problems == {}
    assert made == spec()


@pytest.mark.parametrize(
    "made",
    [
        spec(),
        spec(
            audiences=("logged_in", "app_users"),
            exclude_audiences=("loyalty",),
            traffic=12.5,
            exclusion_group="checkout-2027",
            impact=0.25,
            confidence=0.5,
            effort_weeks=0.5,
            hypothesis="Line one.\nLine two.",
        ),
        spec(primary_kpi=None, baseline=None, mde=None, hypothesis="", impact=None),
        spec(
            kind=list(ExperimentKind)[-1],
            surfaces=("web/home", "email"),
            start=date(2026, 12, 28),
            end=date(2027, 1, 10),
        ),
    ],
)
def test_an_edit_modal_submitted_unchanged_gives_back_the_same_test(
    small_policy: Policy, made: ExperimentSpec
) -> None:
    view = fill_modal(build_modal(small_policy, BOTH, spec=made, key="T-3", version=2), {})
    again, problems = field_errors(submitted_texts(view), small_policy, made, made.owner)
    assert problems == {}
    assert again == made


def test_bad_fields_are_reported_on_their_own_blocks(small_policy: Policy) -> None:
    answers = valid_answers(end=date(2026, 1, 1).isoformat(), traffic="0", baseline="2")
    texts = submitted_texts(fill_modal(build_modal(small_policy, SQUAD), answers))
    made, problems = field_errors(texts, small_policy, None, OWNER)
    assert made is None
    assert set(problems) == {"end", "traffic", "baseline"}
    assert set(problems) <= MODAL_BLOCKS


# -- replies and the App Home ------------------------------------------------------------------


def test_a_reply_is_ephemeral_and_keeps_to_50_blocks() -> None:
    many = [replies.section(f"line {n}") for n in range(80)]
    reply = replies.reply(many, "Lots")
    assert reply["response_type"] == "ephemeral"
    assert len(reply["blocks"]) == 50


def test_a_section_never_exceeds_3000_characters() -> None:
    block = replies.section("x" * 10_000).to_dict()
    assert len(block["text"]["text"]) <= 3000
    assert block["text"]["text"].endswith("…")


def test_a_long_listing_shows_15_lines_and_says_how_many_more_and_where() -> None:
    lines = [f"`T-{n}` Test number {n}" for n in range(1, 101)]
    [block] = replies.listing("All active tests", lines, "None.", "`/tower list all`")
    text = block.to_dict()["text"]["text"]
    assert len(text) <= 3000
    assert text.startswith("*All active tests*\n`T-1` ")
    assert "`T-15` " in text and "`T-16` " not in text
    assert text.endswith("_…and 85 more: `/tower list all`_")
    assert replies.listing("Mine", [], "None.", "x") == [replies.section("*Mine*\nNone.")]


def test_a_listing_of_long_titles_still_says_how_many_more() -> None:
    records = [
        {
            "key": f"T-{n}",
            "title": "A very long title " * 11,  # about 200 characters, allowed by the policy
            "team": "checkout-squad",
            "status": "submitted",
            "start": START,
            "end": END,
        }
        for n in range(1, 41)
    ]
    lines = [replies.test_line(r) for r in records]
    [block] = replies.listing("Your tests", lines, "None.", "`/tower list mine`")
    text = block.to_dict()["text"]["text"]
    assert len(text) <= 3000
    assert "more: `/tower list mine`" in text


def test_the_help_says_every_subcommand_and_escapes_the_note() -> None:
    reply = replies.help_reply("I don't know `<!channel>`.")
    text = "\n".join(texts_of(reply["blocks"]))
    for word in ("register", "list [mine|team|all]", "queue", "conflicts", "show", "plan"):
        assert f"/tower {word}" in text
    assert "&lt;!channel&gt;" in text and "<!channel>" not in text


def _overview(*, manager: bool, size: int) -> Overview:
    title = "Sticky <!channel> basket & more " * 6
    test = {"title": title, "status": "submitted", "start": "2027-01-04", "end": "2027-01-17"}
    clock = {"policy": "review", "subject": "T-1", "business_hours_left": -3.5}
    collision = {
        "id": "C-1",
        "severity": "blocking",
        "kind": "surface",
        "status": "open",
        "agile_vs_bau": True,
        "keys": ["T-1", "T-2"],
        "explanation": "T-1 and T-2 both run on web/checkout <!here> " * 5,
    }
    queued = {"title": title, "team": "checkout-squad", "score": 12.3456}
    shown = min(size, replies.LINES_PER_LIST)  # the overview reads a list's first lines

    def page(rows: list[dict[str, Any]]) -> Page[dict[str, Any]]:
        return Page(rows[:shown], size)

    return Overview(
        user="U0TOWERMGR" if manager else OWNER,
        is_manager=manager,
        teams=[] if manager else SQUAD,
        tests=page([{**test, "key": f"T-{n}", "rank": n} for n in range(size)]),
        clocks=page([{**clock, "subject": f"T-{n}"} for n in range(size)]),
        conflicts=page([{**collision, "id": f"C-{n}"} for n in range(size)]),
        approval_queue=page([{**queued, "key": f"T-{n}", "rank": n + 1} for n in range(size)]),
        blocking=page([{**collision, "id": f"C-{n}"} for n in range(size)]),
        breaches=page([{**clock, "subject": f"T-{n}"} for n in range(size)]),
    )


@pytest.mark.parametrize("manager", [False, True])
@pytest.mark.parametrize("size", [0, 3, 5000])
def test_the_home_view_stays_within_100_blocks_whatever_the_portfolio(
    manager: bool, size: int
) -> None:
    view = replies.home_view(_overview(manager=manager, size=size))
    assert view["type"] == "home"
    assert len(view["blocks"]) <= 100
    for block in view["blocks"]:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
    text = "\n".join(texts_of(view["blocks"]))
    assert "<!channel>" not in text and "<!here>" not in text
    assert ("Approval queue, by rank" in text) is manager
    assert ("SLA breaches" in text) is manager
    if size == 0:
        assert "No active tests." in text
    if size == 3:
        assert "`T-2`" in text and "more:" not in text
        assert "3.5 business hours overdue" in text
    if size == 5000:  # a list counts what it left out from the page's total, not its lines
        [yours] = [t for t in texts_of(view["blocks"]) if t.startswith("*Your tests*")]
        shown = yours.count("\n`T-")
        assert 0 < shown <= 15
        assert yours.endswith(f"_…and {5000 - shown:,} more: `/tower list mine`_")


def test_the_home_view_has_a_register_button() -> None:
    view = replies.home_view(_overview(manager=False, size=1))
    [actions] = [b for b in view["blocks"] if b["type"] == "actions"]
    assert actions["elements"][0]["action_id"] == "open_register"
