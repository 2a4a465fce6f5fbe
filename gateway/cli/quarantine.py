"""`quarantine`: list mail that could not be processed, and replay it."""

from __future__ import annotations

import argparse

from gateway.cli import case_views as views
from gateway.cli.common import AddCommand, UserError, open_store, print_json
from gateway.cli.progress import Progress
from gateway.clock import SystemClock
from gateway.config import GatewayConfig
from gateway.outbound.delivery import OutboxSender
from gateway.work.worker import Worker


def cmd_quarantine(args: argparse.Namespace, config: GatewayConfig, source: str) -> int:
    store = open_store(config)
    if args.quarantine_command == "list":
        with store.session() as session:
            rows = views.list_quarantine(session)
        if args.json:
            print_json(rows)
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


def register(add: AddCommand) -> None:
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
