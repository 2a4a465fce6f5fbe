"""Opening a case from a Decision: the row, its clocks and owner, its key, its first mail.

Runs inside the worker's transaction, so the new case, its audit event and the mail
it causes commit together or not at all.
"""

from __future__ import annotations

from datetime import datetime

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
        case = self._new_case(decision, mail, sender, now)
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
        self._acknowledge(session, case, decision, mail, sender, now)
        return case

    def _new_case(
        self, decision: Decision, mail: ParsedMail, sender: Address | None, now: datetime
    ) -> Case:
        template = decision.template
        copied_managers = [
            {"email": r.data["account_manager"], "name": ""}
            for r in decision.fired
            if "account_manager" in r.data
        ]
        return Case(
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
        missing = next((r.data["missing"] for r in decision.fired if r.data.get("missing")), None)
        if missing:
            self.mail.to_sender(
                session,
                case,
                "template_incomplete",
                Recipient(sender.email, sender.name),
                now,
                answering=answering(mail),
                missing=[FIELD_LABELS.get(f, f) for f in missing],
            )
