"""The policy graph and the audience model, on a hand-built policy with known answers.

Surfaces (preorder ids in brackets):

    web [0] (5000 visitors)      app [5] (2000)        email [7] (no visitor counts)
      home [1]                     home [6]              promo [8]
      checkout [2] (1000)
        cart [3]
        payment [4]

Audiences (weekly sizes); siblings are disjoint unless declared:

    all 10000
      anonymous 4000
      logged_in 4000
        loyalty 1000
      app_users 2000        (half of it, 1000 people, is also logged_in)
      partners 1000
"""

from __future__ import annotations

import itertools
import textwrap

import pytest

from tower.engine.audience import AudienceModel
from tower.engine.graph import PolicyGraph, build_graph
from tower.policy import Policy, parse_policy

POLICY_YAML = textwrap.dedent(
    """
    surfaces:
      web:
        weekly_visitors: 5000
        children:
          home: {}
          checkout: {weekly_visitors: 1000, children: {cart: {}, payment: {}}}
      app: {weekly_visitors: 2000, children: {home: {}}}
      email: {children: {promo: {}}}
    funnels: {purchase: [web/home, web/checkout/cart, web/checkout/payment]}
    audiences:
      all:
        size: 10000
        children:
          anonymous: {size: 4000}
          logged_in: {size: 4000, children: {loyalty: {size: 1000}}}
          app_users: {size: 2000}
          partners: {size: 1000}
    overlaps: [{a: app_users, b: logged_in, share: 0.5}]
    """
)

PATHS = [
    "web",
    "web/home",
    "web/checkout",
    "web/checkout/cart",
    "web/checkout/payment",
    "app",
    "app/home",
    "email",
    "email/promo",
]
SEGMENTS = ["all", "anonymous", "logged_in", "loyalty", "app_users", "partners"]


@pytest.fixture(scope="module")
def policy() -> Policy:
    return parse_policy(POLICY_YAML)


@pytest.fixture
def graph(policy: Policy) -> PolicyGraph:
    """A fresh graph per test, so no test sees another's cached estimates."""
    return build_graph(policy)


@pytest.fixture
def model(graph: PolicyGraph) -> AudienceModel:
    return AudienceModel(graph.segments)


# --- surfaces --------------------------------------------------------------------------


def test_surfaces_are_numbered_in_preorder_with_subtree_intervals(graph: PolicyGraph) -> None:
    surfaces = graph.surfaces
    assert surfaces.paths == PATHS
    assert surfaces.ids == {path: index for index, path in enumerate(PATHS)}
    assert surfaces.end == [5, 2, 5, 4, 5, 7, 7, 9, 9]


def test_ancestor_chains_run_from_self_to_channel(graph: PolicyGraph) -> None:
    surfaces = graph.surfaces
    assert surfaces.ancestors[surfaces.ids["web/checkout/payment"]] == (4, 2, 0)
    assert surfaces.ancestors[surfaces.ids["app/home"]] == (6, 5)
    assert surfaces.ancestors[surfaces.ids["email"]] == (7,)
    assert [surfaces.channel(node) for node in range(len(PATHS))] == [
        "web",
        "web",
        "web",
        "web",
        "web",
        "app",
        "app",
        "email",
        "email",
    ]


def test_weekly_visitors_are_inherited_from_the_nearest_counted_ancestor(
    graph: PolicyGraph,
) -> None:
    assert graph.surfaces.visitors == [5000, 5000, 1000, 1000, 1000, 2000, 2000, None, None]


def test_funnels_are_compiled_to_surface_ids(graph: PolicyGraph) -> None:
    assert graph.funnels == {"purchase": (1, 3, 4)}


@pytest.mark.parametrize(
    ("a", "b", "nested", "a_contains_b", "deeper"),
    [
        ("web/checkout", "web/checkout", True, True, "web/checkout"),
        ("web/checkout", "web/checkout/payment", True, True, "web/checkout/payment"),
        ("web/checkout/payment", "web/checkout", True, False, "web/checkout/payment"),
        ("web", "web/checkout/cart", True, True, "web/checkout/cart"),
        ("web/checkout/cart", "web", True, False, "web/checkout/cart"),
        ("web/checkout/cart", "web/checkout/payment", False, False, None),
        ("web/home", "web/checkout", False, False, None),
        ("web/home", "app/home", False, False, None),
        ("web", "email/promo", False, False, None),
        ("email", "email/promo", True, True, "email/promo"),
    ],
)
def test_nesting_between_two_surfaces(
    graph: PolicyGraph, a: str, b: str, nested: bool, a_contains_b: bool, deeper: str | None
) -> None:
    surfaces = graph.surfaces
    x, y = surfaces.ids[a], surfaces.ids[b]
    assert surfaces.nested(x, y) is nested
    assert surfaces.nested(y, x) is nested
    assert surfaces.contains(x, y) is a_contains_b
    if deeper is not None:
        assert surfaces.paths[surfaces.deeper(x, y)] == deeper
        assert surfaces.paths[surfaces.deeper(y, x)] == deeper


