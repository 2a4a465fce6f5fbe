"""`run` and `check-config`: the daemon, and the config check it does first.

Both check the same things before anything starts: the config file, every path it
names, every template (compiled, and rendered against sample cases), every override
file's name and every rule. `run` then takes the SQLite store's single-daemon lock
and binds its ports; any of these failing is one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import jinja2

from gateway.cli.common import AddCommand, UserError, open_store
from gateway.clock import SystemClock
from gateway.config import EMBEDDED, GatewayConfig
from gateway.daemon import Daemon
from gateway.ops.daemon_lock import single_daemon
from gateway.ops.reload import ConfigReloader, Validated, check_paths, snapshot_of, validate
from gateway.ops.startup import StartupError
from gateway.outbound.render import Renderer


def _checked(config: GatewayConfig, source: str) -> Validated:
    # A missing template_dir first: the loader would quietly skip it.
    check_paths(config, source)
    try:
        Renderer(config.template_dir).check()
    except jinja2.TemplateSyntaxError as exc:
        raise UserError(f"template {exc.filename}:{exc.lineno}: {exc.message}") from None
    return validate(config, source)


def cmd_check_config(args: argparse.Namespace, config: GatewayConfig, source: str) -> int:
    checked = _checked(config, source)
    print(
        f"{source}: OK ({checked.rules} rules, {len(config.accounts)} accounts, "
        f"{checked.templates} templates, {checked.renders} sample renders)"
    )
    return 0


def cmd_run(args: argparse.Namespace, config: GatewayConfig, source: str) -> int:
    _checked(config, source)
    snapshot = snapshot_of(config, source)
    try:
        with single_daemon(config.store.url):
            logging.getLogger("gateway").info("config: %s (version %s)", source, snapshot.version)
            store = open_store(config)
            try:
                # SIGHUP or an edit of the file reloads it; no file (embedded defaults), no reload.
                reloader = ConfigReloader(Path(source), snapshot) if source != EMBEDDED else None
                daemon = Daemon(config, store, SystemClock(), shadow=args.shadow, reloader=reloader)
                daemon.run_forever()
            finally:
                store.dispose()
    except StartupError as exc:
        raise UserError(str(exc)) from None
    return daemon.exit_code


def register(add: AddCommand) -> None:
    add(
        "check-config",
        cmd_check_config,
        "validate the config, its paths and templates, and exit",
        "escalation-gateway --config prod.toml check-config",
    )
    p = add(
        "run",
        cmd_run,
        "run the daemon: SMTP listener, worker and outbox sender",
        "escalation-gateway run",
    )
    p.add_argument("--shadow", action="store_true", help="decide and record, but send nothing")
