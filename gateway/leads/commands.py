"""The command language leads use in replies: leading "Key: value" lines.

Only the reply's new text is read (quoted history already removed). Commands are the
lines at the top; the first line that is not a command ends the block, and whatever
follows is free text. Parsing never raises: a line that looks like a command but is
not valid comes back as a `CommandError` with the reason, so the confirmation can
list it next to the commands that were applied.

Values are checked for shape here (a level is 1-4, an ETA is a time or a duration);
whether they make sense for a case (a known owner, an ETA in the future) is decided
where the case is known.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from gateway.timefmt import parse_duration

# Keys as leads type them, mapped to the command they mean.
_KEYS: dict[str, str] = {
    "status": "status",
    "state": "status",
    "note": "note",
    "public": "note",
    "public note": "note",
    "internal": "internal",
    "internal note": "internal",
    "eta": "eta",
    "owner": "owner",
    "assign": "owner",
    "level": "level",
    "next update": "next_update",
    "next": "next_update",
    "send": "send",
}
# Commands that take no value (a value after a colon is kept as a comment).
_BARE = {
    "ack": "ack",
    "acknowledge": "ack",
    "resolve": "resolve",
    "resolved": "resolve",
    "close": "close",
    "reopen": "reopen",
    "help": "help",
}

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


@dataclass(frozen=True)
class Command:
    name: str  # status, note, internal, eta, owner, level, next_update, send, ack, ...
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


def _parse_eta(value: str) -> tuple[timedelta | None, datetime | None]:
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


def _build(name: str, value: str, line: str) -> Command | CommandError:
    if name == "status":
        status = STATUS_VALUES.get(value.strip().lower())
        if status is None:
            known = ", ".join(sorted({"investigating", "waiting", "acknowledged", "resolved"}))
            return CommandError(line, f"unknown status {value!r}; use one of {known}")
        return Command(name, value, line, status=status)
    if name == "level":
        if not re.fullmatch(r"\s*[1-4]\s*", value):
            return CommandError(line, f"level must be 1, 2, 3 or 4, not {value!r}")
        return Command(name, value, line, level=int(value))
    if name in {"eta", "next_update"}:
        try:
            duration, when = _parse_eta(value)
        except ValueError as exc:
            return CommandError(line, str(exc))
        if name == "next_update" and duration is None:
            return CommandError(line, f"next update takes a duration like 2h, not {value!r}")
        return Command(name, value, line, duration=duration, when=when)
    if name == "send":
        if value.strip().lower() != "now":
            return CommandError(line, f"send takes the value 'now', not {value!r}")
        return Command(name, value, line)
    if name in {"note", "internal", "owner"} and not value.strip():
        return CommandError(line, f"{name} needs a value")
    return Command(name, value.strip(), line)


def parse_commands(text: str) -> ParsedCommands:
    commands: list[Command] = []
    errors: list[CommandError] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        raw = lines[index]
        if not raw.strip():
            index += 1
            continue
        keyed = _LINE.match(raw)
        bare = _BARE_LINE.match(raw)
        if keyed is not None:
            key = " ".join(keyed.group(1).lower().replace("_", " ").replace("-", " ").split())
            value = keyed.group(2)
            if key in _KEYS:
                built = _build(_KEYS[key], value, raw.strip())
            elif key in _BARE:
                built = Command(_BARE[key], value.strip(), raw.strip())
            elif " " not in key:
                # A single word and a colon at the top of a lead's reply is meant as a
                # command; saying so beats silently treating it as prose.
                built = CommandError(raw.strip(), f"unknown command {keyed.group(1)!r}")
            else:
                break
        elif bare is not None and bare.group(1).lower() in _BARE:
            built = Command(_BARE[bare.group(1).lower()], "", raw.strip())
        else:
            break
        if isinstance(built, Command):
            commands.append(built)
        else:
            errors.append(built)
        index += 1
    free_text = "\n".join(lines[index:]).strip()
    return ParsedCommands(tuple(commands), tuple(errors), free_text)


HELP_TEXT = """\
Reply to any gateway email about a case with commands on the first lines of your
reply, one per line ("Key: value", any case). Everything after the first line that
is not a command is kept as an internal note.

  status: investigating | waiting | acknowledged | resolved
  note: <text for the customer>     goes into the next status email
  send: now                         ...or with this line, to the customer at once
  internal: <text for the team>     never shown to the customer
  eta: 2026-11-24 15:00 | eta: 4h   when you expect a fix (told to the customer)
  owner: jane@example.com           hand the case over (must be a configured person)
  level: 3                          raise or lower the level (1-4); new deadlines
  next update: 2h                   when the next status email goes out
  ack                               you have contacted the customer
  resolve                           resolved; monitoring starts
  close                             close now
  reopen                            reopen a resolved or closed case
  help                              this text

A reply with no commands at all is kept as an internal note on the case.

Example:
  status: investigating
  note: We found the cause and are testing a fix.
  eta: 4h
"""
