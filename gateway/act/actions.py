"""Applying a Decision to the store: open, upgrade, attach or command, with events and mail.

Everything here runs inside the worker's transaction, so the case change, its audit
events and the mail it causes commit together or not at all. Opening lives in
gateway/act/opening.py; what a reply means for a case in gateway/act/reply_effects.py.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from gateway.act.case_records import (
    answering,
    assign_owner,
    link_inbound,
    notify_owner,
    record_event,
)
from gateway.act.opening import CaseOpening
from gateway.act.reply_effects import ReplyReactions
from gateway.cases.accounts import AccountDirectory
from gateway.cases.sla import set_level_deadlines
from gateway.classify.classifier import Decision
from gateway.config import GatewayConfig
from gateway.leads.replies import LeadReplies
from gateway.outbound.compose import Recipient
from gateway.outbound.outbox import Outbox
from gateway.timeline.status_updates import StatusUpdates
from parsers.model import ParsedMail
from store.models import Case, InboundItem


class CaseActions:
    def __init__(self, config: GatewayConfig, outbox: Outbox, directory: AccountDirectory) -> None:
        self.config = config
        self.outbox = outbox
        self.directory = directory
        self.reactions = ReplyReactions(config, outbox, directory)
        lifecycle = self.reactions.lifecycle
        self.mail = lifecycle.mail
        self.opening = CaseOpening(config, self.mail, directory)
        self.lead_replies = LeadReplies(
            config, outbox, directory, lifecycle, StatusUpdates(config, lifecycle.mail)
        )

    def apply(
        self,
        session: Session,
        decision: Decision,
        mail: ParsedMail,
        item: InboundItem,
        now: datetime,
    ) -> Case | None:
        if decision.action == "open":
            return self.opening.open(session, decision, mail, item, now)
        on_thread = {"upgrade": self.upgrade, "attach": self.attach, "command": self.command}
        act = on_thread.get(decision.action)
        if act is None:
            return None
        # These act on the case of the thread the mail belongs to.
        assert decision.thread is not None
        return act(session, decision.thread.case, decision, mail, item, now)

    def upgrade(
        self,
        session: Session,
        case: Case,
        decision: Decision,
        mail: ParsedMail,
        item: InboundItem,
        now: datetime,
    ) -> Case:
        assert decision.level is not None and decision.level > case.level
        previous_level, previous_owner = case.level, case.owner_email
        case.level = decision.level
        case.updated_at = now
        if decision.account and not case.account:
            case.account = decision.account
        set_level_deadlines(self.config, case, item.received_at)
        owner_reason = assign_owner(session, self.config, self.directory, case)
        link_inbound(session, case, mail, item, now)
        record_event(
            session,
            case,
            now,
            "upgraded",
            f"level {previous_level} -> {case.level}: {decision.reason}",
            data={
                "decision": decision.as_dict(),
                "from_level": previous_level,
                "to_level": case.level,
                "previous_owner": previous_owner,
                "owner": case.owner_email,
                "owner_reason": owner_reason,
            },
            item=item,
        )
        notify_owner(self.mail, session, case, decision, mail, now, previous_level=previous_level)
        self.mail.to_customer(
            session,
            case,
            "upgrade_notice",
            now,
            answering=answering(mail),
            answers_inbound=True,
            previous_level=previous_level,
        )
        return case

    def _record_reply(
        self,
        session: Session,
        case: Case,
        decision: Decision,
        mail: ParsedMail,
        item: InboundItem,
        now: datetime,
    ) -> str:
        """Link a mail on an existing case and log it; returns the sender's address."""
        case.updated_at = now
        link_inbound(session, case, mail, item, now)
        sender = mail.from_.email if mail.from_ else "unknown sender"
        record_event(
            session,
            case,
            now,
            "mail_attached",
            decision.reason,
            actor=sender,
            data={"decision": decision.as_dict(), "subject": mail.subject},
            item=item,
        )
        return sender

    def attach(
        self,
        session: Session,
        case: Case,
        decision: Decision,
        mail: ParsedMail,
        item: InboundItem,
        now: datetime,
    ) -> Case:
        sender = self._record_reply(session, case, decision, mail, item, now)
        state_before = case.state
        self.reactions.react(session, case, decision, mail, now)
        if not decision.auto_reply_blocked and self.reactions.is_customer(case, sender):
            self._tell_owner_of_customer_reply(session, case, decision, sender, state_before, now)
        return case

    def _tell_owner_of_customer_reply(
        self,
        session: Session,
        case: Case,
        decision: Decision,
        sender: str,
        state_before: str,
        now: datetime,
    ) -> None:
        effect = ""
        if case.state != state_before:
            effect = f"the case went from {state_before} to {case.state}"
        self.mail.to_staff(
            session,
            case,
            "customer_reply_notice",
            [Recipient(case.owner_email, case.owner_name)],
            now,
            sender=sender,
            text=decision.new_text,
            effect=effect,
        )

    def command(
        self,
        session: Session,
        case: Case,
        decision: Decision,
        mail: ParsedMail,
        item: InboundItem,
        now: datetime,
    ) -> Case:
        """A reply from staff (or carrying a staff token): authorize and apply commands."""
        self._record_reply(session, case, decision, mail, item, now)
        self.lead_replies.handle(
            session,
            case,
            mail,
            decision.new_text,
            list(item.rcpt_tos or []),
            self.outbox.tokens(session),
            now,
        )
        return case
