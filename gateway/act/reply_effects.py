"""What a reply on an existing case means for its timeline.

Called for every mail attached to a case. The owner writing counts as the first
response; any of our people writing to the customer counts as a human update (so the
next automatic status mail can be skipped); the customer writing can resume a paused
case, confirm a fix (close early) or report that the problem is back (reopen).
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy.orm import Session

from gateway.cases.accounts import AccountDirectory
from gateway.cases.agents import customer_side
from gateway.cases.lifecycle import Lifecycle, LifecycleError
from gateway.cases.sla import ACTIVE_STATES
from gateway.classify.classifier import Decision
from gateway.config import GatewayConfig
from gateway.outbound.outbox import Outbox
from parsers.model import ParsedMail
from store.models import Case


def _matches(patterns: tuple[str, ...], text: str) -> str | None:
    for pattern in patterns:
        found = re.search(pattern, text)
        if found:
            return found.group(0)
    return None


class ReplyReactions:
    def __init__(self, config: GatewayConfig, outbox: Outbox, directory: AccountDirectory) -> None:
        self.config = config
        self.lifecycle = Lifecycle(config, outbox, directory)
        levels = config.levels
        self.staff = frozenset(
            p.email.lower() for level in levels for p in (*level.owners, *level.managers)
        )

    def react(
        self, session: Session, case: Case, decision: Decision, mail: ParsedMail, now: datetime
    ) -> None:
        if decision.auto_reply_blocked or mail.from_ is None:
            return  # out-of-office and bounces never move a case
        sender = mail.from_.email.lower()
        if sender == case.owner_email.lower() or sender in self.staff:
            self.staff_reply(session, case, mail, sender, now)
        elif self.is_customer(case, sender):
            self._from_customer(session, case, decision.new_text, sender, now)

    def is_customer(self, case: Case, sender: str) -> bool:
        cc = {str(c.get("email", "")).lower() for c in case.customer_cc}
        return sender == case.customer_email.lower() or sender in cc

    def staff_reply(
        self, session: Session, case: Case, mail: ParsedMail, sender: str, now: datetime
    ) -> None:
        """Our side wrote on the case: the owner's first response, a human update or both."""
        if (
            sender == case.owner_email.lower()
            and case.state in ACTIVE_STATES
            and case.first_responded_at is None
        ):
            self.lifecycle.acknowledge(
                session, case, actor=sender, reason="owner replied by mail", now=now
            )
        addressed = {a.email.lower() for a in (*mail.to, *mail.cc)}
        # Writing to the customer's agent informs the customer: they are its contact.
        if customer_side(case) & addressed:
            self.lifecycle.record_human_update(session, case, actor=sender, now=now)

    def _from_customer(
        self, session: Session, case: Case, text: str, sender: str, now: datetime
    ) -> None:
        timers = self.config.timers
        try:
            if case.state == "waiting_on_customer":
                self.lifecycle.investigate(
                    session, case, actor=sender, reason="customer replied", now=now
                )
                return
            if case.state not in {"resolved", "monitoring", "closed"}:
                return
            # "Not resolved" must not read as "resolved", so recurrence is checked first.
            back = _matches(timers.recurrence_phrases, text)
            if back:
                self.lifecycle.reopen(
                    session, case, actor=sender, reason=f"customer wrote {back!r}", now=now
                )
                return
            confirmed = _matches(timers.confirmation_phrases, text)
            if confirmed and case.state != "closed":
                self.lifecycle.close(
                    session,
                    case,
                    actor=sender,
                    reason=f"customer confirmed: {confirmed!r}",
                    now=now,
                    confirmed_by_customer=True,
                )
        except LifecycleError as exc:
            # E.g. a reply long after closing: the mail stays on the record, nothing moves.
            self.lifecycle.event(session, case, now, "reply_not_applied", str(exc), actor="gateway")
