"""The synthetic organisation's policy, the size of a large company's, reproducible from a seed.

The policy is plain data for `tower.policy.validate_policy`: about 2,000 surface nodes under
seven channels (web and app with weekly visitors shrinking down the tree, depth 3 to 5),
300 audience segments in one tree under `all` (children split their parent, so they are
never bigger and roughly disjoint) with 20 declared overlaps, 50 agile and BAU teams,
KPI weights, contact caps on e-mail, SMS and push, three freeze windows and three funnels.
Everything is drawn from the `random.Random` stream `"{seed}:policy"`, so the same seed
gives the same policy.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

YEAR_START = date(2027, 1, 4)  # a Monday; also the "today" the ranking is scored on
SURFACES = 2000
TEAMS = 50
SEGMENTS = 300
OVERLAPS = 20
MAX_CONCURRENT_PER_SURFACE = 4


@dataclass(frozen=True)
class _Level:
    """How many children a node gets at one level, and how often it gets any."""

    low: int
    high: int
    chance: float = 1.0


@dataclass(frozen=True)
class Channel:
    """A channel's surface tree, and how much of the synthetic portfolio tests on it."""

    name: str
    visitors: int | None  # weekly visitors at the channel root; None: no web traffic
    levels: tuple[_Level, ...]  # below the root: level 2, 3, ...
    vocabulary: tuple[tuple[str, ...], ...]  # node names per level
    share: float  # of the tests


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_SECTIONS = _words(
    "home search listing product basket checkout account help stores offers brands "
    "blog gifts delivery returns wishlist outlet new_in inspiration services"
)
_PAGES = _words(
    "main detail landing category compare promo guide faq summary overview edit "
    "review confirm results filters gallery sizes bundle sale"
)
_SLOTS = _words(
    "hero banner carousel cta grid sidebar footer header recommendations reviews "
    "badge modal tooltip form price copy image video nav search_box"
)
_PARTS = _words("title image button copy layout colour")
_CAMPAIGN_GROUPS = _words("promotional transactional lifecycle newsletter service loyalty")
_CAMPAIGNS = _words(
    "welcome abandoned_basket winback birthday weekly_digest flash_sale back_in_stock "
    "price_drop order_update review_request referral survey"
)
_QUEUES = _words("inbound outbound retention sales support complaints")
_SCRIPTS = _words("greeting offer upsell close verification hold_message survey")

CHANNELS: tuple[Channel, ...] = (
    Channel(
        "web",
        6_000_000,
        (_Level(14, 18), _Level(5, 9, 0.95), _Level(4, 8, 0.8), _Level(2, 4, 0.25)),
        (_SECTIONS, _PAGES, _SLOTS, _PARTS),
        0.45,
    ),
    Channel(
        "app",
        3_000_000,
        (_Level(10, 14), _Level(4, 8, 0.95), _Level(3, 7, 0.8), _Level(2, 4, 0.2)),
        (_SECTIONS, _PAGES, _SLOTS, _PARTS),
        0.25,
    ),
    Channel(
        "email",
        None,
        (_Level(4, 6), _Level(5, 9), _Level(3, 6, 0.7)),
        (_CAMPAIGN_GROUPS, _CAMPAIGNS, _PARTS),
        0.14,
    ),
    Channel(
        "push",
        None,
        (_Level(3, 5), _Level(4, 8), _Level(2, 4, 0.3)),
        (_CAMPAIGN_GROUPS, _CAMPAIGNS, _PARTS),
        0.06,
    ),
    Channel(
        "sms",
        None,
        (_Level(3, 4), _Level(3, 6), _Level(2, 3, 0.3)),
        (_CAMPAIGN_GROUPS, _CAMPAIGNS, _PARTS),
        0.03,
    ),
    Channel(
        "call_center",
        None,
        (_Level(3, 5), _Level(4, 7), _Level(3, 6, 0.6)),
        (_QUEUES, _SCRIPTS, _PARTS),
        0.04,
    ),
    Channel(
        "direct_mail",
        None,
        (_Level(3, 4), _Level(3, 5), _Level(2, 4, 0.5)),
        (("catalogue", "postcard", "letter", "leaflet"), _CAMPAIGNS, _PARTS),
        0.03,
    ),
)

