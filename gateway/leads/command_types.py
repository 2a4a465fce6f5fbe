"""What a lead command is once parsed, and what applying one needs and reports.

Kept apart from the command table (gateway/leads/commands.py) and the functions that
apply commands (gateway/leads/command_effects.py), which both need these types: the
table names its apply functions, so they cannot live beside it without a circle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from gateway.cases.lifecycle import Lifecycle
from gateway.config import GatewayConfig
from gateway.timefmt import format_when
from store.models import Case


@dataclass(frozen=True)
class CommandValue:
    """A value as a command's parser understood it."""

    text: str
    status: str | None = None
    level: int | None = None
    duration: timedelta | None = None
    when: datetime | None = None  # naive: in the configured timezone


@dataclass(frozen=True)
class Command:
    name: str  # the command's table name: status, note, internal, eta, owner, level, ...
    value: str  # the text as written
    line: str
    # Parsed values, set for the commands that have them.
    status: str | None = None
    level: int | None = None
    duration: timedelta | None = None
    when: datetime | None = None  # naive: in the configured timezone


@dataclass(frozen=True)
class CommandError:
    line: str
    reason: str


@dataclass(frozen=True)
class ParsedCommands:
    commands: tuple[Command, ...] = ()
    errors: tuple[CommandError, ...] = ()
    free_text: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.commands and not self.errors

    def named(self, name: str) -> list[Command]:
        return [c for c in self.commands if c.name == name]


@dataclass
class CommandReport:
    """What the confirmation to the lead lists: done, not done, and what was asked."""

    applied: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    # Names of the commands that were applied (not rejected), in order.
    done: list[str] = field(default_factory=list)
    # Things the lead should know that are neither done nor not done.
    notices: list[str] = field(default_factory=list)
    help_requested: bool = False
    send_now: bool = False


@dataclass
class CommandContext:
    """Everything an apply function may touch: one reply's commands on one case."""

    session: Session
    case: Case
    actor: str
    now: datetime
    config: GatewayConfig
    lifecycle: Lifecycle
    report: CommandReport
    # The reply also said "send: now": a public note goes out at once.
    send_now: bool = False

    def when(self, moment: datetime | None) -> str:
        return format_when(moment, self.config.timezone) if moment else "-"
