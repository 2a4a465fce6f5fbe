"""Business-hours arithmetic for SLA clocks.

A working day's window is the local wall-clock span ``day_start``..``day_end``
in the calendar's IANA timezone, so DST changes move the window in UTC rather
than stretching or shrinking it. Windows are half-open: open at ``day_start``,
closed at ``day_end``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.clock import ensure_aware

__all__ = ["BusinessCalendar"]

_ZERO = timedelta(0)
_ONE_DAY = timedelta(days=1)
_ALL_DAYS: frozenset[int] = frozenset(range(7))
_MON_FRI: frozenset[int] = frozenset(range(5))


@dataclass(frozen=True)
class BusinessCalendar:
    timezone: str
    working_days: frozenset[int] = _MON_FRI
    day_start: time = time(9, 0)
    day_end: time = time(17, 0)
    holidays: frozenset[date] = frozenset()
    # When set, every instant counts as business time: working days, hours and
    # holidays are ignored.
    always_open: bool = False
    _tz: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            tz = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {self.timezone!r}") from exc
        object.__setattr__(self, "_tz", tz)

        # Config loaders tend to hand over lists/sets; normalising here keeps the
        # instance hashable and genuinely immutable.
        working = frozenset(self.working_days)
        object.__setattr__(self, "working_days", working)
        object.__setattr__(self, "holidays", frozenset(self.holidays))

        bad_days = sorted(d for d in working if not isinstance(d, int) or not 0 <= d <= 6)
        if bad_days:
            raise ValueError(f"working_days must be integers 0 (Monday) to 6, got {bad_days}")
        if self.day_start.tzinfo is not None or self.day_end.tzinfo is not None:
            raise ValueError("day_start/day_end must be naive local times")
        if self.always_open:
            return
        if not working:
            raise ValueError("working_days must not be empty unless always_open is set")
        if self.day_end <= self.day_start:
            raise ValueError(
                f"day_end ({self.day_end.isoformat()}) must be after "
                f"day_start ({self.day_start.isoformat()})"
            )

    @classmethod
    def twenty_four_seven(cls, timezone: str = "UTC") -> BusinessCalendar:
        return cls(
            timezone=timezone,
            working_days=_ALL_DAYS,
            day_start=time.min,
            day_end=time.max,
            always_open=True,
        )

    @classmethod
    def from_iterables(
        cls,
        timezone: str,
        working_days: Iterable[int],
        day_start: time,
        day_end: time,
        holidays: Iterable[date] = (),
    ) -> BusinessCalendar:
        """Build from plain iterables, typically parsed configuration."""
        return cls(
            timezone=timezone,
            working_days=frozenset(working_days),
            day_start=day_start,
            day_end=day_end,
            holidays=frozenset(holidays),
        )

    # -- window helpers ---------------------------------------------------

    def _window(self, day: date) -> tuple[datetime, datetime] | None:
        """UTC bounds of the business window on local date ``day``, if any."""
        if day.weekday() not in self.working_days or day in self.holidays:
            return None
        # Round-tripping through UTC resolves wall times that fall in a DST gap
        # or overlap to a real instant (zoneinfo's fold=0 rules).
        start = datetime.combine(day, self.day_start, self._tz).astimezone(UTC)
        end = datetime.combine(day, self.day_end, self._tz).astimezone(UTC)
        if end <= start:
            # Only possible when a DST jump swallows the whole window.
            return None
        return start, end

    def _windows_from(self, at: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Windows that end after ``at``, in order.

        Windows lie within their local date, so nothing before ``at``'s local
        date can end after ``at``.
        """
        day = at.astimezone(self._tz).date()
        while True:
            window = self._window(day)
            if window is not None and window[1] > at:
                yield window
            day += _ONE_DAY

    # -- public API -------------------------------------------------------

    def is_open(self, at: datetime) -> bool:
        at = ensure_aware(at, "at")
        if self.always_open:
            return True
        window = self._window(at.astimezone(self._tz).date())
        return window is not None and window[0] <= at < window[1]

    def next_open(self, at: datetime) -> datetime:
        """The first business instant at or after ``at`` (UTC)."""
        at = ensure_aware(at, "at")
        if self.always_open:
            return at
        start, _ = next(self._windows_from(at))
        return max(start, at)

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """Instant at which ``duration`` of business time has elapsed after ``start``.

        A deadline that lands exactly on a window's end stays there rather than
        jumping to the next opening: the SLA is met by then.
        """
        start = ensure_aware(start, "start")
        if duration < _ZERO:
            raise ValueError(f"duration must not be negative, got {duration}")
        if self.always_open or duration == _ZERO:
            return start + duration
        remaining = duration
        for win_start, win_end in self._windows_from(start):
            begin = max(win_start, start)
            available = win_end - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
        raise AssertionError("unreachable: window iterator is infinite")

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Business time between two instants; zero if ``end <= start``."""
        start = ensure_aware(start, "start")
        end = ensure_aware(end, "end")
        if end <= start:
            return _ZERO
        if self.always_open:
            return end - start
        total = _ZERO
        for win_start, win_end in self._windows_from(start):
            if win_start >= end:
                break
            total += min(win_end, end) - max(win_start, start)
        return total