# Sections the freeze windows name.
_REQUIRED_SECTIONS = {"web": "checkout", "app": "checkout", "email": "promotional"}
_TOP_SEGMENTS = _words("anonymous logged_in app_users lapsed prospects b2b staff subscribers")
_SEGMENT_WORDS = _words(
    "new returning loyal gold silver bronze young senior family student north south "
    "east west city rural mobile desktop high_value low_value frequent occasional "
    "dormant vip"
)
_KPIS = {
    "conversion_rate": 3.0,
    "revenue_per_visitor": 3.0,
    "average_order_value": 2.0,
    "retention_rate": 2.0,
    "signup_rate": 2.0,
    "click_through_rate": 1.0,
    "engagement": 1.0,
    "app_installs": 1.5,
    "contact_resolution": 1.0,
}
_AREAS = _words(
    "checkout search loyalty app personalisation pricing content payments onboarding "
    "retention crm ecommerce merchandising call-centre direct-mail"
)


def synthetic_policy(seed: int) -> dict[str, Any]:
    """The policy data of the synthetic organisation (for `validate_policy`)."""
    rng = random.Random(f"{seed}:policy")
    surfaces = {channel.name: _surface_tree(rng, channel) for channel in CHANNELS}
    _fit_surfaces(rng, surfaces, SURFACES)
    audiences, parents = _audience_tree(rng)
    teams = _teams(rng)
    return {
        "timezone": "Europe/London",
        "calendar": {"holidays": "GB", "closed": [YEAR_START + timedelta(days=354)]},
        "managers": ["U0MGR1", "U0MGR2"],
        "tower_channel": "C0TOWER",
        "teams": teams,
        "surfaces": surfaces,
        "funnels": _funnels(rng, surfaces),
        "audiences": audiences,
        "overlaps": _overlaps(rng, parents),
        "contact_caps": [
            {"channel": "email", "max": 3, "per_days": 7},
            {"channel": "sms", "max": 2, "per_days": 14},
            {"channel": "push", "max": 4, "per_days": 7},
        ],
        "kpis": dict(_KPIS),
        "freeze_windows": [
            {
                "name": "Black Friday",
                "start": YEAR_START + timedelta(days=319),
                "end": YEAR_START + timedelta(days=326),
                "surfaces": ["web/checkout", "app/checkout"],
                "reason": "peak trading: no changes to checkout",
            },
            {
                "name": "Christmas",
                "start": YEAR_START + timedelta(days=348),
                "end": YEAR_START + timedelta(days=362),
                "team_kinds": ["agile"],
                "reason": "code freeze for product squads",
            },
            {
                "name": "Spring sale",
                "start": YEAR_START + timedelta(days=80),
                "end": YEAR_START + timedelta(days=86),
                "surfaces": ["email/promotional", "push"],
            },
        ],
        "protocol": {"max_concurrent_per_surface": MAX_CONCURRENT_PER_SURFACE},
    }


def _names(rng: random.Random, vocabulary: Sequence[str], count: int) -> list[str]:
    """`count` distinct names, from the vocabulary first, then numbered."""
    if count <= len(vocabulary):
        return rng.sample(list(vocabulary), count)
    return [*vocabulary, *(f"{vocabulary[0]}_{n}" for n in range(2, count - len(vocabulary) + 2))]


def _surface_tree(rng: random.Random, channel: Channel) -> dict[str, Any]:
    def grow(depth: int, visitors: int | None) -> dict[str, Any]:
        node: dict[str, Any] = {} if visitors is None else {"weekly_visitors": visitors}
        level = depth - 2
        if level >= len(channel.levels) or rng.random() >= channel.levels[level].chance:
            return node
        rule = channel.levels[level]
        children = {}
        for name in _names(rng, channel.vocabulary[level], rng.randint(rule.low, rule.high)):
            inner = None if visitors is None else int(visitors * rng.uniform(0.05, 0.7))
            children[name] = grow(depth + 1, inner)
        node["children"] = children
        return node

    tree = grow(2, channel.visitors)
    required = _REQUIRED_SECTIONS.get(channel.name)
    if required is not None and required not in tree["children"]:
        visitors = None if channel.visitors is None else channel.visitors // 10
        tree["children"][required] = grow(3, visitors)
    return tree


