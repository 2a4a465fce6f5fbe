"""The timed status mail to the customer: whether it goes out now, and what it says.

A status mail is honest: if nothing happened since the last one it says so rather than
inventing progress. After downtime that skipped several intervals exactly one mail
goes out, and the next one is counted from now instead of from the missed slots.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from gateway.cases.mail import STATE_TEXT, TimelineMail
from gateway.cases.sla import refresh_wakeup, status_due_from, status_slot
from gateway.config import GatewayConfig
from store.appends import add_event
from store.models import Case, CaseEvent

# Events a customer would count as news.
NEWS_KINDS = ("state_changed", "level_changed", "public_note", "acknowledged")


class StatusUpdates:
    def __init__(self, config: GatewayConfig, mail: TimelineMail) -> None:
        self.config = config
        self.mail = mail

    def run(self, session: Session, case: Case, now: datetime) -> bool:
        """Handle a due status slot; True when a mail was written to the outbox."""
        due = case.next_status_due
        if due is None or due > now or case.state == "closed":
            return False
        calendar = self.config.calendar_for(case.level)
        interval = self.config.level(case.level).status_interval
        if not calendar.is_open(now):
            case.next_status_due = status_slot(calendar, now)
            return False
        human = case.last_human_update_at
        if (
            self.config.timers.skip_status_after_human_update
            and human is not None
            and calendar.elapsed(human, now) < interval
        ):
            case.next_status_due = status_due_from(self.config, case, human)
            self._event(session, case, now, "status_skipped", "a person updated the customer")
            return False
        # On time (within one interval of the slot): keep the rhythm. Later than that
        # (downtime): one catch-up mail now and the next a full interval from now.
        on_time = calendar.elapsed(due, now) < interval
        case.next_status_due = status_due_from(self.config, case, due if on_time else now)
        self._send(session, case, now, catch_up=not on_time)
        return True

    def send_now(self, session: Session, case: Case, now: datetime) -> None:
        """A status mail at once, e.g. a lead's note with "send: now"; the rhythm restarts."""
        if case.state != "closed":
            case.next_status_due = status_due_from(self.config, case, now)
        self._send(session, case, now, catch_up=False)
        refresh_wakeup(case)

    def _send(self, session: Session, case: Case, now: datetime, *, catch_up: bool) -> None:
        since = case.last_status_at or case.opened_at
        changes, note = self._news(session, case, since)
        self.mail.to_customer(
            session,
            case,
            "status_update",
            now,
            changes=changes,
            nothing_new=not changes,
            last_update=self.mail.when(case.last_status_at),
            note=note,
            catch_up=catch_up,
            eta=self.mail.when(case.eta) if case.eta and case.eta > now else "",
        )
        case.last_status_at = now
        self._event(
            session,
            case,
            now,
            "status_sent",
            f"next update by {case.next_status_due.isoformat() if case.next_status_due else '-'}",
        )

    def _event(self, session: Session, case: Case, now: datetime, kind: str, detail: str) -> None:
        add_event(session, case_id=case.id, at=now, kind=kind, detail=detail)

    def _news(self, session: Session, case: Case, since: datetime) -> tuple[list[str], str]:
        """What changed since the last update, and the latest public note (one query)."""
        rows = session.execute(
            select(CaseEvent.kind, CaseEvent.data, CaseEvent.detail, CaseEvent.at)
            .where(
                CaseEvent.case_id == case.id,
                or_(
                    CaseEvent.kind == "public_note",
                    and_(CaseEvent.at > since, CaseEvent.kind.in_(NEWS_KINDS)),
                ),
            )
            .order_by(CaseEvent.id)
        ).all()
        changes: list[str] = []
        note = ""
        for kind, data, detail, at in rows:
            if kind == "public_note":
                note = detail
                if at <= since:
                    continue  # an old note is repeated below, but it is not news
            if kind == "acknowledged" or (
                kind == "state_changed" and data.get("to") == "acknowledged"
            ):
                # The acknowledgement shows up as two events; the customer hears it once.
                changes.append("Your case owner picked up the case.")
            elif kind == "state_changed":
                changes.append(f"The case is now {STATE_TEXT.get(data.get('to'), data.get('to'))}.")
            elif kind == "level_changed":
                changes.append(f"The case moved to level {data.get('to_level')}.")
            elif kind == "public_note":
                changes.append("There is a new note from the team (below).")
        return list(dict.fromkeys(changes)), note
