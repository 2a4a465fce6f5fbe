"""The case lifecycle: which state may follow which, and what each move does.

This is the one API that changes a case's state, level or notes after it was opened:
the timer tick, customer replies, the CLI and (later) lead commands by email all call
it, inside their own transaction. Every call appends a CaseEvent naming the actor and
the reason; an illegal request raises a LifecycleError and changes nothing.

    open -> acknowledged -> investigating <-> waiting_on_customer -> resolved
         -> monitoring -> closed;   resolved | monitoring | recently closed -> open
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.cases.accounts import AccountDirectory
from gateway.cases.mail import TimelineMail
from gateway.cases.owners import choose_owner
from gateway.cases.sla import (
    ACTIVE_STATES,
    pause,
    refresh_wakeup,
    resume,
    set_level_deadlines,
    status_due_from,
)
from gateway.config import GatewayConfig, Person
from gateway.outbound.outbox import Outbox, Recipient
from gateway.timefmt import format_duration
from store.appends import add_event
from store.models import Case, CaseEvent

STATES = (
    "open",
    "acknowledged",
    "investigating",
    "waiting_on_customer",
    "resolved",
    "monitoring",
    "closed",
)

# The whole state machine. Leaving "open" for any working state counts as the owner's
# first response; "open" as a target is a reopen.
ALLOWED: dict[str, frozenset[str]] = {
    "open": frozenset({"acknowledged", "investigating", "waiting_on_customer", "resolved"}),
    "acknowledged": frozenset({"investigating", "waiting_on_customer", "resolved"}),
    "investigating": frozenset({"waiting_on_customer", "resolved"}),
    "waiting_on_customer": frozenset({"investigating", "resolved"}),
    "resolved": frozenset({"monitoring", "open"}),
    "monitoring": frozenset({"closed", "open"}),
    "closed": frozenset({"open"}),
}


class LifecycleError(Exception):
    """A request the lifecycle refuses; the message is fit to send back to a lead."""


class IllegalTransition(LifecycleError):
    def __init__(self, case: Case, target: str) -> None:
        allowed = ", ".join(sorted(ALLOWED.get(case.state, ()))) or "nothing"
        super().__init__(
            f"{case.key} is {case.state}; it cannot move to {target} (allowed: {allowed})"
        )
        self.case_key = case.key
        self.current = case.state
        self.target = target


class UnknownState(LifecycleError):
    def __init__(self, target: str) -> None:
        super().__init__(f"unknown state {target!r}; states are: {', '.join(STATES)}")


class ReopenWindowExpired(LifecycleError):
    pass


class Lifecycle:
    def __init__(self, config: GatewayConfig, outbox: Outbox, directory: AccountDirectory) -> None:
        self.config = config
        self.directory = directory
        self.mail = TimelineMail(config, outbox)

    # -- building blocks -----------------------------------------------------------

    @staticmethod
    def allowed_targets(state: str) -> frozenset[str]:
        return ALLOWED.get(state, frozenset())

    def event(
        self,
        session: Session,
        case: Case,
        now: datetime,
        kind: str,
        detail: str,
        *,
        actor: str,
        data: dict[str, Any] | None = None,
    ) -> None:
        case.updated_at = now
        add_event(
            session, case_id=case.id, at=now, kind=kind, actor=actor, detail=detail, data=data
        )

    def _move(
        self, session: Session, case: Case, target: str, *, actor: str, reason: str, now: datetime
    ) -> None:
        if target not in STATES:
            raise UnknownState(target)
        if target not in ALLOWED.get(case.state, frozenset()):
            raise IllegalTransition(case, target)
        previous = case.state
        if previous == "open" and target != "open" and case.first_responded_at is None:
            self._record_first_response(session, case, actor=actor, now=now)
        if previous == "waiting_on_customer":
            resume(self.config, case, now)
        case.state = target
        if target == "waiting_on_customer":
            pause(case, now)
        self.event(
            session,
            case,
            now,
            "state_changed",
            f"{previous} -> {target}" + (f": {reason}" if reason else ""),
            actor=actor,
            data={"from": previous, "to": target, "reason": reason},
        )
        refresh_wakeup(case)

    def _record_first_response(
        self, session: Session, case: Case, *, actor: str, now: datetime
    ) -> None:
        case.first_responded_at = now
        case.reminder_due = None
        case.breach_repeat_due = None
        self.event(
            session,
            case,
            now,
            "acknowledged",
            f"first response by {actor}",
            actor=actor,
            data={"due": case.first_response_due.isoformat() if case.first_response_due else None},
        )

    def _require_active(self, case: Case, what: str) -> None:
        if case.state not in ACTIVE_STATES:
            raise LifecycleError(f"{case.key} is {case.state}; cannot {what}")

    # -- the API -------------------------------------------------------------------

    def transition(
        self,
        session: Session,
        case: Case,
        target: str,
        *,
        actor: str,
        reason: str = "",
        now: datetime,
    ) -> None:
        """Move to ``target`` with everything that move implies (mail, clocks)."""
        target = target.strip().lower().replace("-", "_").replace(" ", "_")
        if target not in STATES:
            raise UnknownState(target)
        if target == "acknowledged":
            self.acknowledge(session, case, actor=actor, reason=reason, now=now)
        elif target in {"resolved", "monitoring"}:
            self.resolve(session, case, actor=actor, reason=reason, now=now)
        elif target == "closed":
            self.close(session, case, actor=actor, reason=reason, now=now)
        elif target == "open":
            self.reopen(session, case, actor=actor, reason=reason, now=now)
        else:
            self._move(session, case, target, actor=actor, reason=reason, now=now)

    def acknowledge(
        self, session: Session, case: Case, *, actor: str, reason: str = "", now: datetime
    ) -> None:
        """The owner responded. On an open case this is the move to "acknowledged";
        on a case already being worked (e.g. after a level change) it stops the new
        owner's first-response clock without changing the state."""
        if case.state == "open":
            self._move(session, case, "acknowledged", actor=actor, reason=reason, now=now)
            return
        self._require_active(case, "acknowledge")
        if case.first_responded_at is not None:
            raise LifecycleError(f"{case.key} was already acknowledged")
        self._record_first_response(session, case, actor=actor, now=now)
        refresh_wakeup(case)

    def wait_on_customer(
        self, session: Session, case: Case, *, actor: str, reason: str = "", now: datetime
    ) -> None:
        self._move(session, case, "waiting_on_customer", actor=actor, reason=reason, now=now)

    def investigate(
        self, session: Session, case: Case, *, actor: str, reason: str = "", now: datetime
    ) -> None:
        self._move(session, case, "investigating", actor=actor, reason=reason, now=now)

    def resolve(
        self, session: Session, case: Case, *, actor: str, reason: str = "", now: datetime
    ) -> None:
        """Resolved, and straight into monitoring for the level's monitoring period."""
        self._move(session, case, "resolved", actor=actor, reason=reason, now=now)
        case.resolved_at = now
        self._move(session, case, "monitoring", actor=actor, reason="watching the fix", now=now)
        case.monitoring_until = now + self.config.level(case.level).monitoring
        self._customer_update(
            session,
            case,
            "resolution_notice",
            now,
            reason=reason,
            monitoring_until=self.mail.when(case.monitoring_until),
            monitoring_text=format_duration(self.config.level(case.level).monitoring),
        )

    def close(
        self,
        session: Session,
        case: Case,
        *,
        actor: str,
        reason: str = "",
        now: datetime,
        confirmed_by_customer: bool = False,
    ) -> None:
        if case.state == "resolved":
            self._move(session, case, "monitoring", actor=actor, reason="", now=now)
        self._move(session, case, "closed", actor=actor, reason=reason, now=now)
        case.closed_at = now
        case.monitoring_until = None
        case.next_status_due = None
        self.mail.to_customer(
            session,
            case,
            "closing",
            now,
            reason=reason,
            confirmed_by_customer=confirmed_by_customer,
            opened=self.mail.when(case.opened_at),
            resolved=self.mail.when(case.resolved_at),
            notes=self.public_notes(session, case),
            reopen_days=self.config.timers.reopen_window.days,
        )
        refresh_wakeup(case)

    def reopen(
        self, session: Session, case: Case, *, actor: str, reason: str = "", now: datetime
    ) -> None:
        """Back to "open" at the same level and owner, with a new owner deadline."""
        if case.state == "closed":
            window = self.config.timers.reopen_window
            if case.closed_at is None or now - case.closed_at > window:
                raise ReopenWindowExpired(
                    f"{case.key} was closed more than {format_duration(window)} ago; "
                    "a new mail opens a new case"
                )
        self._move(session, case, "open", actor=actor, reason=reason, now=now)
        case.resolved_at = None
        case.closed_at = None
        case.monitoring_until = None
        set_level_deadlines(self.config, case, now)
        owner = Recipient(case.owner_email, case.owner_name)
        self.mail.to_staff(session, case, "owner_handover", [owner], now, why=reason, reopened=True)
        self._customer_update(session, case, "reopen_notice", now, reason=reason)

    def set_level(
        self,
        session: Session,
        case: Case,
        level: int,
        *,
        actor: str,
        reason: str,
        now: datetime,
        breach: bool = False,
    ) -> None:
        """Move the case to another level: new owner, new clocks, everyone told."""
        self._require_active(case, "change its level")
        if level == case.level:
            raise LifecycleError(f"{case.key} is already at level {level}")
        self.config.level(level)  # KeyError for a level that does not exist
        previous_level = case.level
        previous_owner = Recipient(case.owner_email, case.owner_name)
        case.level = level
        owner, why_owner = choose_owner(session, self.config, self.directory, level, case.account)
        case.owner_name, case.owner_email = owner.name, owner.email
        # The state stays as it is; the new owner's first-response clock runs until
        # they respond (see sla.first_response_pending).
        set_level_deadlines(self.config, case, now)
        self.event(
            session,
            case,
            now,
            "level_changed",
            f"level {previous_level} -> {level}, owner {owner.email}: {reason}",
            actor=actor,
            data={
                "from_level": previous_level,
                "to_level": level,
                "previous_owner": previous_owner.email,
                "owner": owner.email,
                "owner_reason": why_owner,
                "reason": reason,
                "breach": breach,
            },
        )
        extra: dict[str, Any] = {
            "previous_level": previous_level,
            "previous_owner": previous_owner,
            "why": reason,
            "breach": breach,
        }
        self.mail.to_staff(session, case, "owner_handover", [owner], now, reopened=False, **extra)
        told: list[Person | Recipient] = [
            previous_owner,
            *self.config.level(previous_level).managers,
        ]
        told = [p for p in told if p.email.lower() != owner.email.lower()]
        self.mail.to_staff(session, case, "level_change_notice", told, now, **extra)
        self._customer_update(session, case, "escalation_notice", now, **extra)

    def record_human_update(
        self, session: Session, case: Case, *, actor: str, now: datetime, detail: str = ""
    ) -> None:
        """A person wrote to the customer; the next automatic status mail may be skipped."""
        case.last_human_update_at = now
        self.event(
            session,
            case,
            now,
            "human_update",
            detail or f"{actor} wrote to the customer",
            actor=actor,
        )

    def add_public_note(
        self, session: Session, case: Case, text: str, *, actor: str, now: datetime
    ) -> None:
        """A note the customer will read in the next status mail."""
        self._note(session, case, text, actor=actor, now=now, public=True)

    def add_internal_note(
        self, session: Session, case: Case, text: str, *, actor: str, now: datetime
    ) -> None:
        self._note(session, case, text, actor=actor, now=now, public=False)

    def _note(
        self, session: Session, case: Case, text: str, *, actor: str, now: datetime, public: bool
    ) -> None:
        text = text.strip()
        if not text:
            raise LifecycleError("a note needs some text")
        if case.state == "closed":
            raise LifecycleError(f"{case.key} is closed; reopen it first")
        kind = "public_note" if public else "internal_note"
        self.event(session, case, now, kind, text, actor=actor, data={"text": text})

    # -- shared helpers ------------------------------------------------------------

    def _customer_update(
        self, session: Session, case: Case, kind: str, now: datetime, **extra: Any
    ) -> None:
        """A timeline mail to the customer restarts the status rhythm from now."""
        if case.state != "closed":
            case.next_status_due = status_due_from(self.config, case, now)
        if self.mail.to_customer(session, case, kind, now, **extra) is not None:
            case.last_status_at = now
        refresh_wakeup(case)

    @staticmethod
    def public_notes(session: Session, case: Case) -> list[str]:
        return list(
            session.scalars(
                select(CaseEvent.detail)
                .where(CaseEvent.case_id == case.id, CaseEvent.kind == "public_note")
                .order_by(CaseEvent.id)
            )
        )
