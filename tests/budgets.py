"""Hypothesis example budgets that follow the profile (tests/conftest.py).

A property test names the count it was tuned to under `ci`, the profile CI runs; the loaded
profile scales it as it scales its own default (200 under `ci`): half under `dev`, the quick
local default, 100 times more under `deep`. So `ci` runs what it always ran.
"""

from __future__ import annotations

from hypothesis import settings

CI_DEFAULT = 200
"""max_examples of the `ci` profile: the budgets below are counts under it."""


def examples(under_ci: int) -> int:
    """`under_ci` examples scaled to the loaded profile (never fewer than 10)."""
    return max(10, under_ci * settings.default.max_examples // CI_DEFAULT)
