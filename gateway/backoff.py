"""Capped exponential backoff, shared by the outbox sender and the case timers."""

from __future__ import annotations

from datetime import timedelta

# 2**64 times any sensible initial delay is far beyond any cap; past it the exponent
# no longer changes the result, so it stops there instead of overflowing.
_MAX_DOUBLINGS = 64


def retry_delay(attempts: int, initial: timedelta, longest: timedelta) -> timedelta:
    """`initial` doubled per failed attempt after the first, never above `longest`."""
    doublings = min(max(0, attempts - 1), _MAX_DOUBLINGS)
    # Floats: a timedelta multiplied by 2**47 already overflows; seconds as a float do not.
    seconds = min(initial.total_seconds() * 2.0**doublings, longest.total_seconds())
    return timedelta(seconds=seconds)
