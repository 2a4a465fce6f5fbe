"""`cases`: list and show cases, add notes and move states from the shell."""

from __future__ import annotations

import argparse
import getpass

from gateway.cases.lifecycle import LifecycleError
from gateway.cli import case_views as views
from gateway.cli.case_changes import CaseChanges
from gateway.cli.common import AddCommand, UserError, open_store, print_json
from gateway.clock import SystemClock
from gateway.config import GatewayConfig
from gateway.outbound.delivery import OutboxSender
from store.db import Store


def _change_case(args: argparse.Namespace, config: GatewayConfig, store: Store) -> int:
    commands = CaseChanges(config, store, SystemClock())
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
    store = open_store(config)
    if args.cases_command in {"note", "set-state"}:
        return _change_case(args, config, store)
    with store.session() as session:
        if args.cases_command == "list":
            rows = views.list_cases(session, state=args.state)
            if args.json:
                print_json(rows)
            else:
                print(views.format_case_table(rows))
            return 0
        detail = views.show_case(session, args.key)
        if detail is None:
            raise UserError(f"no case {args.key}")
        if args.json:
            print_json(detail)
        else:
            print(views.format_case(detail))
    return 0


def register(add: AddCommand) -> None:
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
