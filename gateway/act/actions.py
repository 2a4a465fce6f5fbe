"""Applying a Decision to the store: open, upgrade or attach, with events and mail.

Everything here runs inside the worker's transaction, so the case change, its audit
events and the mail it causes commit together or not at all.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from gateway.act.reply_effects import ReplyReactions
from gateway.cases.accounts import AccountDirectory
from gateway.cases.owners import choose_owner
from gateway.cases.sla import set_level_deadlines
from gateway.classify.classifier import Decision
from gateway.config import GatewayConfig
from gateway.leads.replies import LeadReplies
from gateway.outbound.compose import Recipient, Threading
from gateway.outbound.outbox import Outbox
from gateway.timefmt import format_duration, format_when
from gateway.timeline.status_updates import StatusUpdates
from parsers.escalation_template import FIELD_LABELS
from parsers.model import Address, ParsedMail
from store.appends import add_event, add_link, hold, insert_as_persistent, table_of
from store.models import Case, InboundItem

_CASES = table_of(Case)
_SET_KEY = update(_CASES).where(_CASES.c.id == bindparam("case_id")).values(key=bindparam("key"))

CUSTOMER_FACING_STATES = frozenset({"open", "acknowledged", "investigating", "waiting_on_customer"})


def reply_address(mail: ParsedMail) -> Address | None:
    """Where an answer to this mail goes: Reply-To wins over From (RFC 5322 3.6.2)."""
    for address in (*mail.reply_to, mail.from_):
        if address is not None and address.email:
            return address
    return None


def summarise(decision: Decision, limit: int = 1200) -> str:
    if decision.template is not None and decision.template.fields.get("issue_summary"):
        return decision.template.fields["issue_summary"]
    text = decision.new_text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


class CaseActions:
    def __init__(self, config: GatewayConfig, outbox: Outbox, directory: AccountDirectory) -> None:
        self.config = config
        self.outbox = outbox
        self.directory = directory
        self.reactions = ReplyReactions(config, outbox, directory)
        lifecycle = self.reactions.lifecycle
        self.lead_replies = LeadReplies(
            config, outbox, directory, lifecycle, StatusUpdates(config, lifecycle.mail)
        )

    # -- helpers -------------------------------------------------------------------

    def _event(
        self,
        session: Session,
        case: Case,
        now: datetime,
        kind: str,
        detail: str,
        *,
        actor: str = "gateway",
        data: dict[str, Any] | None = None,
        item: InboundItem | None = None,
    ) -> None:
        add_event(
            session,
            case_id=case.id,
            at=now,
            kind=kind,
            actor=actor,
            detail=detail,
            data=data,
            inbound_item_id=item.id if item else None,
        )

    def _link_inbound(
        self, session: Session, case: Case, mail: ParsedMail, item: InboundItem, now: datetime
    ) -> None:
        # The worker sets item.case_id with the item's other columns, at the end.
        if mail.message_id:
            add_link(
                session,
                message_id=mail.message_id,
                case_id=case.id,
                direction="in",
                inbound_item_id=item.id,
                at=now,
            )

    def _set_deadlines(self, case: Case, start: datetime) -> None:
        # One place computes every clock, so the timer tick sees this case too.
        set_level_deadlines(self.config, case, start)

    def _assign(self, session: Session, case: Case) -> str:
        owner, why = choose_owner(session, self.config, self.directory, case.level, case.account)
        case.owner_name, case.owner_email = owner.name, owner.email
        return why

    def template_context(self, case: Case, **extra: Any) -> dict[str, Any]:
        level = self.config.level(case.level)
        tz = self.config.timezone
        context: dict[str, Any] = {
            "case": case,
            "level_name": level.name,
            "greeting_name": case.customer_name or case.customer_email,
            "first_response_text": format_duration(level.first_response),
            "first_response_due": format_when(case.first_response_due, tz)
            if case.first_response_due
            else "",
            "next_status_due": format_when(case.next_status_due, tz)
            if case.next_status_due
            else "",
        }
        context.update(extra)
        return context

    @staticmethod
    def _threading(mail: ParsedMail) -> Threading:
        references = (*mail.references, mail.message_id) if mail.message_id else mail.references
        return Threading(mail.message_id or None, tuple(references))

    def _customer_recipients(self, case: Case) -> tuple[list[Recipient], list[Recipient]]:
        to = [Recipient(case.customer_email, case.customer_name)]
        cc = [Recipient(str(c["email"]), str(c.get("name", ""))) for c in case.customer_cc]
        return to, cc

    def _notify_owner(
        self,
        session: Session,
        case: Case,
        decision: Decision,
        mail: ParsedMail,
        now: datetime,
        previous_level: int | None = None,
    ) -> None:
        fields = [
            (FIELD_LABELS.get(key, key), value) for key, value in case.fields.items() if value
        ]
        context = self.template_context(
            case,
            summary=summarise(decision) or "(no text)",
            fields=fields,
            signals=[r.as_dict() for r in decision.fired],
            previous_level=previous_level,
        )
        self.outbox.enqueue(
            session,
            case=case,
            kind="owner_notification",
            template="owner_notification",
            context=context,
            to=[Recipient(case.owner_email, case.owner_name)],
            subject=case.subject,
            threading=self._threading(mail),
            now=now,
            external=False,
            auto_submitted="auto-generated",
        )

    # -- actions -------------------------------------------------------------------

    def apply(
        self,
        session: Session,
        decision: Decision,
        mail: ParsedMail,
        item: InboundItem,
        now: datetime,
    ) -> Case | None:
        if decision.action == "open":
            return self.open(session, decision, mail, item, now)
        if decision.action == "upgrade":
            assert decision.thread is not None
            return self.upgrade(session, decision.thread.case, decision, mail, item, now)
        if decision.action == "attach":
            assert decision.thread is not None
            return self.attach(session, decision.thread.case, decision, mail, item, now)
        if decision.action == "command":
            assert decision.thread is not None
            return self.command(session, decision.thread.case, decision, mail, item, now)
        return None

    def open(
        self,
        session: Session,
        decision: Decision,
        mail: ParsedMail,
        item: InboundItem,
        now: datetime,
    ) -> Case:
        assert decision.level is not None
        sender = reply_address(mail)
        template = decision.template
        copied_managers = [
            {"email": r.data["account_manager"], "name": ""}
            for r in decision.fired
            if "account_manager" in r.data
        ]
        case = Case(
            state="open",
            level=decision.level,
            owner_name="",
            owner_email="",
            account=decision.account,
            customer_name=sender.name if sender else "",
            customer_email=sender.email if sender else "",
            customer_cc=copied_managers,
            subject=mail.subject or "(no subject)",
            summary=summarise(decision),
            ticket=template.ticket if template else None,
            fields=dict(template.fields) if template else {},
            opened_at=now,
            updated_at=now,
            root_message_id=mail.message_id or None,
        )
        # Everything but the key goes out with the INSERT, written with Core: the
        # ORM's unit of work cost several times the statement (store/appends.py).
        self._set_deadlines(case, item.received_at)
        owner_reason = self._assign(session, case)
        insert_as_persistent(session, case)
        # The key needs the id. Written here and marked as stored, it leaves the case
        # clean, so the next flush has no UPDATE of it to work out.
        key = f"{self.config.case_key_prefix}-{case.id:06d}"
        hold(session, _SET_KEY, {"case_id": case.id, "key": key})
        set_committed_value(case, "key", key)
        self._link_inbound(session, case, mail, item, now)
        self._event(
            session,
            case,
            now,
            "opened",
            decision.reason,
            data={
                "decision": decision.as_dict(),
                "owner": case.owner_email,
                "owner_reason": owner_reason,
                "first_response_due": case.first_response_due.isoformat()
                if case.first_response_due
                else None,
            },
            item=item,
        )
        self._notify_owner(session, case, decision, mail, now)
        if sender is None or decision.auto_reply_blocked:
            self._event(
                session,
                case,
                now,
                "reply_suppressed",
                f"no acknowledgement: {decision.auto_reply_blocked or 'no sender address'}",
            )
            return case
        to, cc = self._customer_recipients(case)
        self.outbox.enqueue(
            session,
            case=case,
            kind="acknowledgement",
            template="acknowledgement",
            context=self.template_context(case),
            to=to,
            cc=cc,
            subject=f"Re: {case.subject}",
            threading=self._threading(mail),
            now=now,
            external=True,
        )
        missing = next((r.data["missing"] for r in decision.fired if r.data.get("missing")), None)
        if missing:
            self.outbox.enqueue(
                session,
                case=case,
                kind="template_incomplete",
                template="template_incomplete",
                context=self.template_context(
                    case, missing=[FIELD_LABELS.get(f, f) for f in missing]
                ),
                to=[Recipient(sender.email, sender.name)],
                subject=f"Re: {case.subject}",
                threading=self._threading(mail),
                now=now,
                external=True,
            )
        return case

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
        self._set_deadlines(case, item.received_at)
        owner_reason = self._assign(session, case)
        self._link_inbound(session, case, mail, item, now)
        self._event(
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
        self._notify_owner(session, case, decision, mail, now, previous_level=previous_level)
        to, cc = self._customer_recipients(case)
        self.outbox.enqueue(
            session,
            case=case,
            kind="upgrade_notice",
            template="upgrade_notice",
            context=self.template_context(case, previous_level=previous_level),
            to=to,
            cc=cc,
            subject=f"Re: {case.subject}",
            threading=self._threading(mail),
            now=now,
            external=True,
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
        self._link_inbound(session, case, mail, item, now)
        sender = mail.from_.email if mail.from_ else "unknown sender"
        self._event(
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
        self.reactions.lifecycle.mail.to_staff(
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
