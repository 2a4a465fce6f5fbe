"""What every action on a case writes besides the case row: audit events, links, the owner's mail.

Shared by opening (gateway/act/opening.py) and by the actions on an existing case
(gateway/act/actions.py), all inside the worker's transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from gateway.cases.accounts import AccountDirectory
from gateway.cases.mail import TimelineMail
from gateway.cases.owners import choose_owner
from gateway.classify.classifier import Decision
from gateway.config import GatewayConfig
from gateway.outbound.compose import Recipient, Threading
from parsers.escalation_template import FIELD_LABELS
from parsers.model import Address, ParsedMail
from store.appends import add_event, add_link
from store.models import Case, InboundItem


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


def answering(mail: ParsedMail) -> Threading:
    """Threading that answers this inbound mail, as a mail client's reply would."""
    references = (*mail.references, mail.message_id) if mail.message_id else mail.references
    return Threading(mail.message_id or None, tuple(references))


def record_event(
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


def link_inbound(
    session: Session, case: Case, mail: ParsedMail, item: InboundItem, now: datetime
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


def assign_owner(
    session: Session, config: GatewayConfig, directory: AccountDirectory, case: Case
) -> str:
    """Give the case its level's owner; returns why that owner was chosen."""
    owner, why = choose_owner(session, config, directory, case.level, case.account)
    case.owner_name, case.owner_email = owner.name, owner.email
    return why


def notify_owner(
    case_mail: TimelineMail,
    session: Session,
    case: Case,
    decision: Decision,
    mail: ParsedMail,
    now: datetime,
    previous_level: int | None = None,
) -> None:
    """The owner's mail about a new (or newly upgraded) case, with every signal."""
    fields = [(FIELD_LABELS.get(key, key), value) for key, value in case.fields.items() if value]
    case_mail.to_staff(
        session,
        case,
        "owner_notification",
        [Recipient(case.owner_email, case.owner_name)],
        now,
        answering=answering(mail),
        summary=summarise(decision) or "(no text)",
        fields=fields,
        signals=[r.as_dict() for r in decision.fired],
        previous_level=previous_level,
    )