def test_nesting_agrees_with_path_prefixes_for_every_pair(graph: PolicyGraph) -> None:
    surfaces = graph.surfaces
    for a in PATHS:
        for b in PATHS:
            inside = b == a or b.startswith(a + "/")
            assert surfaces.contains(surfaces.ids[a], surfaces.ids[b]) is inside, (a, b)


def test_sibling_order_follows_the_file() -> None:
    policy = parse_policy(
        "surfaces: {web: {children: {z: {}, a: {}, m: {}}}}\naudiences: {all: {size: 1}}"
    )
    assert build_graph(policy).surfaces.paths == ["web", "web/z", "web/a", "web/m"]


# --- segments --------------------------------------------------------------------------


def test_segments_carry_sizes_ancestors_and_overlaps(graph: PolicyGraph) -> None:
    segments = graph.segments
    assert segments.names == SEGMENTS
    assert segments.sizes == [10000, 4000, 4000, 1000, 2000, 1000]
    assert segments.root == 0
    assert segments.population == 10000
    assert segments.ancestors[segments.ids["loyalty"]] == (3, 2, 0)
    assert segments.overlaps == {(4, 2): 0.5, (2, 4): 0.5}
    assert segments.contains(segments.ids["logged_in"], segments.ids["loyalty"])
    assert not segments.contains(segments.ids["loyalty"], segments.ids["logged_in"])
    assert segments.contains(segments.ids["all"], segments.ids["loyalty"])


@pytest.mark.parametrize(
    ("a", "b", "people"),
    [
        ("anonymous", "logged_in", 0.0),  # disjoint siblings
        ("anonymous", "loyalty", 0.0),  # disjoint branches, nothing declared
        ("partners", "app_users", 0.0),
        ("logged_in", "loyalty", 1000.0),  # nested: the inner segment
        ("all", "loyalty", 1000.0),
        ("loyalty", "loyalty", 1000.0),
        ("app_users", "logged_in", 1000.0),  # declared: 0.5 x min(2000, 4000)
        # the declared overlap reaches a descendant: 0.5 x 2000 x (1000 / 4000)
        ("app_users", "loyalty", 250.0),
    ],
)
def test_shared_people_between_segments(
    model: AudienceModel, a: str, b: str, people: float
) -> None:
    assert model.shared(model.compile([a]), model.compile([b])) == pytest.approx(people)
    assert fresh_shared(b, a) == pytest.approx(people)


def fresh_shared(a: str, b: str, policy_yaml: str = POLICY_YAML) -> float:
    """People segments `a` and `b` share, from a model of its own (no cache from another
    call order)."""
    model = AudienceModel(build_graph(parse_policy(policy_yaml)).segments)
    return model.shared(model.compile([a]), model.compile([b]))


TWO_OVERLAPS_YAML = textwrap.dedent(
    """
    surfaces: {web: {}}
    audiences:
      all:
        size: 10000
        children:
          logged_in: {size: 4000, children: {loyalty: {size: 1000}}}
          app_users: {size: 2000, children: {app_loyal: {size: 500}}}
    overlaps:
      - {a: loyalty, b: app_users, share: 0.5}
      - {a: logged_in, b: app_loyal, share: 0.2}
    """
)


def test_shared_people_does_not_depend_on_argument_order_with_two_overlaps() -> None:
    one = fresh_shared("loyalty", "app_loyal", TWO_OVERLAPS_YAML)
    assert one == pytest.approx(fresh_shared("app_loyal", "loyalty", TWO_OVERLAPS_YAML))
    # Both overlaps put people in both. loyalty~app_users: 500 people, spread under
    # app_users by own regions (app_users 1500, app_loyal 500): 125 in app_loyal.
    # logged_in~app_loyal: 100 people, spread under logged_in (3000, loyalty 1000): 25.
    assert one == pytest.approx(125 + 25)


# --- audiences -------------------------------------------------------------------------


def test_an_empty_target_list_means_everyone(model: AudienceModel) -> None:
    everyone = model.compile([])
    assert everyone.targets == (0,)
    assert everyone.excluded == ()
    assert everyone.size == 10000
    assert model.compile(["all"]) is everyone


