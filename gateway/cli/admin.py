"""Admin commands: rule suites, the outbox, replay and reports.

Kept apart from ``gateway/cli/main.py`` so the daemon's own commands stay short; each
handler here only parses arguments and prints, the work lives in its own module.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.classify.classifier import Classifier
from gateway.cli.common import UserError, open_store, print_json
from gateway.cli.outbox_views import OUTBOX_STATES, format_outbox, list_outbox
from gateway.cli.progress import Progress
from gateway.clock import SystemClock
from gateway.config import GatewayConfig, load_config_file
from gateway.config.version import version_of_bytes
from gateway.ops.replay import format_changes, replay
from gateway.ops.rule_suite import SuiteError, format_report, run_suite
from gateway.timefmt import parse_duration

AddCommand = Callable[[str, Callable[..., int], str, str], Any]


def cmd_rules(args: argparse.Namespace, config: GatewayConfig, source: str) -> int:
    classifier = Classifier(config)
    progress = Progress("rules test")
    try:
        if args.store:
            store = open_store(config)
            with store.session() as session:
                report = run_suite(Path(args.dir), classifier, session, progress)
                session.rollback()  # classification only; nothing is written
        else:
            report = run_suite(Path(args.dir), classifier, None, progress)
    except SuiteError as exc:
        raise UserError(str(exc)) from None
    finally:
        progress.finish()
    if args.json:
        print_json(
            [
                {
                    "mail": r.name,
                    "passed": r.passed,
                    "decision": r.decision,
                    "level": r.level,
                    "fired": [{"rule": rule, "evidence": ev} for rule, ev in r.fired],
                    "problems": list(r.problems),
                }
                for r in report.results
            ]
        )
    else:
        print(format_report(report))
    return 1 if report.failed else 0


def cmd_outbox(args: argparse.Namespace, config: GatewayConfig, source: str) -> int:
    store = open_store(config)
    with store.session() as session:
        rows = list_outbox(session, args.state)
    if args.json:
        print_json(rows)
    else:
        print(format_outbox(rows))
    return 0


def _since(text: str, now: Any) -> Any:
    try:
        return now - parse_duration(text)
    except ValueError as exc:
        raise UserError(f"--since {text!r}: {exc}") from None


def cmd_replay(args: argparse.Namespace, config: GatewayConfig, source: str) -> int:
    store = open_store(config)  # the mail comes from the store of the current config
    new_config, version = config, ""
    if args.replay_config:
        path = Path(args.replay_config)
        new_config = load_config_file(path)  # ConfigError: one line, exit 2
        version = version_of_bytes(path.read_bytes())
    classifier = Classifier(new_config, config_version=version)
    now = SystemClock().now()
    progress = Progress("replay")
    with store.session() as session:
        try:
            result = replay(session, classifier, _since(args.since, now), progress=progress)
        finally:
            progress.finish()
            session.rollback()  # replay never changes anything
    if args.json:
        print_json(
            {
                "replayed": result.replayed,
                "changed": [c.as_dict() for c in result.changes],
                "unreadable": result.unreadable,
            }
        )
    else:
        for line in format_changes(result):
            print(line)
    return 0


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


def register(sub: Any, add: AddCommand) -> None:
    p = add(
        "rules",
        cmd_rules,
        "check the rules against a folder of sample mails with expected outcomes",
        "escalation-gateway --config new.toml rules test tests/rule-suite",
    )
    rules = p.add_subparsers(dest="rules_command", required=True)
    test = rules.add_parser(
        "test",
        help="classify every NAME.eml and compare with NAME.expect.toml; exit 1 on a failure",
        description="Classify every NAME.eml in DIR (no side effects) and compare the outcome"
        " with NAME.expect.toml: decision, level, rules_fired, rules_not_fired, case.",
        epilog="example: escalation-gateway rules test tests/rule-suite --json",
    )
    test.add_argument("dir", metavar="DIR", help="folder of NAME.eml + NAME.expect.toml")
    test.add_argument(
        "--store", action="store_true", help="thread against the config's store (read only)"
    )
    test.add_argument("--json", action="store_true")
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
    p = add(
        "replay",
        cmd_replay,
        "re-decide stored mail under another config and list what would change",
        "escalation-gateway replay --since 7d --config new.toml",
    )
    p.add_argument("--since", default="7d", help="how far back, e.g. 12h, 7d, 2w (default 7d)")
    p.add_argument(
        "--config",
        dest="replay_config",
        metavar="NEW.toml",
        default=None,
        help="the config to try (default: the current one); mail comes from the current store",
    )
    p.add_argument("--json", action="store_true")
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


# Examples for the nested commands (the top-level ones get theirs where they are added).
EXAMPLES = {
    "cases list": "escalation-gateway cases list --state open --json",
    "cases show": "escalation-gateway cases show ESC-000042",
    "cases note": 'escalation-gateway cases note ESC-000042 "Fix deployed to staging"',
    "cases set-state": "escalation-gateway cases set-state ESC-000042 investigating",
    "quarantine list": "escalation-gateway quarantine list --json",
    "quarantine replay": "escalation-gateway quarantine replay 17 18  |  ... replay --all",
}


def add_examples(parser: argparse.ArgumentParser, root: str | None = None) -> None:
    """Give every nested command's --help an example, without touching each definition."""
    root = root or parser.prog
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for name, child in action.choices.items():
            path = child.prog.removeprefix(root).strip()
            example = EXAMPLES.get(path)
            if example and not child.epilog:
                child.epilog = f"example: {example}"
            if not child.description:
                child.description = next(
                    (c.help for c in action._choices_actions if c.dest == name), None
                )
            add_examples(child, root)
