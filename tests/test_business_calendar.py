from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.business_calendar import BusinessCalendar
from gateway.timefmt import format_duration, parse_duration

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=BERLIN)


def office(tz: str = "Europe/Berlin", holidays: frozenset[date] = frozenset()) -> BusinessCalendar:
    return BusinessCalendar(
        timezone=tz,
        working_days=frozenset(range(5)),
        day_start=time(9),
        day_end=time(18),
        holidays=holidays,
    )


# -- add -------------------------------------------------------------------


def test_friday_evening_rolls_to_monday() -> None:
    # 2024-03-08 is a Friday.
    due = office().add(berlin(2024, 3, 8, 17, 30), timedelta(hours=1))
    assert due == berlin(2024, 3, 11, 9, 30)
    assert due.tzinfo is UTC


def test_received_after_hours_starts_at_next_opening() -> None:
    cal = office()
    assert cal.add(berlin(2024, 3, 5, 20, 0), timedelta(minutes=30)) == berlin(2024, 3, 6, 9, 30)
    assert cal.add(berlin(2024, 3, 9, 12, 0), timedelta(hours=2)) == berlin(2024, 3, 11, 11, 0)


def test_deadline_exactly_at_close_stays_on_that_day() -> None:
    assert office().add(berlin(2024, 3, 8, 17, 0), timedelta(hours=1)) == berlin(2024, 3, 8, 18)


def test_zero_duration_returns_start() -> None:
    start = berlin(2024, 3, 9, 12, 0)
    assert office().add(start, timedelta(0)) == start


def test_holiday_is_skipped() -> None:
    # Good Friday 2024-03-29 and Easter Monday 2024-04-01.
    cal = office(holidays=frozenset({date(2024, 3, 29), date(2024, 4, 1)}))
    due = cal.add(berlin(2024, 3, 28, 17, 0), timedelta(hours=2))
    assert due == berlin(2024, 4, 2, 10, 0)
    assert not cal.is_open(berlin(2024, 3, 29, 10, 0))


def test_long_duration_spans_weeks() -> None:
    cal = office()
    # 9h per working day, 45h per week: 450h is exactly 10 working weeks.
    due = cal.add(berlin(2024, 1, 8, 9, 0), timedelta(hours=450))
    assert due == berlin(2024, 3, 15, 18, 0)
    assert cal.elapsed(berlin(2024, 1, 8, 9, 0), due) == timedelta(hours=450)


def test_negative_duration_rejected() -> None:
    with pytest.raises(ValueError, match="negative"):
        office().add(berlin(2024, 3, 8, 10), timedelta(minutes=-1))


def test_naive_datetime_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        office().is_open(datetime(2024, 3, 8, 10))


# -- DST -------------------------------------------------------------------


def test_dst_spring_forward_week_in_berlin() -> None:
    cal = office()
    # Clocks jump 02:00 -> 03:00 on Sunday 2024-03-31.
    friday_before = berlin(2024, 3, 29, 9, 0)
    monday_after = berlin(2024, 4, 1, 9, 0)
    assert friday_before.astimezone(UTC).hour == 8
    assert monday_after.astimezone(UTC).hour == 7
    assert cal.next_open(berlin(2024, 3, 29, 19, 0)) == monday_after
    assert cal.add(berlin(2024, 3, 29, 17, 0), timedelta(hours=2)) == berlin(2024, 4, 1, 10, 0)
    # A full week of 9h days, no matter that one Sunday was 23h long.
    assert cal.elapsed(berlin(2024, 3, 25, 0, 0), berlin(2024, 4, 1, 0, 0)) == timedelta(hours=45)


