"""Helpers shared by the command modules: the one-line user error and store opening."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from sqlalchemy.exc import OperationalError

from gateway.config import GatewayConfig
from store.db import Store

EXIT_USAGE = 2

# add(name, handler, help, example) -> the command's argparse parser; see cli/main.py.
AddCommand = Callable[[str, Callable[..., int], str, str], Any]


class UserError(Exception):
    """An expected failure, shown to the user as one line."""


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=str, ensure_ascii=False)
    sys.stdout.write("\n")


def open_store(config: GatewayConfig) -> Store:
    store = Store(config.store.url)
    try:
        store.migrate()
    except OperationalError as exc:
        raise UserError(f"store {config.store.url}: cannot open: {exc.orig}") from None
    return store


class OneLineErrorParser(argparse.ArgumentParser):
    """Usage mistakes get one line and exit 2, like every other expected failure."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {self.prog}: {message} (see --help)\n")
