"""`ingest` as a mail server's pipe transport: store, hand over, exit by sysexits.

Postfix, Exim and friends start one process per mail and read only its exit code.
This path commits the raw mail (gateway/ingest/pipe.py), wakes the running daemon's
worker over its wake-up socket and exits; only when no daemon answers does it load
the whole gateway and process the mail itself (`ProcessHere`, which cli/main.py hands
to gateway/cli/ingest.py). Nothing here
may import more than that needs: every import is paid once per mail.

Exit codes (sysexits.h), which the mail server turns into deliver, retry or bounce:
0 stored (also for mail that will be quarantined: bad mail is kept, never bounced),
75 EX_TEMPFAIL: the store is unreachable or locked, or the config file cannot be
read; the mail server keeps the mail and retries. 64 EX_USAGE: wrong arguments.
66 EX_NOINPUT: a FILE given on the command line cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from gateway.ingest.pipe import (
    PipeConfigError,
    StoreUnavailable,
    pipe_row,
    read_settings,
    schema_heads,
    store_raw,
)
from gateway.ingest.wake import wake_daemon

EX_OK = 0
EX_USAGE = 64
EX_NOINPUT = 66
EX_TEMPFAIL = 75

EXIT_CODES_HELP = """\
exit codes (sysexits.h), for a mail server's pipe transport:
  0   stored; handed to the running daemon, or processed here when none runs.
      Mail that cannot be parsed is stored and quarantined, and also exits 0:
      it is never bounced (see `quarantine list`).
  75  EX_TEMPFAIL: store unreachable or locked, or config file unreadable;
      the mail server keeps the mail and retries.
  64  EX_USAGE: wrong arguments.
  66  EX_NOINPUT: a FILE cannot be read.
"""

# Options before the command, as cli/main.py declares them, and whether each takes a value.
_GLOBAL_OPTIONS = {"--config": True, "--log-format": True, "-v": False, "--verbose": False}
# These need the full command line: its help, or an IMAP mailbox.
_FULL_PATH_OPTIONS = ("--imap", "-h", "--help")


@dataclass(frozen=True)
class GlobalOptions:
    config: str | None = None
    verbose: bool = False
    log_format: str | None = None


def pipe_invocation(argv: list[str]) -> tuple[GlobalOptions, list[str]] | None:
    """The global options and the `ingest` arguments, if this is a pipe ingest."""
    values: dict[str, Any] = {}
    index = 0
    while index < len(argv):
        token = argv[index]
        name, has_value, value = token.partition("=")
        if name not in _GLOBAL_OPTIONS:
            break
        if _GLOBAL_OPTIONS[name] and not has_value:
            if index + 1 >= len(argv):
                return None
            index += 1
            value = argv[index]
        values[name] = value if _GLOBAL_OPTIONS[name] else True
        index += 1
    if index >= len(argv) or argv[index] != "ingest":
        return None
    rest = argv[index + 1 :]
    if any(arg.split("=", 1)[0] in _FULL_PATH_OPTIONS for arg in rest):
        return None
    options = GlobalOptions(
        config=values.get("--config"),
        verbose=bool(values.get("-v") or values.get("--verbose")),
        log_format=values.get("--log-format"),
    )
    return options, rest


def add_pipe_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments `ingest` takes on both paths (cli/ingest.py adds --imap)."""
    parser.add_argument(
        "files", nargs="*", metavar="FILE", help="files to ingest; - or none for stdin"
    )
    parser.add_argument(
        "--from", dest="mail_from", default=None, metavar="SENDER", help="envelope sender"
    )
    parser.add_argument(
        "--to",
        dest="rcpt_tos",
        action="extend",
        nargs="+",
        default=[],
        metavar="RCPT",
        help="envelope recipients (put it last: Postfix's ${recipient} may be several)",
    )
    parser.add_argument(
        "--no-deliver",
        action="store_true",
        help="when processed here, leave replies in the outbox",
    )


class _PipeParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EX_USAGE, f"error: {self.prog}: {message} (see --help)\n")


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    return Path(path).read_bytes()


@dataclass(frozen=True)
class ProcessHere:
    """Mail that no daemon took: stored (path, item id), or still to store (path, raw)."""

    options: GlobalOptions
    args: argparse.Namespace
    stored: list[tuple[str, int]]
    unstored: list[tuple[str, bytes]]


def run_pipe(options: GlobalOptions, rest: list[str]) -> int | ProcessHere:
    """Store the mail and wake the daemon: an exit code, or what is left to process."""
    parser = _PipeParser(prog="escalation-gateway ingest")
    add_pipe_arguments(parser)
    args = parser.parse_args(rest)
    try:
        settings = read_settings(options.config)
    except PipeConfigError as exc:
        print(f"config error: {exc}; the mail server will retry", file=sys.stderr)
        return EX_TEMPFAIL
    heads = schema_heads()
    stored: list[tuple[str, int]] = []
    unstored: list[tuple[str, bytes]] = []
    for path in args.files or ["-"]:
        try:
            raw = _read(path)
        except OSError as exc:
            print(f"error: {path}: {exc.strerror}", file=sys.stderr)
            return EX_NOINPUT
        row = pipe_row(raw, args.mail_from, args.rcpt_tos, datetime.now(UTC))
        try:
            item_id = store_raw(settings.store_url, row, heads)
        except StoreUnavailable as exc:
            print(f"error: store unavailable, the mail server will retry: {exc}", file=sys.stderr)
            return EX_TEMPFAIL
        if item_id is None:
            unstored.append((path, raw))  # schema not at head: the full path migrates
        else:
            stored.append((path, item_id))
    if not unstored and settings.wake_socket and wake_daemon(settings.wake_socket):
        for path, item_id in stored:
            print(f"{path}: item {item_id} stored; handed to the running daemon")
        return EX_OK
    # No daemon runs (or the store needs migrating): the caller processes it here.
    return ProcessHere(options, args, stored, unstored)
