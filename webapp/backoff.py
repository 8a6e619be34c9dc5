"""How long to wait before trying again something that failed for a passing reason."""
from __future__ import annotations

import random


def backoff_seconds(attempts: int, base: float, cap: float) -> float:
    """Exponential backoff with full jitter after `attempts` failures in a row: at random up to
    base × 2^(attempts-1), at most `cap` (spreads the retries of many workers)."""
    return random.uniform(0, min(cap, base * 2 ** (attempts - 1)))
