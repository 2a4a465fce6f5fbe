"""Every path the config names, checked before anything starts.

parse_config checks types and values, not the disk: a missing `template_dir` or an
unreadable password file would otherwise show up only when the first mail needs it.
Relative paths are taken from the working directory, as the daemon itself does.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.engine import make_url

from gateway.config import GatewayConfig

# (config key, path): files the daemon reads while it runs.
_Named = tuple[str, str]


def _files_read(config: GatewayConfig) -> Iterator[_Named]:
    yield "outbound.password_file", config.outbound.password_file
    yield "leads.token_secret_file", config.leads.token_secret_file
    yield "smtp.tls_cert_file", config.smtp.tls_cert_file
    yield "smtp.tls_key_file", config.smtp.tls_key_file
    for index, mailbox in enumerate(config.imap):
        where = f"imap[{index} ({mailbox.name!r})]"
        yield f"{where}.password_file", mailbox.password_file
        yield f"{where}.oauth2_token_file", mailbox.oauth2_token_file
        yield f"{where}.ca_file", mailbox.ca_file


def _sqlite_folder(url: str) -> str | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return os.path.dirname(os.path.abspath(parsed.database or ""))


def path_problems(config: GatewayConfig) -> list[tuple[str, str]]:
    """(key, problem) for every configured path that is not what it must be."""
    problems: list[tuple[str, str]] = []
    if config.template_dir:
        folder = Path(config.template_dir)
        if not folder.exists():
            problems.append(("template_dir", f"{folder} does not exist"))
        elif not folder.is_dir():
            problems.append(("template_dir", f"{folder} is not a directory"))
    journal = config.outbound.sent_journal_dir
    if journal and os.path.exists(journal) and not os.path.isdir(journal):
        problems.append(("outbound.sent_journal_dir", f"{journal} is not a directory"))
    elif journal and not os.path.isdir(os.path.dirname(os.path.abspath(journal))):
        # Its own folder is created at start, as a private one; never its parents.
        problems.append(
            ("outbound.sent_journal_dir", f"folder {os.path.dirname(journal)} does not exist")
        )
    database_folder = _sqlite_folder(config.store.url)
    if database_folder is not None and not os.path.isdir(database_folder):
        # SQLite creates the file, never its folder.
        problems.append(("store.url", f"folder {database_folder} does not exist"))
    for key, name in _files_read(config):
        if not name:
            continue
        path = Path(name)
        if not path.exists():
            problems.append((key, f"{path} does not exist"))
        elif not path.is_file():
            problems.append((key, f"{path} is not a file"))
        elif not os.access(path, os.R_OK):
            problems.append((key, f"{path} is not readable"))
    return problems
