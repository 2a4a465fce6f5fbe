"""`rules test`: a rule regression suite against sample mail."""

from __future__ import annotations

import argparse
from pathlib import Path

from gateway.classify.classifier import Classifier
from gateway.cli.common import AddCommand, UserError, open_store, print_json
from gateway.cli.progress import Progress
from gateway.config import GatewayConfig
from gateway.ops.rule_suite import SuiteError, format_report, run_suite


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


def register(add: AddCommand) -> None:
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
