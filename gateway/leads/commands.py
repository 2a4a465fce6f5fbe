"""The command language leads use in replies: leading "Key: value" lines.

Only the reply's new text is read (quoted history already removed). Commands are the
lines at the top; the first line that is not a command ends the block, and whatever
follows is free text. Parsing never raises: a line that looks like a command but is
not valid comes back as a `CommandError` with the reason, so the confirmation can
list it next to the commands that were applied.

Every command is one `CommandSpec` in `COMMANDS`: its name, the keys leads may type
for it, whether it takes a value, its line in the help text, the parser that checks
its value and the function that applies it (gateway/leads/command_effects.py). The
parser, the help text and `LeadReplies` all read that table, so a new command is one
new entry. Values are checked for shape here (a level is 1-4, an ETA is a time or a
duration); whether they make sense for a case (a known owner, an ETA in the future)
is decided by the apply function, where the case is known.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from gateway.leads import command_effects as effects
from gateway.leads.command_types import (
    Command,
    CommandContext,
    CommandError,
    CommandValue,
    ParsedCommands,
)
from gateway.timefmt import parse_duration

ValueParser = Callable[[str], CommandValue]  # raises ValueError with the reason
Applier = Callable[[CommandContext, Command], None]

STATUS_VALUES: dict[str, str] = {
    "acknowledged": "acknowledged",
    "ack": "acknowledged",
    "investigating": "investigating",
    "in progress": "investigating",
    "waiting": "waiting_on_customer",
    "waiting on customer": "waiting_on_customer",
    "waiting_on_customer": "waiting_on_customer",
    "pending customer": "waiting_on_customer",
    "resolved": "resolved",
    "closed": "closed",
}

_LINE = re.compile(r"^\s*[*_]*([A-Za-z][A-Za-z _-]{0,20}?)[*_]*\s*[:=]\s*(.*?)\s*$")
_BARE_LINE = re.compile(r"^\s*[*_]*([A-Za-z]+)[*_]*\s*[.!]?\s*$")
_ABSOLUTE = ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d")
_USAGE_WIDTH = 34


@dataclass(frozen=True)
class CommandSpec:
    name: str  # what `Command.name` holds
    key: str  # how leads type it
    aliases: tuple[str, ...]  # other keys that mean the same
    takes_value: bool  # False: also written alone on its line; a value is a comment
    usage: str  # left column of the help text
    help: str  # right column: one line
    parse: ValueParser
    apply: Applier
    # Applying it is the owner responding to the case (asking for help is not).
    first_response: bool = True
    # It starts a new first-response clock, which the reply itself must not stop.
    restarts_clock: bool = False

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.key, *self.aliases)

    def build(self, value: str, line: str) -> Command | CommandError:
        try:
            parsed = self.parse(value)
        except ValueError as exc:
            return CommandError(line, str(exc))
        return Command(
            self.name,
            parsed.text,
            line,
            status=parsed.status,
            level=parsed.level,
            duration=parsed.duration,
            when=parsed.when,
        )


# -- value parsers ---------------------------------------------------------------------


def _comment(value: str) -> CommandValue:
    return CommandValue(value.strip())


def _required(name: str) -> ValueParser:
    def parse(value: str) -> CommandValue:
        if not value.strip():
            raise ValueError(f"{name} needs a value")
        return CommandValue(value.strip())

    return parse


def _status(value: str) -> CommandValue:
    status = STATUS_VALUES.get(value.strip().lower())
    if status is None:
        known = ", ".join(sorted({"investigating", "waiting", "acknowledged", "resolved"}))
        raise ValueError(f"unknown status {value!r}; use one of {known}")
    return CommandValue(value, status=status)


def _level(value: str) -> CommandValue:
    if not re.fullmatch(r"\s*[1-4]\s*", value):
        raise ValueError(f"level must be 1, 2, 3 or 4, not {value!r}")
    return CommandValue(value, level=int(value))


def _duration_or_time(value: str) -> tuple[timedelta | None, datetime | None]:
    text = value.strip()
    try:
        return parse_duration(text.replace(" ", "")), None
    except ValueError:
        pass
    for form in _ABSOLUTE:
        try:
            return None, datetime.strptime(text, form)
        except ValueError:
            continue
    raise ValueError(f"{value!r} is neither a time like 2026-11-24 15:00 nor a duration like 4h")


def _eta(value: str) -> CommandValue:
    duration, when = _duration_or_time(value)
    return CommandValue(value, duration=duration, when=when)


def _next_update(value: str) -> CommandValue:
    duration, _ = _duration_or_time(value)
    if duration is None:
        raise ValueError(f"next update takes a duration like 2h, not {value!r}")
    return CommandValue(value, duration=duration)


def _now_only(value: str) -> CommandValue:
    if value.strip().lower() != "now":
        raise ValueError(f"send takes the value 'now', not {value!r}")
    return CommandValue(value)


# -- the table -------------------------------------------------------------------------


def _valued(
    name: str, aliases: tuple[str, ...], usage: str, help: str, parse: ValueParser, apply: Applier
) -> CommandSpec:
    return CommandSpec(name, name.replace("_", " "), aliases, True, usage, help, parse, apply)


def _bare(
    name: str,
    aliases: tuple[str, ...],
    help: str,
    apply: Applier,
    *,
    first_response: bool = True,
    restarts_clock: bool = False,
) -> CommandSpec:
    return CommandSpec(
        name, name, aliases, False, name, help, _comment, apply, first_response, restarts_clock
    )


COMMANDS: tuple[CommandSpec, ...] = (
    _valued(
        "status",
        ("state",),
        "status: investigating | waiting | acknowledged | resolved",
        "where the case stands",
        _status,
        effects.apply_status,
    ),
    _valued(
        "note",
        ("public", "public note"),
        "note: <text for the customer>",
        "goes into the next status email",
        _required("note"),
        effects.apply_note,
    ),
    replace(
        _valued(
            "send",
            (),
            "send: now",
            "...or with this line, to the customer at once",
            _now_only,
            effects.apply_send,
        ),
        first_response=False,  # a modifier of "note", which counts on its own
    ),
    _valued(
        "internal",
        ("internal note",),
        "internal: <text for the team>",
        "never shown to the customer",
        _required("internal"),
        effects.apply_internal,
    ),
    _valued(
        "eta",
        (),
        "eta: 2026-11-24 15:00 | eta: 4h",
        "when you expect a fix (told to the customer)",
        _eta,
        effects.apply_eta,
    ),
    _valued(
        "owner",
        ("assign",),
        "owner: jane@example.com",
        "hand the case over (must be a configured person)",
        _required("owner"),
        effects.apply_owner,
    ),
    _valued(
        "level",
        (),
        "level: 3",
        "raise or lower the level (1-4); new deadlines",
        _level,
        effects.apply_level,
    ),
    _valued(
        "next_update",
        ("next",),
        "next update: 2h",
        "when the next status email goes out",
        _next_update,
        effects.apply_next_update,
    ),
    _bare("ack", ("acknowledge",), "you have contacted the customer", effects.apply_ack),
    _bare("resolve", ("resolved",), "resolved; monitoring starts", effects.apply_resolve),
    _bare("close", (), "close now", effects.apply_close),
    _bare(
        "reopen",
        (),
        "reopen a resolved or closed case",
        effects.apply_reopen,
        first_response=False,
        restarts_clock=True,
    ),
    _bare("help", (), "this text", effects.apply_help, first_response=False),
)

BY_NAME: dict[str, CommandSpec] = {spec.name: spec for spec in COMMANDS}
_BY_KEY: dict[str, CommandSpec] = {key: spec for spec in COMMANDS for key in spec.keys}


# -- parsing ---------------------------------------------------------------------------


def _parse_line(raw: str) -> Command | CommandError | None:
    """The line as a command or a failed one; None when it ends the command block."""
    keyed = _LINE.match(raw)
    if keyed is not None:
        key = " ".join(keyed.group(1).lower().replace("_", " ").replace("-", " ").split())
        spec = _BY_KEY.get(key)
        if spec is not None:
            return spec.build(keyed.group(2), raw.strip())
        if " " not in key:
            # A single word and a colon at the top of a lead's reply is meant as a
            # command; saying so beats silently treating it as prose.
            return CommandError(raw.strip(), f"unknown command {keyed.group(1)!r}")
        return None
    bare = _BARE_LINE.match(raw)
    if bare is not None:
        spec = _BY_KEY.get(bare.group(1).lower())
        if spec is not None and not spec.takes_value:
            return Command(spec.name, "", raw.strip())
    return None


def parse_commands(text: str) -> ParsedCommands:
    commands: list[Command] = []
    errors: list[CommandError] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        raw = lines[index]
        if raw.strip():
            built = _parse_line(raw)
            if built is None:
                break
            if isinstance(built, Command):
                commands.append(built)
            else:
                errors.append(built)
        index += 1
    free_text = "\n".join(lines[index:]).strip()
    return ParsedCommands(tuple(commands), tuple(errors), free_text)


# -- help ------------------------------------------------------------------------------

_HELP_HEAD = """\
Reply to any gateway email about a case with commands on the first lines of your
reply, one per line ("Key: value", any case). Everything after the first line that
is not a command is kept as an internal note.
"""
_HELP_TAIL = """\
A reply with no commands at all is kept as an internal note on the case.

Example:
  status: investigating
  note: We found the cause and are testing a fix.
  eta: 4h
"""


def _help_lines(spec: CommandSpec) -> list[str]:
    indent = " " * (2 + _USAGE_WIDTH)
    if len(spec.usage) < _USAGE_WIDTH:
        lines = [f"  {spec.usage:<{_USAGE_WIDTH}}{spec.help}"]
    else:
        lines = [f"  {spec.usage}", f"{indent}{spec.help}"]
    if spec.aliases:
        lines.append(f"{indent}also written: {', '.join(spec.aliases)}")
    return lines


def help_text(commands: tuple[CommandSpec, ...] = COMMANDS) -> str:
    """The command list leads get for `help` or after a mistake, built from the table."""
    table = [line for spec in commands for line in _help_lines(spec)]
    return "\n".join([_HELP_HEAD, *table, "", _HELP_TAIL])


HELP_TEXT = help_text()

__all__ = [
    "BY_NAME",
    "COMMANDS",
    "HELP_TEXT",
    "STATUS_VALUES",
    "Command",
    "CommandError",
    "CommandSpec",
    "ParsedCommands",
    "help_text",
    "parse_commands",
]
