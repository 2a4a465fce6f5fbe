"""`replay`: re-decide stored mail under another config; list what would change."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gateway.classify.classifier import Classifier
from gateway.cli.common import AddCommand, UserError, open_store, print_json
from gateway.cli.progress import Progress
from gateway.clock import SystemClock
from gateway.config import GatewayConfig, load_config_file
from gateway.config.version import version_of_bytes
from gateway.ops.replay import format_changes, replay
from gateway.timefmt import parse_duration


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


def register(add: AddCommand) -> None:
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
