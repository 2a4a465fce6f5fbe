"""What each lead command does to a case: one apply function per command.

Each takes the reply's `CommandContext` and the parsed `Command`, changes the case
through the lifecycle, and adds one line to the report for the lead's confirmation.
A command that does not make sense for the case as it is raises `LifecycleError`
with the reason, which the confirmation lists under "Not done".
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from gateway.cases.lifecycle import LifecycleError
from gateway.cases.sla import ACTIVE_STATES, refresh_wakeup
from gateway.config import GatewayConfig, Person
from gateway.leads.command_types import Command, CommandContext
from gateway.outbound.outbox import Recipient


def apply_status(ctx: CommandContext, command: Command) -> None:
    assert command.status is not None
    ctx.lifecycle.transition(
        ctx.session, ctx.case, command.status, actor=ctx.actor, reason="lead", now=ctx.now
    )
    ctx.report.applied.append(f"status is now {ctx.case.state.replace('_', ' ')}")


def apply_ack(ctx: CommandContext, command: Command) -> None:
    ctx.lifecycle.acknowledge(
        ctx.session, ctx.case, actor=ctx.actor, reason="lead acknowledged", now=ctx.now
    )
    ctx.report.applied.append("acknowledged: the first-response clock is stopped")


def apply_resolve(ctx: CommandContext, command: Command) -> None:
    ctx.lifecycle.resolve(
        ctx.session, ctx.case, actor=ctx.actor, reason="lead resolved", now=ctx.now
    )
    until = ctx.when(ctx.case.monitoring_until) if ctx.case.monitoring_until else "?"
    ctx.report.applied.append(f"resolved; monitoring until {until}")


def apply_close(ctx: CommandContext, command: Command) -> None:
    ctx.lifecycle.close(
        ctx.session, ctx.case, actor=ctx.actor, reason="closed by lead", now=ctx.now
    )
    ctx.report.applied.append("closed; the customer got the closing mail")


def apply_reopen(ctx: CommandContext, command: Command) -> None:
    ctx.lifecycle.reopen(
        ctx.session, ctx.case, actor=ctx.actor, reason="reopened by lead", now=ctx.now
    )
    ctx.report.applied.append(f"reopened at level {ctx.case.level}")


def apply_level(ctx: CommandContext, command: Command) -> None:
    assert command.level is not None
    case = ctx.case
    ctx.lifecycle.set_level(
        ctx.session, case, command.level, actor=ctx.actor, reason="lead", now=ctx.now
    )
    ctx.report.applied.append(
        f"level is now {case.level}; owner {case.owner_name} <{case.owner_email}>, "
        f"customer told the new timeline"
    )


def known_person(config: GatewayConfig, email: str) -> Person | None:
    """A configured admin, level owner or manager, or account lead with this address."""
    email = email.strip().strip("<>").lower()
    people = [
        *config.leads.admins,
        *(p for level in config.levels for p in (*level.owners, *level.managers)),
        *(a.lead for a in config.accounts if a.lead is not None),
    ]
    return next((p for p in people if p.email == email), None)


def apply_owner(ctx: CommandContext, command: Command) -> None:
    case = ctx.case
    person = known_person(ctx.config, command.value)
    if person is None:
        raise LifecycleError(
            f"unknown owner {command.value!r}: not a configured lead, owner or admin"
        )
    if case.state == "closed":
        raise LifecycleError(f"{case.key} is closed; reopen it first")
    if person.email == case.owner_email.lower():
        raise LifecycleError(f"{person.email} already owns {case.key}")
    previous = Recipient(case.owner_email, case.owner_name)
    case.owner_name, case.owner_email = person.name, person.email
    ctx.lifecycle.event(
        ctx.session,
        case,
        ctx.now,
        "owner_changed",
        f"owner {previous.email} -> {person.email}",
        actor=ctx.actor,
        data={"from": previous.email, "to": person.email},
    )
    new_owner = Recipient(person.email, person.name)
    mail = ctx.lifecycle.mail
    mail.to_staff(ctx.session, case, "owner_assigned", [new_owner], ctx.now, by=ctx.actor)
    mail.to_customer(ctx.session, case, "owner_change_notice", ctx.now)
    ctx.report.applied.append(f"owner is now {person.name} <{person.email}>; customer told")


def apply_eta(ctx: CommandContext, command: Command) -> None:
    if command.duration is not None:
        eta = ctx.now + command.duration
    else:
        assert command.when is not None
        eta = command.when.replace(tzinfo=ZoneInfo(ctx.config.timezone))
    if eta <= ctx.now:
        raise LifecycleError(f"the ETA {ctx.when(eta)} is in the past")
    ctx.case.eta = eta
    ctx.lifecycle.event(
        ctx.session,
        ctx.case,
        ctx.now,
        "eta_set",
        f"ETA {eta.isoformat()}",
        actor=ctx.actor,
        data={"eta": eta.isoformat()},
    )
    ctx.report.applied.append(f"ETA set to {ctx.when(eta)}; the customer sees it in updates")


def apply_next_update(ctx: CommandContext, command: Command) -> None:
    assert command.duration is not None
    case = ctx.case
    if case.state not in ACTIVE_STATES:
        raise LifecycleError(f"{case.key} is {case.state}; no status updates are due")
    case.next_status_due = ctx.now + command.duration
    refresh_wakeup(case)
    ctx.lifecycle.event(
        ctx.session,
        case,
        ctx.now,
        "next_update_set",
        f"next status update by {case.next_status_due.isoformat()}",
        actor=ctx.actor,
    )
    ctx.report.applied.append(f"next status update by {ctx.when(case.next_status_due)}")


def apply_note(ctx: CommandContext, command: Command) -> None:
    ctx.lifecycle.add_public_note(
        ctx.session, ctx.case, command.value, actor=ctx.actor, now=ctx.now
    )
    if ctx.send_now:
        ctx.report.send_now = True  # sent after every command, so the mail shows them all
        ctx.report.applied.append("public note sent to the customer now")
    else:
        ctx.report.applied.append("public note added; it goes out with the next status update")


def apply_internal(ctx: CommandContext, command: Command) -> None:
    ctx.lifecycle.add_internal_note(
        ctx.session, ctx.case, command.value, actor=ctx.actor, now=ctx.now
    )
    ctx.report.applied.append("internal note added")


def apply_send(ctx: CommandContext, command: Command) -> None:
    """A modifier of "note" (see `apply_note`); on its own it does nothing."""


def apply_help(ctx: CommandContext, command: Command) -> None:
    ctx.report.help_requested = True
    ctx.report.applied.append("help: the command list is below")
