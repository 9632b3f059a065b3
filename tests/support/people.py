"""The people and channels of the suite's policies, one name each.

The small policy (tests/data/policy.yaml) and the retail example
(examples/retail/tower.yaml) share these ids: manager U0TOWERMGR, told in C0TOWER;
checkout-squad (agile: U0ANNA, U0BEN; channel C0CHECKOUT); ecommerce (bau: U0CARLA;
channel C0ECOM, small policy).
"""

from __future__ import annotations

MANAGER = "U0TOWERMGR"
OWNER = "U0ANNA"  # checkout-squad (agile)
TEAMMATE = "U0BEN"  # checkout-squad
BAU_OWNER = "U0CARLA"  # ecommerce (bau)
OUTSIDER = "U0NOBODY"  # in no team

TOWER_CHANNEL = "C0TOWER"
SQUAD_CHANNEL = "C0CHECKOUT"  # checkout-squad's
BAU_CHANNEL = "C0ECOM"  # ecommerce's (small policy)
GROWTH_CHANNEL = "C0GROWTH"  # a channel of no team here: a recipient for the outbox's fakes
