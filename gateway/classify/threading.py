"""Finding the case a mail belongs to.

The order matters: Message-IDs are exact, the subject tag survives clients that drop
References, and the external ticket number catches an agent's fresh mail about a
ticket that already has a case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.outbound.marks import case_tag_pattern
from parsers.model import ParsedMail
from store.models import Case, MessageLink

_TICKET_IN_SUBJECT = re.compile(r"\bticket\s*(?:#|no\.?|number)?\s*:?\s*(\d{1,12})\b", re.I)


def ticket_in_subject(subject: str) -> str | None:
    match = _TICKET_IN_SUBJECT.search(subject)
    return match.group(1) if match else None


@dataclass(frozen=True)
class ThreadMatch:
    case: Case
    how: str


def find_case(
    session: Session, mail: ParsedMail, key_prefix: str, ticket: str | None
) -> ThreadMatch | None:
    ids = mail.thread_ids
    if ids:
        row = session.execute(
            select(Case, MessageLink.message_id)
            .join(MessageLink, MessageLink.case_id == Case.id)
            .where(MessageLink.message_id.in_(ids))
            .order_by(Case.id.desc())
            .limit(1)
        ).first()
        if row is not None:
            return ThreadMatch(row[0], f"references our message <{row[1]}>")
    tag = case_tag_pattern(key_prefix).search(mail.subject)
    if tag is not None:
        case = session.scalar(select(Case).where(Case.key == tag.group(1)))
        if case is not None:
            return ThreadMatch(case, f"subject carries case tag {tag.group(1)}")
    if ticket:
        case = session.scalar(
            select(Case)
            .where(Case.ticket == ticket, Case.state != "closed")
            .order_by(Case.id.desc())
            .limit(1)
        )
        if case is not None:
            return ThreadMatch(case, f"same ticket #{ticket} as open case {case.key}")
    return None
