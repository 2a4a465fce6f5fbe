"""`outbox` and `deliver`: what is going out, and sending what is due."""

from __future__ import annotations

import argparse

from gateway.cli.common import AddCommand, open_store, print_json
from gateway.cli.outbox_views import OUTBOX_STATES, format_outbox, list_outbox
from gateway.clock import SystemClock
from gateway.config import GatewayConfig
from gateway.outbound.delivery import OutboxSender


def cmd_outbox(args: argparse.Namespace, config: GatewayConfig, source: str) -> int:
    store = open_store(config)
    with store.session() as session:
        rows = list_outbox(session, args.state)
    if args.json:
        print_json(rows)
    else:
        print(format_outbox(rows))
    return 0


def cmd_deliver(args: argparse.Namespace, config: GatewayConfig, source: str) -> int:
    store = open_store(config)
    sent = OutboxSender(config.outbound, store, SystemClock()).deliver_due(limit=10_000)
    print(f"delivered {sent} mail(s)")
    return 0


def register(add: AddCommand) -> None:
    p = add(
        "outbox",
        cmd_outbox,
        "list outgoing mail; in shadow mode, what would have been sent",
        "escalation-gateway outbox list --state shadow",
    )
    outbox = p.add_subparsers(dest="outbox_command", required=True)
    listing = outbox.add_parser(
        "list",
        help="outgoing mail with state, kind, case and recipients",
        description="Outgoing mail with state, kind, case and recipients.",
        epilog="example: escalation-gateway outbox list --state shadow --json",
    )
    listing.add_argument("--state", choices=OUTBOX_STATES, default=None)
    listing.add_argument("--json", action="store_true")
    add("deliver", cmd_deliver, "send what is due in the outbox once", "escalation-gateway deliver")
