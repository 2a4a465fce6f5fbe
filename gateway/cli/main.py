"""Command line: `escalation-gateway [--config PATH] COMMAND`.

Each command group lives in its own module with a `register(add)` that declares its
arguments; this module only holds the global options and the error handling.
Expected failures (bad config, unknown case, unreadable file, store unreachable) are
one clear line on stderr and exit code 2; stack traces are for bugs only.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from gateway.cli.pipe import EX_TEMPFAIL, pipe_invocation, run_pipe

# Only the lean pipe path (cli/pipe.py) is imported up front: a mail server's pipe
# transport starts `ingest` once per mail, and the command groups below pull in the
# whole gateway (SQLAlchemy, Alembic, aiosmtpd, prometheus, imapclient, matplotlib).


def __getattr__(name: str) -> Any:
    """`load_config`, imported on first use rather than with this module."""
    if name == "load_config":
        from gateway.config import load_config

        return load_config
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def command_groups() -> tuple[ModuleType, ...]:
    """The command modules, in the order `--help` lists them."""
    from gateway.cli import (
        backup,
        cases,
        explain,
        ingest,
        outbox,
        purge,
        quarantine,
        replay,
        report,
        rules,
        run,
    )

    return (run, ingest, explain, cases, quarantine, outbox, rules, replay, report, backup, purge)


def build_parser() -> argparse.ArgumentParser:
    from gateway.cli.common import OneLineErrorParser
    from gateway.cli.examples import add_examples

    parser = OneLineErrorParser(
        prog="escalation-gateway",
        description="Email-driven escalation handling for a support mailbox.",
        epilog="Config: --config, else $ESCALATION_GATEWAY_CONFIG, else ./escalation-gateway.toml,"
        " else embedded defaults.",
    )
    parser.add_argument("--config", metavar="PATH", help="TOML config file")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--log-format", choices=("text", "json"), default=None, help="overrides [logging] format"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[..., int], help_text: str, example: str) -> Any:
        p = sub.add_parser(
            name, help=help_text, description=help_text, epilog=f"example: {example}"
        )
        p.set_defaults(handler=handler)
        return p

    for group in command_groups():
        group.register(add)
    add_examples(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    pipe = pipe_invocation(arguments)
    if pipe is not None:
        try:
            outcome = run_pipe(*pipe)
        except Exception as exc:  # a mail server bounces on anything but 0 and 75
            print(
                f"error: {type(exc).__name__}: {exc}; the mail server will retry", file=sys.stderr
            )
            return EX_TEMPFAIL
        if isinstance(outcome, int):
            return outcome
        # No daemon took the mail: process it here, with the whole gateway.
        from gateway.cli.ingest import process_here

        return process_here(outcome)
    return _run_command(arguments)


def _run_command(arguments: list[str]) -> int:
    from sqlalchemy.exc import OperationalError

    from gateway.cli.common import EXIT_USAGE, UserError
    from gateway.config import ConfigError, GatewayConfig
    from gateway.log_format import TEXT_FORMAT, use_format

    parser = build_parser()
    args = parser.parse_args(arguments)
    # Migrations and aiosmtpd's per-connection chatter are noise at INFO; our own
    # lines already say what happened to each mail.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format=TEXT_FORMAT,
        stream=sys.stderr,
    )
    try:
        # Looked up on the module, where a test may have replaced it (see __getattr__).
        config, source = globals().get("load_config", __getattr__("load_config"))(args.config)
        use_format(args.log_format or config.logging.format)
        handler: Callable[[argparse.Namespace, GatewayConfig, str], int] = args.handler
        return handler(args, config, source)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OperationalError as exc:
        print(f"error: store unavailable: {exc.orig}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`... --json | head`): nothing is wrong with the command.
        # Point stdout at /dev/null so the interpreter's final flush cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
