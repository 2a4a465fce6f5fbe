"""`ingest`: store mail from files, stdin or an IMAP mailbox, then process it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateway.cli.common import AddCommand, UserError, open_store
from gateway.cli.ingest_once import ingest_mailboxes
from gateway.clock import SystemClock
from gateway.config import GatewayConfig
from gateway.ingest.imap.connection import ImapFailure
from gateway.ingest.inbound import store_inbound
from gateway.outbound.delivery import OutboxSender
from gateway.work.worker import Worker


def _read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: {exc.strerror}") from None


def cmd_ingest(args: argparse.Namespace, config: GatewayConfig, source: str) -> int:
    store = open_store(config)
    clock = SystemClock()
    worker = Worker(config, store, clock)
    if args.imap is not None:
        try:
            ingest_mailboxes(config, store, clock, worker, args.imap or None, print)
        except ImapFailure as exc:
            raise UserError(str(exc)) from None
    for path in args.files or ([] if args.imap is not None else ["-"]):
        raw = _read_input(path)
        item_id = store_inbound(store, raw, source="ingest", clock=clock, mail_from=args.mail_from)
        outcome = worker.process_next(item_id)
        if outcome is not None:
            print(
                f"{path}: item {outcome.item_id} {outcome.state}"
                f" {outcome.decision or ''} {outcome.case_key or ''}".rstrip()
                + f": {outcome.detail}"
            )
    if not args.no_deliver:
        OutboxSender(config.outbound, store, clock).deliver_due()
    return 0


def register(add: AddCommand) -> None:
    p = add(
        "ingest",
        cmd_ingest,
        "store and process mail from files or stdin (pipe transport)",
        "escalation-gateway ingest message.eml  |  sendmail-pipe | escalation-gateway ingest -",
    )
    p.add_argument("files", nargs="*", metavar="FILE", help="files to ingest; - or none for stdin")
    p.add_argument("--from", dest="mail_from", default=None, help="envelope sender, if known")
    p.add_argument("--no-deliver", action="store_true", help="leave replies in the outbox")
    p.add_argument(
        "--imap",
        nargs="?",
        const="",
        default=None,
        metavar="NAME",
        help="also take mail waiting in the [[imap]] mailbox NAME (all if omitted), once",
    )