def test_audiences_are_interned_whatever_the_order_and_redundant_targets(
    model: AudienceModel,
) -> None:
    logged_in = model.compile(["logged_in"])
    assert model.compile(["loyalty", "logged_in"]) is logged_in  # loyalty adds nobody
    assert logged_in.targets == (2,)
    pair = model.compile(["anonymous", "partners"])
    assert model.compile(["partners", "anonymous"]) is pair
    assert pair.size == 5000
    assert len({logged_in.id, pair.id, model.compile([]).id}) == 3


@pytest.mark.parametrize(
    ("targets", "excluded", "size"),
    [
        (["loyalty"], [], 1000.0),
        (["anonymous", "logged_in"], [], 8000.0),
        (["app_users", "logged_in"], [], 5000.0),  # 2000 + 4000 - 1000 declared in both
        ([], ["logged_in"], 6000.0),
        (["logged_in"], ["loyalty"], 3000.0),
        (["logged_in"], ["app_users"], 3000.0),  # 4000 - 1000 declared in both
        (["loyalty"], ["logged_in"], 0.0),  # the exclusion covers the target
        (["logged_in"], ["anonymous"], 4000.0),  # a disjoint exclusion removes nobody
    ],
)
def test_audience_sizes(
    model: AudienceModel, targets: list[str], excluded: list[str], size: float
) -> None:
    assert model.compile(targets, excluded).size == pytest.approx(size)


def test_nested_exclusions_are_not_removed_twice(model: AudienceModel) -> None:
    assert model.compile([], ["logged_in", "loyalty"]).size == pytest.approx(6000.0)


Side = tuple[list[str], list[str]]


@pytest.mark.parametrize(
    ("a", "b", "people"),
    [
        ((["anonymous"], []), (["logged_in"], []), 0.0),
        ((["logged_in"], []), (["loyalty"], []), 1000.0),  # the loyalty size
        ((["app_users"], []), (["loyalty"], []), 250.0),  # 0.5 x 2000 x 1000/4000
        ((["app_users"], []), (["logged_in"], []), 1000.0),
        ((["logged_in"], []), ([], ["logged_in"]), 0.0),  # excluded from everyone
        ((["loyalty"], []), (["logged_in"], ["loyalty"]), 0.0),
        ((["logged_in"], []), ([], ["loyalty"]), 3000.0),  # partial: 4000 - 1000
        ((["all"], []), ([], ["loyalty"]), 9000.0),
        # app_users and logged_in share 1000, a quarter of whom are loyalty members
        ((["app_users"], []), (["logged_in"], ["loyalty"]), 750.0),
        ((["anonymous", "partners"], []), (["partners", "loyalty"], []), 1000.0),
    ],
)
def test_people_two_audiences_share(model: AudienceModel, a: Side, b: Side, people: float) -> None:
    first, second = model.compile(*a), model.compile(*b)
    assert model.shared(first, second) == pytest.approx(people)
    assert model.shared(second, first) == pytest.approx(people)
    fresh = AudienceModel(build_graph(parse_policy(POLICY_YAML)).segments)
    assert fresh.shared(fresh.compile(*b), fresh.compile(*a)) == pytest.approx(people)


def test_shared_people_never_exceed_either_audience(model: AudienceModel) -> None:
    audiences = [model.compile([name]) for name in SEGMENTS]
    audiences += [model.compile([], [name]) for name in SEGMENTS[1:]]
    for a in audiences:
        for b in audiences:
            shared = model.shared(a, b)
            assert 0 <= shared <= min(a.size, b.size) + 1e-9


def test_audiences_that_may_not_share_share_nobody(model: AudienceModel) -> None:
    # The quick mask test must never hide people the full estimate finds.
    singles = [[name] for name in SEGMENTS]
    targets = [*singles, []] + [[a, b] for a, b in itertools.combinations(SEGMENTS[1:], 2)]
    audiences = [model.compile(t) for t in targets]
    audiences += [model.compile(t, [x]) for t in targets for x in SEGMENTS[1:] if [x] != t]
    refused = 0
    for a in audiences:
        for b in audiences:
            if not a.may_share(b):
                refused += 1
                every_overlap = (1 << len(model.population.overlaps)) - 1
                assert model.population.shared(a.members, b.members, every_overlap) == 0, (a, b)
            assert a.may_share(b) == b.may_share(a)
    assert refused  # the policy has audiences that cannot meet: anonymous and logged_in