def test_dst_fall_back_week_in_berlin() -> None:
    cal = office()
    # Clocks go 03:00 -> 02:00 on Sunday 2024-10-27.
    due = cal.add(berlin(2024, 10, 25, 17, 0), timedelta(hours=3))
    assert due == berlin(2024, 10, 28, 11, 0)
    assert due == datetime(2024, 10, 28, 10, 0, tzinfo=UTC)
    assert cal.elapsed(berlin(2024, 10, 21), berlin(2024, 10, 28)) == timedelta(hours=45)


def test_window_in_dst_gap_day_is_shortened_not_lost() -> None:
    # 7-day week with a 01:30-03:30 window; on 2024-03-31 only 1h of it exists.
    cal = BusinessCalendar(
        timezone="Europe/Berlin",
        working_days=frozenset(range(7)),
        day_start=time(1, 30),
        day_end=time(3, 30),
    )
    assert cal.elapsed(berlin(2024, 3, 31), berlin(2024, 4, 1)) == timedelta(hours=1)
    assert cal.elapsed(berlin(2024, 3, 30), berlin(2024, 3, 31)) == timedelta(hours=2)


def test_new_york_hours_follow_local_wall_clock() -> None:
    cal = office(tz="America/New_York")
    # US DST started 2024-03-10; Europe still on winter time until 03-31.
    assert cal.next_open(datetime(2024, 3, 11, 12, 0, tzinfo=UTC)) == datetime(
        2024, 3, 11, 13, 0, tzinfo=UTC
    )
    assert cal.next_open(datetime(2024, 3, 8, 12, 0, tzinfo=UTC)) == datetime(
        2024, 3, 8, 14, 0, tzinfo=UTC
    )


# -- is_open / next_open ---------------------------------------------------


def test_is_open_boundaries_are_half_open() -> None:
    cal = office()
    assert not cal.is_open(berlin(2024, 3, 8, 8, 59, 59))
    assert cal.is_open(berlin(2024, 3, 8, 9, 0))
    assert cal.is_open(berlin(2024, 3, 8, 17, 59, 59))
    assert not cal.is_open(berlin(2024, 3, 8, 18, 0))
    assert not cal.is_open(berlin(2024, 3, 9, 12, 0))


def test_next_open_returns_input_when_open() -> None:
    at = berlin(2024, 3, 8, 10, 15)
    result = office().next_open(at)
    assert result == at
    assert result.tzinfo is UTC


def test_next_open_from_friday_close() -> None:
    assert office().next_open(berlin(2024, 3, 8, 18, 0)) == berlin(2024, 3, 11, 9, 0)


# -- elapsed ---------------------------------------------------------------


def test_elapsed_across_weekend() -> None:
    cal = office()
    assert cal.elapsed(berlin(2024, 3, 8, 17, 0), berlin(2024, 3, 11, 10, 0)) == timedelta(hours=2)


def test_elapsed_reversed_or_equal_is_zero() -> None:
    cal = office()
    a = berlin(2024, 3, 8, 10)
    assert cal.elapsed(a, a) == timedelta(0)
    assert cal.elapsed(a, a - timedelta(hours=5)) == timedelta(0)


def test_elapsed_within_closed_period_is_zero() -> None:
    assert office().elapsed(berlin(2024, 3, 9, 1), berlin(2024, 3, 10, 23)) == timedelta(0)


# -- 24x7 ------------------------------------------------------------------


def test_twenty_four_seven() -> None:
    cal = BusinessCalendar.twenty_four_seven()
    sat = datetime(2024, 3, 9, 3, 0, tzinfo=UTC)
    assert cal.is_open(sat)
    assert cal.next_open(sat) == sat
    assert cal.add(sat, timedelta(hours=5)) == datetime(2024, 3, 9, 8, 0, tzinfo=UTC)
    assert cal.elapsed(sat, sat + timedelta(days=3)) == timedelta(days=3)


def test_twenty_four_seven_across_dst_counts_real_time() -> None:
    cal = BusinessCalendar.twenty_four_seven("Europe/Berlin")
    start = berlin(2024, 3, 30, 12, 0)
    assert cal.add(start, timedelta(hours=24)) == berlin(2024, 3, 31, 13, 0)


