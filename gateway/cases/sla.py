"""The SLA clocks of one case: deadlines per level, the pause, and the next wake-up.

Everything here is arithmetic on the case's stored columns; nothing sends mail. The
timer tick only ever scans ``Case.next_timer_at``, so every function that moves a
deadline ends by calling :func:`refresh_wakeup` to keep that column honest.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from gateway.business_calendar import BusinessCalendar
from gateway.config import GatewayConfig
from store.models import Case

# States in which the customer is still waiting for us: response and resolution
# clocks run (unless paused) and breaches count.
ACTIVE_STATES = frozenset({"open", "acknowledged", "investigating", "waiting_on_customer"})


def status_slot(calendar: BusinessCalendar, at: datetime) -> datetime:
    """The first instant at or after ``at`` when a status mail may go out.

    Business-time arithmetic can land exactly on closing time (the SLA is met by
    then), but mail must not go out outside the calendar, so it moves to the next
    opening. For a 24x7 calendar this is always ``at``.
    """
    return at if calendar.is_open(at) else calendar.next_open(at)


def status_due_from(config: GatewayConfig, case: Case, start: datetime) -> datetime:
    calendar = config.calendar_for(case.level)
    interval = config.level(case.level).status_interval
    return status_slot(calendar, calendar.add(start, interval))


def set_level_deadlines(config: GatewayConfig, case: Case, start: datetime) -> None:
    """(Re)start every clock of the case's current level at ``start``.

    Called on open, on a level change and on reopen: each means a (possibly new)
    owner who has not yet responded, so the first-response clock starts afresh.
    """
    level = config.level(case.level)
    calendar = config.calendar_for(case.level)
    case.first_response_due = calendar.add(start, level.first_response)
    case.reminder_due = calendar.add(start, level.first_response * level.reminder_at)
    case.first_responded_at = None
    case.first_response_breached_at = None
    case.breach_repeat_due = None
    case.next_status_due = status_due_from(config, case, start)
    case.resolution_due = calendar.add(start, level.resolution)
    case.resolution_breached_at = None
    if case.paused_at is not None:
        # The new resolution target is counted from now, so only the pause from now
        # on may push it back.
        case.paused_at = start
    refresh_wakeup(case)


def pause(case: Case, now: datetime) -> None:
    if case.paused_at is None:
        case.paused_at = now
        refresh_wakeup(case)


def resume(config: GatewayConfig, case: Case, now: datetime) -> timedelta:
    """End the pause; the resolution target moves by the business time spent paused."""
    if case.paused_at is None:
        return timedelta(0)
    calendar = config.calendar_for(case.level)
    paused = calendar.elapsed(case.paused_at, now)
    if case.resolution_due is not None:
        case.resolution_due = calendar.add(case.resolution_due, paused)
    case.paused_seconds = (case.paused_seconds or 0) + int(paused.total_seconds())
    case.paused_at = None
    refresh_wakeup(case)
    return paused


def first_response_pending(case: Case) -> bool:
    return case.state in ACTIVE_STATES and case.first_responded_at is None


def resolution_clock_running(case: Case) -> bool:
    return (
        case.state in ACTIVE_STATES
        and case.paused_at is None
        and case.resolution_breached_at is None
        and case.resolution_due is not None
    )


def refresh_wakeup(case: Case) -> None:
    """Set ``next_timer_at`` to the earliest timer that can still do something."""
    candidates: list[datetime | None] = []
    if first_response_pending(case):
        candidates.append(case.reminder_due)
        if case.first_response_breached_at is None:
            candidates.append(case.first_response_due)
        else:
            candidates.append(case.breach_repeat_due)
    if resolution_clock_running(case):
        candidates.append(case.resolution_due)
    if case.state == "monitoring":
        candidates.append(case.monitoring_until)
    if case.state != "closed":
        candidates.append(case.next_status_due)
    present = [c for c in candidates if c is not None]
    case.next_timer_at = min(present) if present else None
