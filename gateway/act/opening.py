"""Opening a case from a Decision: the row, its clocks and owner, its key, its first mail.

When one of our agents sends the escalation template, the case is the customer's the
template names (gateway/cases/agents.py): the agent gets an agent's acknowledgement
and copies of the customer's mail, the customer (if the template gives an address)
the acknowledgement.

Runs inside the worker's transaction, so the new case, its audit event and the mail
it causes commit together or not at all.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from gateway.act.case_records import (
    answering,
    assign_owner,
    link_inbound,
    notify_owner,
    record_event,
    reply_address,
    summarise,
)
from gateway.cases.accounts import AccountDirectory
from gateway.cases.agents import NamedCustomer, OurPeople, agent_entry, customer_from_field
from gateway.cases.mail import TimelineMail
from gateway.cases.sla import set_level_deadlines
from gateway.classify.classifier import Decision
from gateway.config import GatewayConfig
from gateway.outbound.compose import Recipient
from parsers.escalation_template import FIELD_LABELS
from parsers.model import Address, ParsedMail
from store.appends import hold, insert_as_persistent, table_of
from store.models import Case, InboundItem

_CASES = table_of(Case)
_SET_KEY = update(_CASES).where(_CASES.c.id == bindparam("case_id")).values(key=bindparam("key"))


class CaseOpening:
    def __init__(
        self, config: GatewayConfig, case_mail: TimelineMail, directory: AccountDirectory
    ) -> None:
        self.config = config
        self.mail = case_mail
        self.directory = directory
        self.people = OurPeople.build(config)

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
        agent = self._escalating_agent(decision, mail, sender)
        case = self._new_case(decision, mail, sender, agent, now)
        # One place computes every clock, so the timer tick sees this case too.
        set_level_deadlines(self.config, case, item.received_at)
        owner_reason = assign_owner(session, self.config, self.directory, case)
        self._insert(session, case)
        link_inbound(session, case, mail, item, now)
        record_event(
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
        notify_owner(self.mail, session, case, decision, mail, now)
        if agent is not None:
            self._acknowledge_agent(session, case, decision, mail, agent, now)
        else:
            self._acknowledge(session, case, decision, mail, sender, now)
        return case

    def _escalating_agent(
        self, decision: Decision, mail: ParsedMail, sender: Address | None
    ) -> Recipient | None:
        """Where to answer, when one of ours sent the escalation template."""
        author = mail.from_
        if decision.template is None or sender is None or author is None:
            return None
        if not self.people.is_ours(author.email):
            return None
        return Recipient(sender.email, sender.name)

    def _named_customer(self, decision: Decision) -> NamedCustomer:
        assert decision.template is not None
        named = customer_from_field(decision.template.fields.get("customer", ""))
        if named.email and self.people.is_ours(named.email):
            # Our own address is no customer's: keep what was written as a name.
            return NamedCustomer(named.name or named.email, "")
        return named

    def _account_of(self, named: NamedCustomer) -> str | None:
        for account in self.config.accounts:
            if named.name and account.name.lower() == named.name.lower():
                return account.name
        by_domain = self.directory.for_address(named.email) if named.email else None
        return by_domain.name if by_domain is not None else None

    def _new_case(
        self,
        decision: Decision,
        mail: ParsedMail,
        sender: Address | None,
        agent: Recipient | None,
        now: datetime,
    ) -> Case:
        template = decision.template
        copied: list[dict[str, Any]] = [
            {"email": r.data["account_manager"], "name": ""}
            for r in decision.fired
            if "account_manager" in r.data
        ]
        customer = NamedCustomer(sender.name, sender.email) if sender else NamedCustomer("", "")
        account = decision.account
        if agent is not None:
            customer = self._named_customer(decision)
            account = self._account_of(customer) or account
            copied.append(agent_entry(agent))
        return Case(
            state="open",
            level=decision.level,
            owner_name="",
            owner_email="",
            account=account,
            customer_name=customer.name,
            customer_email=customer.email,
            customer_cc=copied,
            subject=mail.subject or "(no subject)",
            summary=summarise(decision),
            ticket=template.ticket if template else None,
            fields=dict(template.fields) if template else {},
            opened_at=now,
            updated_at=now,
            root_message_id=mail.message_id or None,
        )

    def _insert(self, session: Session, case: Case) -> None:
        # Everything but the key goes out with the INSERT, written with Core: the
        # ORM's unit of work cost several times the statement (store/appends.py).
        insert_as_persistent(session, case)
        # The key needs the id. Written here and marked as stored, it leaves the case
        # clean, so the next flush has no UPDATE of it to work out.
        key = f"{self.config.case_key_prefix}-{case.id:06d}"
        hold(session, _SET_KEY, {"case_id": case.id, "key": key})
        set_committed_value(case, "key", key)

    def _acknowledge(
        self,
        session: Session,
        case: Case,
        decision: Decision,
        mail: ParsedMail,
        sender: Address | None,
        now: datetime,
    ) -> None:
        """The sender hears at once who owns the case and by when they will hear."""
        if sender is None or decision.auto_reply_blocked:
            why = decision.auto_reply_blocked or "no sender address"
            record_event(session, case, now, "reply_suppressed", f"no acknowledgement: {why}")
            return
        self.mail.to_customer(
            session, case, "acknowledgement", now, answering=answering(mail), answers_inbound=True
        )
        author = Recipient(sender.email, sender.name)
        self._ask_for_missing(session, case, decision, mail, author, now)

    def _acknowledge_agent(
        self,
        session: Session,
        case: Case,
        decision: Decision,
        mail: ParsedMail,
        agent: Recipient,
        now: datetime,
    ) -> None:
        """The agent hears as the escalating agent; the customer, if we have an address,
        gets the customer's acknowledgement (the agent has their own)."""
        if decision.auto_reply_blocked:
            why = decision.auto_reply_blocked
            record_event(session, case, now, "reply_suppressed", f"no acknowledgement: {why}")
            return
        self.mail.to_sender(
            session, case, "agent_acknowledgement", agent, now, answering=answering(mail)
        )
        if case.customer_email:
            self.mail.to_customer(
                session, case, "acknowledgement", now, answers_inbound=True, agents=False
            )
        self._ask_for_missing(session, case, decision, mail, agent, now)

    def _ask_for_missing(
        self,
        session: Session,
        case: Case,
        decision: Decision,
        mail: ParsedMail,
        sender: Recipient,
        now: datetime,
    ) -> None:
        """The template's author hears which required fields it lacks."""
        missing = next((r.data["missing"] for r in decision.fired if r.data.get("missing")), None)
        if missing:
            self.mail.to_sender(
                session,
                case,
                "template_incomplete",
                sender,
                now,
                answering=answering(mail),
                missing=[FIELD_LABELS.get(f, f) for f in missing],
            )