# -- round trip ------------------------------------------------------------


@pytest.mark.parametrize("tz", ["Europe/Berlin", "America/New_York", "UTC", "Asia/Kolkata"])
def test_add_elapsed_round_trip(tz: str) -> None:
    rng = random.Random(1)
    holidays = frozenset(date(2024, 1, 1) + timedelta(days=rng.randrange(366)) for _ in range(15))
    cal = office(tz=tz, holidays=holidays)
    base = datetime(2024, 1, 1, tzinfo=UTC)
    for _ in range(500):
        start = base + timedelta(seconds=rng.randrange(366 * 86400))
        duration = timedelta(seconds=rng.randrange(1, 30 * 86400))
        due = cal.add(start, duration)
        assert due > start
        assert cal.elapsed(start, due) == duration
        # The deadline is never strictly inside a closed period.
        assert cal.is_open(due - timedelta(microseconds=1))


def test_elapsed_is_additive() -> None:
    rng = random.Random(1)
    cal = office()
    base = datetime(2024, 1, 1, tzinfo=UTC)
    for _ in range(300):
        a, b, c = sorted(base + timedelta(seconds=rng.randrange(200 * 86400)) for _ in range(3))
        assert cal.elapsed(a, c) == cal.elapsed(a, b) + cal.elapsed(b, c)


# -- validation ------------------------------------------------------------


def test_rejects_end_before_start() -> None:
    with pytest.raises(ValueError, match="day_end"):
        BusinessCalendar(timezone="UTC", day_start=time(18), day_end=time(9))
    with pytest.raises(ValueError, match="day_end"):
        BusinessCalendar(timezone="UTC", day_start=time(9), day_end=time(9))


def test_rejects_empty_working_days() -> None:
    with pytest.raises(ValueError, match="working_days"):
        BusinessCalendar(timezone="UTC", working_days=frozenset())


def test_rejects_out_of_range_day() -> None:
    with pytest.raises(ValueError, match="working_days"):
        BusinessCalendar(timezone="UTC", working_days=frozenset({0, 7}))


def test_rejects_unknown_timezone() -> None:
    with pytest.raises(ValueError, match="Mars/Olympus"):
        BusinessCalendar(timezone="Mars/Olympus")


def test_calendar_is_hashable_and_comparable() -> None:
    assert office() == office()
    assert hash(office()) == hash(office())


# -- duration text ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90m", timedelta(minutes=90)),
        ("1h", timedelta(hours=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2d", timedelta(days=2)),
        ("45s", timedelta(seconds=45)),
        ("1w", timedelta(weeks=1)),
        ("1w2d3h4m5s", timedelta(weeks=1, days=2, hours=3, minutes=4, seconds=5)),
        (" 1h 30m ", timedelta(hours=1, minutes=30)),
        ("2H", timedelta(hours=2)),
    ],
)
def test_parse_duration_valid(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "   ", "90", "1.5h", "h", "30m1h", "1x", "-1h", "1h30", "1 hour", "1hh"]
)
def test_parse_duration_invalid(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration") as info:
        parse_duration(text)
    assert repr(text) in str(info.value)


@pytest.mark.parametrize(
    ("td", "expected"),
    [
        (timedelta(hours=1), "1 hour"),
        (timedelta(minutes=30), "30 minutes"),
        (timedelta(hours=2, minutes=30), "2 hours 30 minutes"),
        (timedelta(days=1), "1 day"),
        (timedelta(days=2, minutes=1), "2 days 1 minute"),
        (timedelta(seconds=45), "45 seconds"),
        (timedelta(0), "0 minutes"),
        (timedelta(minutes=-90), "-1 hour 30 minutes"),
    ],
)
def test_format_duration(td: timedelta, expected: str) -> None:
    assert format_duration(td) == expected
