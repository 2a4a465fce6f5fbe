"""`ingest`: store mail from files, stdin or an IMAP mailbox, then process it.

From a pipe transport `ingest` takes the lean path in gateway/cli/pipe.py, which
stores the mail and hands it to the running daemon; `process_here` is its fallback
when no daemon runs. `--imap` and `--help` come through the full command line.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from sqlalchemy.exc import OperationalError

from gateway.cli.common import AddCommand, UserError, open_store
from gateway.cli.ingest_once import ingest_mailboxes, outcome_line
from gateway.cli.pipe import (
    EX_OK,
    EX_TEMPFAIL,
    EXIT_CODES_HELP,
    ProcessHere,
    add_pipe_arguments,
)
from gateway.clock import Clock, SystemClock
from gateway.config import ConfigError, GatewayConfig, load_config
from gateway.ingest.imap.connection import ImapFailure
from gateway.ingest.inbound import store_inbound
from gateway.log_format import TEXT_FORMAT, use_format
from gateway.outbound.delivery import OutboxSender
from gateway.work.worker import Worker
from store.db import Store

log = logging.getLogger("gateway.ingest")


def _read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: {exc.strerror}") from None


def _store(store: Store, raw: bytes, args: argparse.Namespace, clock: Clock) -> int:
    """Commit one mail as `ingest` does, with the envelope given on the command line."""
    return store_inbound(
        store, raw, source="ingest", clock=clock, mail_from=args.mail_from, rcpt_tos=args.rcpt_tos
    )


def _process(
    config: GatewayConfig, store: Store, items: list[tuple[str, int]], deliver: bool
) -> None:
    clock = SystemClock()
    worker = Worker(config, store, clock)
    for path, item_id in items:
        outcome = worker.process_next(item_id)
        if outcome is not None:
            print(outcome_line(path, outcome))
    if deliver:
        OutboxSender(config.outbound, store, clock).deliver_due()


def process_here(handover: ProcessHere) -> int:
    """Process mail the pipe stored (or could not store) when no daemon took it.

    Once a mail is committed the exit code is 0 whatever happens next: the mail server
    must not send it again, and a daemon's next start processes what is pending.
    """
    options, args = handover.options, handover.args
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.basicConfig(
        level=logging.DEBUG if options.verbose else logging.INFO,
        format=TEXT_FORMAT,
        stream=sys.stderr,
    )
    must_store = bool(handover.unstored)
    try:
        config, _source = load_config(options.config)
        use_format(options.log_format or config.logging.format)
        store = open_store(config)
        items = list(handover.stored)
        for path, raw in handover.unstored:
            items.append((path, _store(store, raw, args, SystemClock())))
        must_store = False
        _process(config, store, items, deliver=not args.no_deliver)
    except Exception as exc:
        # Whatever failed, the mail server must only hear "retry" or "done": any other
        # exit code bounces the mail.
        expected = (ConfigError, UserError, OperationalError)
        text = f"config error: {exc}" if isinstance(exc, ConfigError) else f"error: {exc}"
        if not isinstance(exc, expected):
            log.debug("ingest failed", exc_info=True)
            text = f"error: {type(exc).__name__}: {exc}"
        if must_store:
            print(f"{text}; the mail server will retry", file=sys.stderr)
            return EX_TEMPFAIL
        print(f"{text}; the mail is stored and waits for the daemon", file=sys.stderr)
    return EX_OK


def cmd_ingest(args: argparse.Namespace, config: GatewayConfig, source: str) -> int:
    """The full path: --imap (and files given with it)."""
    store = open_store(config)
    clock = SystemClock()
    if args.imap is not None:
        try:
            ingest_mailboxes(
                config, store, clock, Worker(config, store, clock), args.imap or None, print
            )
        except ImapFailure as exc:
            raise UserError(str(exc)) from None
    items = []
    for path in args.files or ([] if args.imap is not None else ["-"]):
        raw = _read_input(path)
        items.append((path, _store(store, raw, args, clock)))
    _process(config, store, items, deliver=not args.no_deliver)
    return 0


def register(add: AddCommand) -> None:
    p = add(
        "ingest",
        cmd_ingest,
        "store mail from stdin or files (a pipe transport) for the running daemon",
        "escalation-gateway ingest --from alice@acme.example --to support@example.com",
    )
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.description = (
        "Store mail from stdin or files and hand it to the running daemon's worker;\n"
        "when no daemon runs, process it here and deliver the replies."
    )
    p.epilog = f"{EXIT_CODES_HELP}\n{p.epilog}"
    add_pipe_arguments(p)
    p.add_argument(
        "--imap",
        nargs="?",
        const="",
        default=None,
        metavar="NAME",
        help="also take mail waiting in the [[imap]] mailbox NAME (all if omitted), once",
    )
