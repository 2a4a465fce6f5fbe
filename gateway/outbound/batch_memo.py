"""Facts a timer batch reads once for all its cases instead of once per case.

Each case in a batch would otherwise ask the store two small questions before it
writes a customer mail: which mail it last sent the customer (for threading) and how
many automatic mails the address got this hour (for the cap). On PostgreSQL each
question is a network round trip, so a batch of 200 asks them in two queries.

The memo lives in `session.info`, so it ends with the transaction. Mail written
during the batch keeps it current (`note_customer_mail`, `note_auto_reply`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.models import AutoReplyLog, Case, OutboxMail

_KEY = "timer_batch_memo"


@dataclass
class BatchMemo:
    customer_kinds: tuple[str, ...]
    last_customer_mail: dict[int, str] = field(default_factory=dict)
    known_cases: set[int] = field(default_factory=set)
    replies_this_hour: Counter[str] = field(default_factory=Counter)
    known_addresses: set[str] = field(default_factory=set)
    hour_start: datetime | None = None


def load(
    session: Session, cases: Sequence[Case], customer_kinds: tuple[str, ...], now: datetime
) -> BatchMemo:
    memo = BatchMemo(customer_kinds)
    ids = [case.id for case in cases]
    latest = (
        select(func.max(OutboxMail.id))
        .where(OutboxMail.case_id.in_(ids), OutboxMail.kind.in_(customer_kinds))
        .group_by(OutboxMail.case_id)
    )
    for case_id, message_id in session.execute(
        select(OutboxMail.case_id, OutboxMail.message_id).where(OutboxMail.id.in_(latest))
    ):
        if case_id is not None:
            memo.last_customer_mail[case_id] = message_id
    memo.known_cases = set(ids)
    addresses = {case.customer_email for case in cases if case.customer_email}
    memo.hour_start = now - timedelta(hours=1)
    for address, count in session.execute(
        select(AutoReplyLog.address, func.count())
        .where(AutoReplyLog.address.in_(addresses), AutoReplyLog.at > memo.hour_start)
        .group_by(AutoReplyLog.address)
    ):
        memo.replies_this_hour[address] = int(count)
    memo.known_addresses = addresses
    session.info[_KEY] = memo
    return memo


def current(session: Session) -> BatchMemo | None:
    memo = session.info.get(_KEY)
    return memo if isinstance(memo, BatchMemo) else None


def forget(session: Session) -> None:
    session.info.pop(_KEY, None)
