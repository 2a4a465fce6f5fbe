"""Time sources.

Everything that needs "now" takes a :class:`Clock` so SLA behaviour over days or
weeks can be exercised in tests instantly with :class:`FakeClock`.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "FakeClock", "SystemClock", "ensure_aware"]


def ensure_aware(dt: datetime, what: str = "datetime") -> datetime:
    """Return ``dt`` converted to UTC, rejecting naive values.

    Naive datetimes are refused rather than assumed UTC: a silently misread
    local timestamp would shift every SLA deadline by the UTC offset.
    """
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {dt.isoformat()}")
    return dt.astimezone(UTC)


@runtime_checkable
class Clock(Protocol):
    def now(self) -> datetime:
        """Current instant as a timezone-aware UTC datetime."""
        ...


class SystemClock:
    """Wall-clock time from the operating system."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class FakeClock:
    """Manually driven clock for tests and simulations.

    Guarded by a lock because the daemon's worker threads may read it while a
    test thread advances it.
    """

    def __init__(self, start: datetime) -> None:
        self._now = ensure_aware(start, "FakeClock start")
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by ``delta`` and return the new time.

        Going backwards through ``advance`` is almost always a sign of a test
        bug, so it is refused; use :meth:`set` to deliberately rewind.
        """
        if delta < timedelta(0):
            raise ValueError(f"cannot advance by a negative delta ({delta}); use set() to rewind")
        with self._lock:
            self._now = self._now + delta
            return self._now

    def set(self, dt: datetime) -> None:
        new = ensure_aware(dt, "FakeClock.set value")
        with self._lock:
            self._now = new

    def __repr__(self) -> str:
        return f"FakeClock({self.now().isoformat()})"
