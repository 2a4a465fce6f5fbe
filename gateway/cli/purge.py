"""`purge`: erase or anonymise one customer's data (gateway/ops/purge.py)."""

from __future__ import annotations

import argparse
import getpass

from sqlalchemy import select

from gateway.cli.common import AddCommand, UserError, open_store, print_json
from gateway.clock import SystemClock
from gateway.config import GatewayConfig
from gateway.ops.purge import Selector, anonymise, erase, plan_purge
from store.models import Case


def _selector(args: argparse.Namespace, config: GatewayConfig) -> Selector:
    if args.domain:
        domain = args.domain.strip().lstrip("@").lower()
        ours = {address.rpartition("@")[2] for address in config.own_addresses}
        ours |= set(config.smtp.accept_domains)
        if domain in ours:
            # Our own domain is in the To of nearly every mail: that would erase everything.
            raise UserError(f"{domain} is one of the gateway's own domains; purge a customer's")
        return Selector(domain=domain)
    if "@" not in args.address:
        raise UserError(f"{args.address!r} is not an email address")
    return Selector(address=args.address.strip().lower())


def _actor(args: argparse.Namespace) -> str:
    if args.actor:
        return str(args.actor)
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def cmd_purge(args: argparse.Namespace, config: GatewayConfig, source: str) -> int:
    selector = _selector(args, config)
    action = "anonymise" if args.anonymise else "erase"
    store = open_store(config)
    with store.transaction() as session:
        plan = plan_purge(session, selector)
        still_open = list(
            session.scalars(
                select(Case.key).where(Case.id.in_(plan.case_ids), Case.state != "closed")
            )
        )
        if still_open and not args.include_open:
            shown = ", ".join(map(str, still_open[:5])) + (" ..." if len(still_open) > 5 else "")
            raise UserError(
                f"{len(still_open)} of these cases are not closed ({shown});"
                " close them first or add --include-open"
            )
        if not args.yes:
            summary = {"action": action, "would_change": plan.summary(), "done": False}
            _show(args, summary, f"would {action}")
            return 0
        run = anonymise if args.anonymise else erase
        counts = run(session, plan, selector, _actor(args), SystemClock().now())
    _show(args, {"action": action, "changed": counts, "done": True}, f"{action}d")
    return 0


def _show(args: argparse.Namespace, summary: dict[str, object], verb: str) -> None:
    if args.json:
        print_json(summary)
        return
    counts = summary.get("changed") or summary.get("would_change")
    assert isinstance(counts, dict)
    parts = ", ".join(f"{count} {name.replace('_', ' ')}" for name, count in counts.items())
    print(f"{verb}: {parts}")
    if not summary["done"]:
        print("nothing changed; run again with --yes to do it")


def register(add: AddCommand) -> None:
    p = add(
        "purge",
        cmd_purge,
        "erase (or anonymise) a customer's mail, cases and addresses, by address or domain;"
        " recorded in the data-protection log",
        "escalation-gateway purge --address alice@acme.example --yes",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--address", help="one customer address")
    which.add_argument("--domain", help="every address at this domain (a customer company)")
    p.add_argument(
        "--anonymise",
        action="store_true",
        help="keep the cases for reports, blanking who and what (default: erase them)",
    )
    p.add_argument("--include-open", action="store_true", help="also cases not yet closed")
    p.add_argument("--yes", action="store_true", help="do it (without: show what would change)")
    p.add_argument("--actor", default="", help="who asked, for the log (default: cli:LOGIN)")
    p.add_argument("--json", action="store_true", help="counts as JSON")
