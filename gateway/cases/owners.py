"""Choosing the owner of a case at a level: the account's named lead, or round robin."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.cases.accounts import AccountDirectory
from gateway.config import GatewayConfig, Person
from store.models import OwnerRotation


def choose_owner(
    session: Session,
    config: GatewayConfig,
    directory: AccountDirectory,
    level_number: int,
    account_name: str | None,
) -> tuple[Person, str]:
    """Return the owner and the reason they were chosen."""
    level = config.level(level_number)
    if level.assignment == "account_lead" and account_name:
        account = next((a for a in config.accounts if a.name == account_name), None)
        if account is not None and account.lead is not None:
            return account.lead, f"named lead of account {account.name}"
    if len(level.owners) == 1:
        return level.owners[0], f"the only level-{level_number} owner"
    # The rotation row is locked so two workers never hand out the same slot.
    rotation = next(
        (r for r in session.new if isinstance(r, OwnerRotation) and r.level == level_number),
        None,
    ) or session.scalar(
        select(OwnerRotation).where(OwnerRotation.level == level_number).with_for_update()
    )
    if rotation is None:
        rotation = OwnerRotation(level=level_number, next_index=0)
        session.add(rotation)
    index = rotation.next_index % len(level.owners)
    rotation.next_index = index + 1
    return level.owners[
        index
    ], f"round robin among {len(level.owners)} level-{level_number} owner(s)"
