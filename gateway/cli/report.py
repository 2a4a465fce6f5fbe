"""`report`: response and resolution times, breaches, repeats and status mail."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from gateway.cli.common import AddCommand, UserError, open_store, print_json
from gateway.cli.progress import Progress
from gateway.clock import SystemClock
from gateway.config import GatewayConfig
from gateway.timefmt import parse_duration


def _moment(text: str, now: datetime, flag: str) -> datetime:
    """An ISO date or time (UTC unless it says otherwise), or a duration back from now."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            return now - parse_duration(text)
        except ValueError:
            raise UserError(
                f"{flag} {text!r}: use a date like 2026-11-01 or a span like 30d"
            ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def cmd_report(args: argparse.Namespace, config: GatewayConfig, source: str) -> int:
    from gateway.ops import reports as reports

    now = SystemClock().now()
    since = _moment(args.since, now, "--since")
    until = _moment(args.until, now, "--until") if args.until else now
    if since >= until:
        raise UserError("--since must be before --until")
    store = open_store(config)
    progress = Progress("report")
    with store.session() as session:
        try:
            facts, inbound = reports.collect(session, config, since, until, progress)
        finally:
            progress.finish()
    report = reports.build_report(facts, inbound, args.by)
    report["since"], report["until"] = since.isoformat(), until.isoformat()
    if args.format == "json":
        print_json(report)
    elif args.format == "csv":
        sys.stdout.write(reports.format_csv(report))
    else:
        print(f"cases opened {since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M} UTC, by {args.by}")
        print(reports.format_table(report))
    if args.chart:
        from gateway.ops.charts import render_chart

        try:
            render_chart(facts, Path(args.chart))
        except OSError as exc:
            raise UserError(f"{args.chart}: {exc.strerror}") from None
        print(f"chart written to {args.chart}", file=sys.stderr)
    return 0


def register(add: AddCommand) -> None:
    p = add(
        "report",
        cmd_report,
        "response and resolution times, SLA breaches, repeats and status mail for a period",
        "escalation-gateway report --since 2026-10-01 --until 2026-11-01 --by level"
        " --format csv --chart escalations.png",
    )
    p.add_argument("--since", default="30d", help="ISO date/time or span back from now (30d)")
    p.add_argument("--until", default=None, help="ISO date/time or span back (default: now)")
    p.add_argument("--by", choices=("level", "account", "owner"), default="level")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.add_argument("--chart", metavar="FILE.png", default=None, help="also draw weekly charts")
