"""Retiring reply tokens that left the case: a lead's reply copied to a customer.

A lead who answers our mail and copies the customer (or anyone else outside the
case) hands them the token in To and References. The gateway reads that reply, so
it knows: every token of the case in it is retired at once, and the lead's
confirmation, like every later gateway mail, brings a fresh one. A retired token is
refused with the date and the reason, even from the address it was issued to,
since the people it was copied to could forge that From.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.outbound.tokens import NONCE_LENGTH, FoundToken, ReplyTokens
from store.models import Case, RetiredReplyToken


def retired(
    session: Session, case: Case, address: str, found: Iterable[FoundToken]
) -> dict[str, RetiredReplyToken]:
    """The retirements of these tokens (issued to `address`), by token."""
    by_nonce = {f.token[:NONCE_LENGTH]: f.token for f in found}
    if not by_nonce:
        return {}
    rows = session.scalars(
        select(RetiredReplyToken).where(
            RetiredReplyToken.case_id == case.id,
            RetiredReplyToken.address == address.lower(),
            RetiredReplyToken.nonce.in_(list(by_nonce)),
        )
    )
    return {by_nonce[row.nonce]: row for row in rows}


def retire(
    session: Session,
    case: Case,
    tokens: ReplyTokens,
    found: Iterable[FoundToken],
    holders: Iterable[str],
    reason: str,
    now: datetime,
) -> list[str]:
    """Retire each of the case's tokens issued to one of `holders`; their holders."""
    candidates = list(dict.fromkeys(h.lower() for h in holders))
    done: list[str] = []
    for token in found:
        if token.case_key != case.key or token.legacy:
            continue
        holder = tokens.holder(token, candidates)
        if holder is None or retired(session, case, holder, [token]):
            continue
        session.add(
            RetiredReplyToken(
                case_id=case.id,
                address=holder,
                nonce=token.token[:NONCE_LENGTH],
                retired_at=now,
                reason=reason,
            )
        )
        done.append(holder)
    if done:
        session.flush()
    return done
