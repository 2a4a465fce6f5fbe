"""`run` and `check-config`: the daemon, and the config check it does first."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import jinja2

from gateway.classify.classifier import Classifier
from gateway.cli.common import AddCommand, UserError, open_store
from gateway.clock import SystemClock
from gateway.config import EMBEDDED, GatewayConfig
from gateway.daemon import Daemon
from gateway.ops.reload import ConfigReloader, snapshot_of
from gateway.outbound.render import Renderer


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
    store = open_store(config)
    # SIGHUP or an edit of the file reloads it; no file (embedded defaults), no reload.
    reloader = ConfigReloader(Path(source), snapshot) if source != EMBEDDED else None
    daemon = Daemon(config, store, SystemClock(), shadow=args.shadow, reloader=reloader)
    daemon.run_forever()
    return daemon.exit_code


def register(add: AddCommand) -> None:
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