def _fit_surfaces(rng: random.Random, roots: dict[str, Any], target: int) -> None:
    """Add slots to, or drop slots from, random pages until there are exactly `target` nodes."""
    nodes: list[tuple[Channel, int, dict[str, Any], dict[str, Any]]] = []

    def walk(channel: Channel, node: dict[str, Any], depth: int, parent: dict[str, Any]) -> None:
        nodes.append((channel, depth, node, parent))
        for child in node.get("children", {}).values():
            walk(channel, child, depth + 1, node)

    for channel in CHANNELS:
        walk(channel, roots[channel.name], 1, roots)
    if len(nodes) > target:
        leaves = [(node, parent) for _, depth, node, parent in nodes if depth >= 4]
        leaves = [(node, parent) for node, parent in leaves if not node.get("children")]
        for node, parent in rng.sample(leaves, len(nodes) - target):
            children = parent["children"]
            del children[next(name for name, child in children.items() if child is node)]
            if not children:
                del parent["children"]
        return
    pages = [(c, d, n) for c, d, n, _ in nodes if d in (3, 4) and d <= len(c.levels)]
    for _ in range(target - len(nodes)):
        channel, depth, node = rng.choice(pages)
        children = node.setdefault("children", {})
        free = [name for name in channel.vocabulary[depth - 1] if name not in children]
        name = rng.choice(free) if free else f"slot_{len(children) + 1}"
        visitors = node.get("weekly_visitors")
        children[name] = {} if visitors is None else {"weekly_visitors": int(visitors * 0.3)}


def _audience_tree(rng: random.Random) -> tuple[dict[str, Any], dict[str, str | None]]:
    """The segment tree, and each segment's parent (None for `all`)."""
    root: dict[str, Any] = {"size": 20_000_000}
    parents: dict[str, str | None] = {"all": None}
    nodes = {"all": root}
    depth = {"all": 0}
    frontier = ["all"]
    while len(parents) < SEGMENTS and frontier:
        name = frontier.pop(rng.randrange(len(frontier)) if len(frontier) > 1 else 0)
        node = nodes[name]
        wanted = len(_TOP_SEGMENTS) if name == "all" else rng.randint(2, 6)
        count = min(wanted, SEGMENTS - len(parents))
        words = _TOP_SEGMENTS[:count] if name == "all" else rng.sample(_SEGMENT_WORDS, count)
        weights = [rng.uniform(0.2, 1.0) for _ in words]
        covered = node["size"] * rng.uniform(0.5, 0.95)
        children = {}
        for word, weight in zip(words, weights, strict=True):
            child = word if name == "all" else f"{name}-{word}"
            children[child] = nodes[child] = {"size": int(covered * weight / sum(weights))}
            parents[child] = name
            depth[child] = depth[name] + 1
            if depth[child] < 4:
                frontier.append(child)
        node["children"] = children
    return {"all": root}, parents


def _ancestors(name: str, parents: dict[str, str | None]) -> set[str]:
    found = set()
    parent = parents[name]
    while parent is not None:
        found.add(parent)
        parent = parents[parent]
    return found


def _overlaps(rng: random.Random, parents: dict[str, str | None]) -> list[dict[str, Any]]:
    candidates = sorted(name for name in parents if name != "all")
    pairs: set[frozenset[str]] = set()
    overlaps: list[dict[str, Any]] = []
    while len(overlaps) < OVERLAPS:
        a, b = rng.sample(candidates, 2)
        pair = frozenset((a, b))
        if pair in pairs or a in _ancestors(b, parents) or b in _ancestors(a, parents):
            continue
        pairs.add(pair)
        overlaps.append({"a": a, "b": b, "share": round(rng.uniform(0.05, 0.6), 2)})
    return overlaps


def _teams(rng: random.Random) -> list[dict[str, Any]]:
    teams = []
    for number in range(1, TEAMS + 1):
        kind = "agile" if rng.random() < 0.5 else "bau"
        area = _AREAS[(number - 1) % len(_AREAS)]
        suffix = "squad" if kind == "agile" else "team"
        teams.append(
            {
                "key": f"{area}-{suffix}-{number}",
                "name": f"{area.replace('-', ' ').title()} {suffix.title()} {number}",
                "kind": kind,
                "channel": f"C0T{number:02d}",
                "members": [f"U0T{number:02d}M{m}" for m in range(1, rng.randint(2, 5) + 1)],
            }
        )
    return teams


def _funnels(rng: random.Random, surfaces: dict[str, Any]) -> dict[str, list[str]]:
    """Up to three funnels, each through pages of distinct sections of web or app."""
    funnels = {}
    for name, channel, length in (("web_purchase", "web", 5), ("app_purchase", "app", 4)):
        sections = [s for s, node in surfaces[channel]["children"].items() if node.get("children")]
        steps = []
        for section in rng.sample(sections, min(length, len(sections))):
            page = rng.choice(sorted(surfaces[channel]["children"][section]["children"]))
            steps.append(f"{channel}/{section}/{page}")
        funnels[name] = steps
    campaigns = surfaces["email"]["children"]
    group = rng.choice(sorted(campaigns))
    funnels["email_to_web"] = [
        f"email/{group}",
        funnels["web_purchase"][0],
        funnels["web_purchase"][-1],
    ]
    return funnels
