from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway.clock import Clock, FakeClock, SystemClock


def test_system_clock_is_aware_utc() -> None:
    now = SystemClock().now()
    assert now.tzinfo is UTC
    assert abs(datetime.now(UTC) - now) < timedelta(seconds=5)


def test_both_clocks_satisfy_protocol() -> None:
    assert isinstance(SystemClock(), Clock)
    assert isinstance(FakeClock(datetime(2024, 1, 1, tzinfo=UTC)), Clock)


def test_fake_clock_normalises_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    clock = FakeClock(datetime(2024, 6, 1, 12, 0, tzinfo=plus_two))
    assert clock.now() == datetime(2024, 6, 1, 10, 0, tzinfo=UTC)
    assert clock.now().tzinfo is UTC


def test_fake_clock_advance_and_set() -> None:
    clock = FakeClock(datetime(2024, 1, 1, tzinfo=UTC))
    assert clock.advance(timedelta(days=3, hours=1)) == datetime(2024, 1, 4, 1, tzinfo=UTC)
    assert clock.now() == datetime(2024, 1, 4, 1, tzinfo=UTC)
    clock.set(datetime(2023, 12, 31, tzinfo=UTC))
    assert clock.now() == datetime(2023, 12, 31, tzinfo=UTC)


def test_fake_clock_rejects_naive_and_negative() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        FakeClock(datetime(2024, 1, 1))
    clock = FakeClock(datetime(2024, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.set(datetime(2024, 1, 2))
    with pytest.raises(ValueError, match="negative"):
        clock.advance(timedelta(seconds=-1))


def test_fake_clock_concurrent_advances_are_not_lost() -> None:
    clock = FakeClock(datetime(2024, 1, 1, tzinfo=UTC))

    def worker() -> None:
        for _ in range(1000):
            clock.advance(timedelta(seconds=1))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert clock.now() == datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=8000)
