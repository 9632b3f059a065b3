"""The engine tests' hand-built policy, whose every answer is computed by hand, and tests on it.

Surfaces: web (5000 visitors a week) with home, product and checkout (1000) holding cart and
payment; app (2000) with home; email (no visitor counts) with promo and newsletter. The
purchase funnel is home -> product -> cart -> payment. Audiences: all 10000 = anonymous 4000
+ logged_in 4000 (loyalty 1000 inside) + app_users 2000 + partners 1000, with half of
app_users (1000 people) declared logged in. On email a test reaches its whole audience; on a
web page it reaches visitors x audience / 10000. At most 2 tests per surface; at most 2 email
activities per 7 days. Days are June 2026's (`day`).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from datetime import date

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tower.engine.detector import CollisionEngine
from tower.engine.findings import Finding
from tower.engine.kinds import CollisionKind
from tower.engine.portfolio import Compiler, Footprint, PortfolioItem
from tower.experiments.spec import ExperimentKind, ExperimentSpec, ExperimentStatus
from tower.policy import Policy, parse_policy

POLICY: Policy = parse_policy(
    textwrap.dedent(
        """
        teams:
          - {key: squad, name: Checkout Squad, kind: agile}
          - {key: growth, name: Growth Squad, kind: agile}
          - {key: crm, name: CRM, kind: bau}
          - {key: ecom, name: E-commerce, kind: bau}
        surfaces:
          web:
            weekly_visitors: 5000
            children:
              home: {}
              product: {}
              checkout: {weekly_visitors: 1000, children: {cart: {}, payment: {}}}
          app: {weekly_visitors: 2000, children: {home: {}}}
          email: {children: {promo: {}, newsletter: {}}}
        funnels: {purchase: [web/home, web/product, web/checkout/cart, web/checkout/payment]}
        audiences:
          all:
            size: 10000
            children:
              anonymous: {size: 4000}
              logged_in: {size: 4000, children: {loyalty: {size: 1000}}}
              app_users: {size: 2000}
              partners: {size: 1000}
        overlaps: [{a: app_users, b: logged_in, share: 0.5}]
        contact_caps: [{channel: email, max: 2, per_days: 7}]
        protocol: {max_concurrent_per_surface: 2}
        """
    )
)
SURFACES = sorted(POLICY.surface_paths)
SEGMENTS = sorted(POLICY.segment_names)


def day(n: int) -> date:
    """Day `n` of June 2026 (the 1st is a Monday)."""
    return date(2026, 6, n)


def item(
    number: int,
    surfaces: Sequence[str],
    start: int,
    end: int,
    *,
    audiences: Sequence[str] = (),
    exclude: Sequence[str] = (),
    team: str = "squad",
    traffic: float = 100.0,
    group: str | None = None,
    status: ExperimentStatus = ExperimentStatus.DRAFT,
) -> PortfolioItem:
    """Test T-`number` running from June `start` to June `end` (inclusive)."""
    spec = ExperimentSpec(
        title=f"Test {number}",
        team=team,
        owner="U0OWNER",
        kind=ExperimentKind.AB_TEST,
        surfaces=tuple(surfaces),
        start=day(start),
        end=day(end),
        audiences=tuple(audiences),
        exclude_audiences=tuple(exclude),
        traffic=traffic,
        exclusion_group=group,
    )
    return PortfolioItem(f"T-{number}", number, status, spec)


def compile_all(*items: PortfolioItem) -> tuple[Compiler, list[Footprint]]:
    compiler = Compiler(POLICY)
    return compiler, compiler.compile_active(items)


def scan(*items: PortfolioItem) -> list[Finding]:
    compiler, footprints = compile_all(*items)
    return CollisionEngine(compiler, footprints).scan()


def only(findings: list[Finding], kind: CollisionKind | None = None) -> Finding:
    matching = [f for f in findings if kind is None or f.kind == kind]
    assert len(matching) == 1, matching
    return matching[0]


def of_kind(findings: list[Finding], kind: CollisionKind) -> list[Finding]:
    return [f for f in findings if f.kind == kind]


# --- random small portfolios on it ----------------------------------------------------


@st.composite
def portfolios(draw: st.DrawFn) -> list[PortfolioItem]:
    size = draw(st.integers(min_value=2, max_value=8))
    items = []
    for number in range(1, size + 1):
        surfaces = draw(st.lists(st.sampled_from(SURFACES), min_size=1, max_size=2, unique=True))
        audiences = draw(st.lists(st.sampled_from(SEGMENTS), max_size=2, unique=True))
        exclude = draw(
            st.lists(st.sampled_from([s for s in SEGMENTS if s not in audiences]), max_size=1)
        )
        start = draw(st.integers(min_value=1, max_value=20))
        length = draw(st.integers(min_value=1, max_value=10))
        items.append(
            item(
                number,
                surfaces,
                start,
                start + length - 1,
                audiences=audiences,
                exclude=exclude,
                team=draw(st.sampled_from(["squad", "growth", "crm", "ecom"])),
                traffic=draw(st.sampled_from([0.5, 10.0, 50.0, 60.0, 100.0])),
                group=draw(st.sampled_from([None, None, "g", "h"])),
            )
        )
    return draw(st.permutations(items))


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
