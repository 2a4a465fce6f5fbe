"""The timed status mail to the customer: whether it goes out now, and what it says.

A status mail is honest: if nothing happened since the last one it says so rather than
inventing progress, and if it comes later than promised it says that too. A slot
missed by more than ``[timers] status_late_after`` (downtime, however short or long)
gets exactly one catch-up mail that says the updates were delayed, and the rhythm
restarts from that mail instead of from the missed slot. When the calendar is closed
by the time the daemon is back, the lateness is noted on the case ("status_delayed")
and the catch-up goes out when the calendar opens.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from gateway.cases.mail import STATE_TEXT, TimelineMail
from gateway.cases.sla import refresh_wakeup, status_due_from, status_slot
from gateway.config import GatewayConfig
from store.appends import add_event
from store.models import Case, CaseEvent

# Events a customer would count as news.
NEWS_KINDS = ("state_changed", "level_changed", "public_note", "acknowledged")
# A slot that fell due while the calendar was closed and the daemon was down.
DELAYED = "status_delayed"


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
        # Lateness is wall time: the last mail promised the customer a moment, not an
        # amount of business time.
        late = now - due > self.config.timers.status_late_after
        if not calendar.is_open(now):
            case.next_status_due = status_slot(calendar, now)
            if late:
                self._event(
                    session,
                    case,
                    now,
                    DELAYED,
                    f"the update due by {self.mail.when(due)} waits for business hours",
                )
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
        # On time: keep the rhythm. Late (downtime): one catch-up mail now, and the
        # next a full interval after it.
        case.next_status_due = status_due_from(self.config, case, now if late else due)
        self._send(session, case, now, catch_up=late)
        return True

    def send_now(self, session: Session, case: Case, now: datetime) -> None:
        """A status mail at once, e.g. a lead's note with "send: now"; the rhythm restarts."""
        if case.state != "closed":
            case.next_status_due = status_due_from(self.config, case, now)
        self._send(session, case, now, catch_up=False)
        refresh_wakeup(case)

    def _send(self, session: Session, case: Case, now: datetime, *, catch_up: bool) -> None:
        since = case.last_status_at or case.opened_at
        changes, note, delayed = self._news(session, case, since)
        catch_up = catch_up or delayed
        queued = self.mail.to_customer(
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
        if queued is None:
            return  # held back: the outbox recorded why, and nothing claims it was sent
        case.last_status_at = now
        self._event(
            session,
            case,
            now,
            "status_sent",
            f"next update by {case.next_status_due.isoformat() if case.next_status_due else '-'}",
            # The audit entry names the stored mail it stands for.
            data={"outbox_id": queued.id, "catch_up": catch_up},
        )

    def _event(
        self,
        session: Session,
        case: Case,
        now: datetime,
        kind: str,
        detail: str,
        data: dict[str, Any] | None = None,
    ) -> None:
        add_event(session, case_id=case.id, at=now, kind=kind, detail=detail, data=data)

    def _news(self, session: Session, case: Case, since: datetime) -> tuple[list[str], str, bool]:
        """What changed since the last update, the latest public note, and whether an
        update was noted as delayed meanwhile (one query)."""
        rows = session.execute(
            select(CaseEvent.kind, CaseEvent.data, CaseEvent.detail, CaseEvent.at)
            .where(
                CaseEvent.case_id == case.id,
                or_(
                    CaseEvent.kind == "public_note",
                    and_(CaseEvent.at > since, CaseEvent.kind.in_((*NEWS_KINDS, DELAYED))),
                ),
            )
            .order_by(CaseEvent.id)
        ).all()
        changes: list[str] = []
        note = ""
        delayed = False
        for kind, data, detail, at in rows:
            if kind == DELAYED:
                delayed = True
            elif kind == "public_note":
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
        return list(dict.fromkeys(changes)), note, delayed
