"""The fields of the JSON records the CLI prints (README), in the order it prints them."""

from __future__ import annotations

# What a collision's details hold that a listing shows (the record keeps its fixes too).
LISTED_DETAIL_FIELDS = (
    "keys",
    "teams",
    "scope",
    "surfaces",
    "first_day",
    "last_day",
    "days",
    "people_per_week",
    "affected",
)

# `tower conflicts --format json`: one collision.
COLLISION_FIELDS = (
    "id",
    "kind",
    "severity",
    "status",
    "agile_vs_bau",
    *LISTED_DETAIL_FIELDS,
    "explanation",
    "days_to_mde",  # surface and funnel records; null on the others
    "mde_cost",
    "fixes",
    "acknowledged_by",
    "waived_by",
    "waiver_reason",
)

# `tower plan --format json`: one test's placement.
PLAN_FIELDS = (
    "rank",
    "key",
    "title",
    "requested_start",
    "requested_end",
    "planned_start",
    "planned_end",
    "moved_days",
    "deadline",
    "misses_deadline",
    "explanation",
)
