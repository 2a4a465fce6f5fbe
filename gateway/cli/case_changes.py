"""Changes to one case by key (notes, state moves), each in its own transaction: the CLI's way in.

A thin shell over gateway.cases.lifecycle: it finds the case, runs one lifecycle call and
commits, so the CLI and lead commands by email share the same rules.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.cases.accounts import AccountDirectory
from gateway.cases.lifecycle import Lifecycle, LifecycleError
from gateway.clock import Clock
from gateway.config import GatewayConfig
from gateway.outbound.outbox import Outbox
from gateway.outbound.render import Renderer
from store.db import Store
from store.models import Case


class UnknownCase(LifecycleError):
    pass


class CaseChanges:
    def __init__(
        self, config: GatewayConfig, store: Store, clock: Clock, *, shadow: bool = False
    ) -> None:
        self.store = store
        self.clock = clock
        outbox = Outbox(config, Renderer(config.template_dir), shadow=shadow)
        self.lifecycle = Lifecycle(config, outbox, AccountDirectory.build(config.accounts))

    def on_case(self, key: str, action: Callable[[Session, Case, datetime], None]) -> Case:
        """Run one lifecycle action on the case with this key, in its own transaction."""
        with self.store.transaction() as session:
            case = session.scalar(
                select(Case).where(Case.key == key.strip().upper()).with_for_update()
            )
            if case is None:
                raise UnknownCase(f"no case {key}")
            action(session, case, self.clock.now())
            return case

    def note(self, key: str, text: str, *, internal: bool = False, actor: str) -> Case:
        add = self.lifecycle.add_internal_note if internal else self.lifecycle.add_public_note
        return self.on_case(key, lambda s, case, now: add(s, case, text, actor=actor, now=now))

    def set_state(self, key: str, state: str, *, actor: str, reason: str = "") -> Case:
        return self.on_case(
            key,
            lambda s, case, now: self.lifecycle.transition(
                s, case, state, actor=actor, reason=reason, now=now
            ),
        )
