"""Command line: `escalation-gateway [--config PATH] COMMAND`.

Expected failures (bad config, unknown case, unreadable file, store unreachable) are
one clear line on stderr and exit code 2; stack traces are for bugs only.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jinja2
from sqlalchemy.exc import OperationalError

from gateway.cases.lifecycle import LifecycleError
from gateway.classify.classifier import Classifier
from gateway.cli import admin as cli_admin
from gateway.cli import case_views as views
from gateway.cli.case_changes import CaseCommands
from gateway.cli.common import OneLineErrorParser, UserError, open_store, print_json
from gateway.cli.ingest_once import ingest_mailboxes
from gateway.cli.progress import Progress
from gateway.clock import SystemClock
from gateway.config import EMBEDDED, ConfigError, GatewayConfig, load_config
from gateway.daemon import Daemon
from gateway.ingest.imap.connection import ImapFailure
from gateway.ingest.inbound import store_inbound
from gateway.log_format import TEXT_FORMAT, use_format
from gateway.ops.reload import ConfigReloader, snapshot_of
from gateway.outbound.delivery import OutboxSender
from gateway.outbound.render import Renderer
from gateway.work.worker import Worker
from parsers.mail import parse_mail
from parsers.model import UnparseableMail
from store.db import Store

EXIT_USAGE = 2


# Shared with gateway/cli/admin.py, so both raise and catch the same one-line error.
_print_json = print_json
_open_store = open_store


def _check_templates(config: GatewayConfig) -> int:
    try:
        return Renderer(config.template_dir).check()
    except jinja2.TemplateSyntaxError as exc:
        raise UserError(f"template {exc.filename}:{exc.lineno}: {exc.message}") from None


def cmd_check_config(args: argparse.Namespace, config: GatewayConfig, source: str) -> int:
    templates = _check_templates(config)
    rules = Classifier(config).rules
    print(
        f"{source}: OK ({len(rules)} rules, {len(config.accounts)} accounts, {templates} templates)"
    )
    return 0


def cmd_run(args: argparse.Namespace, config: GatewayConfig, source: str) -> int:
    _check_templates(config)
    snapshot = snapshot_of(config, source)
    logging.getLogger("gateway").info("config: %s (version %s)", source, snapshot.version)
    store = _open_store(config)
    # SIGHUP or an edit of the file reloads it; no file (embedded defaults), no reload.
    reloader = ConfigReloader(Path(source), snapshot) if source != EMBEDDED else None
    daemon = Daemon(config, store, SystemClock(), shadow=args.shadow, reloader=reloader)
    daemon.run_forever()
    return daemon.exit_code


def _read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: {exc.strerror}") from None


def cmd_ingest(args: argparse.Namespace, config: GatewayConfig, source: str) -> int:
    store = _open_store(config)
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


def cmd_explain(args: argparse.Namespace, config: GatewayConfig, source: str) -> int:
    raw = _read_input(args.file)
    try:
        mail = parse_mail(raw)
    except UnparseableMail as exc:
        raise UserError(f"{args.file}: cannot be parsed: {exc}") from None
    store = _open_store(config)
    with store.session() as session:
        decision = Classifier(config).classify(session, mail, args.mail_from)
        result = decision.as_dict()
        session.rollback()  # explain never changes anything
    if args.json:
        _print_json(result)
    else:
        print(views.format_explanation(result, mail.subject))
    return 0


def _change_case(args: argparse.Namespace, config: GatewayConfig, store: Store) -> int:
    commands = CaseCommands(config, store, SystemClock())
    actor = f"cli:{getpass.getuser()}"
    try:
        if args.cases_command == "note":
            case = commands.note(args.key, args.text, internal=args.internal, actor=actor)
        else:
            case = commands.set_state(args.key, args.state, actor=actor, reason=args.reason)
    except LifecycleError as exc:
        raise UserError(str(exc)) from None
    print(f"{case.key}: state={case.state} level={case.level}")
    OutboxSender(config.outbound, store, SystemClock()).deliver_due()
    return 0


def cmd_cases(args: argparse.Namespace, config: GatewayConfig, source: str) -> int:
    store = _open_store(config)
    if args.cases_command in {"note", "set-state"}:
        return _change_case(args, config, store)
    with store.session() as session:
        if args.cases_command == "list":
            rows = views.list_cases(session, state=args.state)
            if args.json:
                _print_json(rows)
            else:
                print(views.format_case_table(rows))
            return 0
        detail = views.show_case(session, args.key)
        if detail is None:
            raise UserError(f"no case {args.key}")
        if args.json:
            _print_json(detail)
        else:
            print(views.format_case(detail))
    return 0


def cmd_quarantine(args: argparse.Namespace, config: GatewayConfig, source: str) -> int:
    store = _open_store(config)
    if args.quarantine_command == "list":
        with store.session() as session:
            rows = views.list_quarantine(session)
        if args.json:
            _print_json(rows)
        else:
            for row in rows:
                print(f"{row['id']:>6}  {row['received_at']}  {row['source']:<8} {row['error']}")
            if not rows:
                print("quarantine is empty")
        return 0
    worker = Worker(config, store, SystemClock())
    ids: list[int] = args.ids
    if args.all:
        with store.session() as session:
            ids = [int(row["id"]) for row in views.list_quarantine(session)]
        if not ids:
            print("quarantine is empty")
            return 0
    elif not ids:
        raise UserError("name the items to replay (quarantine list shows them) or use --all")
    progress = Progress("quarantine replay")
    still_failing = delivered = 0
    try:
        for done, item_id in enumerate(ids, 1):
            outcome = worker.replay(item_id)
            if outcome is None:
                raise UserError(f"item {item_id} is not in quarantine")
            progress.finish()  # a result line must not be glued to the progress line
            print(
                f"item {outcome.item_id}: {outcome.state} {outcome.decision or ''}: "
                f"{outcome.detail}"
            )
            still_failing += outcome.state == "quarantined"
            delivered += outcome.state == "done"
            progress(done, len(ids))
    finally:
        progress.finish()
    if delivered:
        OutboxSender(config.outbound, store, SystemClock()).deliver_due()
    return 1 if still_failing else 0


def cmd_deliver(args: argparse.Namespace, config: GatewayConfig, source: str) -> int:
    store = _open_store(config)
    sent = OutboxSender(config.outbound, store, SystemClock()).deliver_due(limit=10_000)
    print(f"delivered {sent} mail(s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="escalation-gateway",
        description="Email-driven escalation handling for a support mailbox.",
        epilog="Config: --config, else $ESCALATION_GATEWAY_CONFIG, else ./escalation-gateway.toml,"
        " else embedded defaults.",
    )
    parser.add_argument("--config", metavar="PATH", help="TOML config file")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--log-format", choices=("text", "json"), default=None, help="overrides [logging] format"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[..., int], help_text: str, example: str) -> Any:
        p = sub.add_parser(
            name, help=help_text, description=help_text, epilog=f"example: {example}"
        )
        p.set_defaults(handler=handler)
        return p

    add(
        "check-config",
        cmd_check_config,
        "validate the config and exit",
        "escalation-gateway --config prod.toml check-config",
    )
    p = add(
        "run",
        cmd_run,
        "run the daemon: SMTP listener, worker and outbox sender",
        "escalation-gateway run",
    )
    p.add_argument("--shadow", action="store_true", help="decide and record, but send nothing")
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
    p = add(
        "explain",
        cmd_explain,
        "show every rule and the decision for a mail, changing nothing",
        "escalation-gateway explain some.eml --json",
    )
    p.add_argument("file", help="message file, or - for stdin")
    p.add_argument("--from", dest="mail_from", default=None, help="envelope sender, if known")
    p.add_argument("--json", action="store_true")
    p = add(
        "cases", cmd_cases, "list cases or show one", "escalation-gateway cases show ESC-000001"
    )
    cases = p.add_subparsers(dest="cases_command", required=True)
    listing = cases.add_parser("list", help="list cases")
    listing.add_argument("--state", default=None)
    listing.add_argument("--json", action="store_true")
    show = cases.add_parser("show", help="show one case with events and mail")
    show.add_argument("key")
    show.add_argument("--json", action="store_true")
    note = cases.add_parser("note", help="add a note; public notes go into the next status mail")
    note.add_argument("key")
    note.add_argument("text")
    note.add_argument("--internal", action="store_true", help="never shown to the customer")
    set_state = cases.add_parser("set-state", help="move a case, e.g. to investigating")
    set_state.add_argument("key")
    set_state.add_argument("state", help="acknowledged, investigating, waiting_on_customer, ...")
    set_state.add_argument("--reason", default="")
    p = add(
        "quarantine",
        cmd_quarantine,
        "list or replay mail that could not be processed",
        "escalation-gateway quarantine replay 42",
    )
    quarantine = p.add_subparsers(dest="quarantine_command", required=True)
    qlist = quarantine.add_parser("list", help="list quarantined items with their reason")
    qlist.add_argument("--json", action="store_true")
    replay = quarantine.add_parser("replay", help="process a quarantined item again")
    replay.add_argument("ids", type=int, nargs="*", metavar="ID")
    replay.add_argument("--all", action="store_true", help="every item in quarantine")
    add("deliver", cmd_deliver, "send what is due in the outbox once", "escalation-gateway deliver")
    cli_admin.register(sub, add)
    cli_admin.add_examples(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Migrations and aiosmtpd's per-connection chatter are noise at INFO; our own
    # lines already say what happened to each mail.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format=TEXT_FORMAT,
        stream=sys.stderr,
    )
    try:
        config, source = load_config(args.config)
        use_format(args.log_format or config.logging.format)
        handler: Callable[[argparse.Namespace, GatewayConfig, str], int] = args.handler
        return handler(args, config, source)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OperationalError as exc:
        print(f"error: store unavailable: {exc.orig}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
