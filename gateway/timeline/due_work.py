"""What a due case's timers do: reminder, breach and escalation, monitoring end, status.

Runs for one case inside one transaction. Each timer is checked against its own
stored due time, so it does not matter how late the tick comes: a timer that is due
fires once, and its next due time is written in the same commit as its mail.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session

from gateway.cases.lifecycle import Lifecycle
from gateway.cases.sla import first_response_pending, refresh_wakeup, resolution_clock_running
from gateway.config import GatewayConfig
from gateway.outbound.outbox import Recipient
from gateway.timeline.status_updates import StatusUpdates
from store.models import Case

log = logging.getLogger("gateway.timers")

TOP_LEVEL = 4


class DueWork:
    def __init__(self, config: GatewayConfig, lifecycle: Lifecycle) -> None:
        self.config = config
        self.lifecycle = lifecycle
        self.mail = lifecycle.mail
        self.status = StatusUpdates(config, lifecycle.mail)

    def run(self, session: Session, case: Case, now: datetime) -> None:
        if first_response_pending(case):
            self._first_response(session, case, now)
        resolution_due = case.resolution_due
        if resolution_clock_running(case) and resolution_due and resolution_due <= now:
            self._resolution_breach(session, case, now)
        monitoring_until = case.monitoring_until
        if case.state == "monitoring" and monitoring_until and monitoring_until <= now:
            self._end_monitoring(session, case, now)
        self.status.run(session, case, now)
        refresh_wakeup(case)

    def _owner(self, case: Case) -> Recipient:
        return Recipient(case.owner_email, case.owner_name)

    def _first_response(self, session: Session, case: Case, now: datetime) -> None:
        due = case.first_response_due
        breached = due is not None and due <= now
        if case.reminder_due is not None and case.reminder_due <= now:
            case.reminder_due = None
            # After downtime the breach mail says it all; a late reminder would not help.
            if not breached:
                self.mail.to_staff(session, case, "owner_reminder", [self._owner(case)], now)
                self.lifecycle.event(
                    session, case, now, "reminder_sent", f"to {case.owner_email}", actor="gateway"
                )
        if not breached or due is None:
            return
        if case.first_response_breached_at is None:
            case.first_response_breached_at = now
            why = (
                f"{case.owner_name or case.owner_email} did not respond by "
                f"{self.mail.when(due)} (level {case.level} first-response target)"
            )
            self.lifecycle.event(
                session, case, now, "first_response_breached", why, actor="gateway"
            )
            if case.level < TOP_LEVEL:
                self.lifecycle.set_level(
                    session, case, case.level + 1, actor="gateway", reason=why, now=now, breach=True
                )
                return
            self._tell_top_managers(session, case, now, why)
            return
        if case.breach_repeat_due is not None and case.breach_repeat_due <= now:
            why = f"still no response since {self.mail.when(due)}"
            self._tell_top_managers(session, case, now, why)

    def _tell_top_managers(self, session: Session, case: Case, now: datetime, why: str) -> None:
        """At the top level nobody is left to escalate to, so managers hear it repeatedly."""
        managers = self.config.level(case.level).managers
        self.mail.to_staff(
            session, case, "breach_notice", [self._owner(case), *managers], now, why=why
        )
        case.breach_repeat_due = now + self.config.timers.level4_breach_repeat
        self.lifecycle.event(
            session,
            case,
            now,
            "breach_notice_sent",
            why,
            actor="gateway",
            data={"next": case.breach_repeat_due.isoformat()},
        )

    def _resolution_breach(self, session: Session, case: Case, now: datetime) -> None:
        case.resolution_breached_at = now
        why = f"resolution target {self.mail.when(case.resolution_due)} passed"
        managers = self.config.level(case.level).managers
        self.mail.to_staff(
            session, case, "resolution_breach", [*managers, self._owner(case)], now, why=why
        )
        self.lifecycle.event(session, case, now, "resolution_breached", why, actor="gateway")

    def _end_monitoring(self, session: Session, case: Case, now: datetime) -> None:
        calendar = self.config.calendar_for(case.level)
        if not calendar.is_open(now):
            # The closing mail goes to the customer, so it waits for the calendar too.
            case.monitoring_until = calendar.next_open(now)
            return
        self.lifecycle.close(
            session, case, actor="gateway", reason="monitoring ended quietly", now=now
        )
