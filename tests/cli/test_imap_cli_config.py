"""The [[imap]] config section and `escalation-gateway ingest --imap`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from gateway.config import ConfigError, parse_config
from gateway.config.imap import ImapMailboxConfig
from gateway.ingest.imap.connection import ImapFailure, connect
from store.db import Store
from tests.support.cli import BARE_ENV, run_gateway_text
from tests.support.dovecot import DovecotServer
from tests.support.imap_gateway import PASSWORD, USER, imap_entry, urgent
from tests.support.smtp_sink import SmtpSink

BASE = {"name": "support", "host": "imap.example.com", "username": "u", "password": "p"}


def _mailbox(**overrides: Any) -> dict[str, Any]:
    return {**BASE, **overrides}


def test_defaults_are_safe() -> None:
    [mailbox] = parse_config({"imap": [BASE]}, "<t>").imap
    assert (mailbox.security, mailbox.effective_port, mailbox.folder) == ("tls", 993, "INBOX")
    assert mailbox.mode == "auto" and mailbox.mark_seen and not mailbox.exit_on_auth_failure
    assert mailbox.idle_timeout.total_seconds() == 25 * 60
    assert mailbox.processed_folder is None and mailbox.quarantine_folder is None
    assert mailbox.source == "imap:support"


@pytest.mark.parametrize(
    ("overrides", "key", "problem"),
    [
        ({"idle_timeout": "29m"}, "imap[0 ('support')]", "under 29m"),
        ({"password_file": "/x"}, "imap[0 ('support')]", "exactly one of"),
        ({"password": ""}, "imap[0 ('support')]", "exactly one of"),
        ({"security": "ssl"}, "imap[0 ('support')].security", "'tls', 'starttls' or 'none'"),
        ({"mode": "push"}, "imap[0 ('support')].mode", "'auto', 'idle' or 'poll'"),
        ({"processed_folder": "INBOX"}, "imap[0 ('support')]", "must differ"),
        ({"reconnect_initial": "10m", "reconnect_max": "1m"}, "imap[0 ('support')]", "shorter"),
        ({"poll_intervall": "1m"}, "imap[0 ('support')].poll_intervall", "Extra inputs"),
    ],
)
def test_bad_values_name_the_key(overrides: dict[str, Any], key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"imap": [_mailbox(**overrides)]}, "<t>")
    assert caught.value.key == key
    assert problem in caught.value.problem


def test_names_must_be_unique() -> None:
    with pytest.raises(ConfigError, match="repeated: support"):
        parse_config({"imap": [BASE, {**BASE, "folder": "Other"}]}, "<t>")


def test_token_file_is_read_at_each_login(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    mailbox = ImapMailboxConfig.model_validate(
        {**BASE, "password": "", "oauth2_token_file": str(token)}
    )
    assert mailbox.secret() == "first"
    token.write_text("refreshed\n")
    assert mailbox.secret() == "refreshed"


def test_xoauth2_refused_is_an_auth_failure(dovecot_server: DovecotServer, tmp_path: Path) -> None:
    # The test server offers no XOAUTH2, so the attempt is refused like a stale token.
    token = tmp_path / "token"
    token.write_text("ya29.not-a-real-token\n")
    entry = imap_entry(dovecot_server, password="", oauth2_token_file=str(token))
    with pytest.raises(ImapFailure) as caught:
        connect(ImapMailboxConfig.model_validate(entry))
    assert caught.value.kind == "auth"
    assert "login refused" in str(caught.value)


def test_tls_against_a_plain_server_fails_cleanly(dovecot_server: DovecotServer) -> None:
    entry = imap_entry(dovecot_server, security="tls", timeout="2s")
    with pytest.raises(ImapFailure) as caught:
        connect(ImapMailboxConfig.model_validate(entry))
    assert caught.value.kind == "connection"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def _write_config(tmp_path: Path, store: Store, sink: SmtpSink, entry: dict[str, Any]) -> Path:
    lines = [
        "[store]",
        f"url = {_toml(store.url)}",
        "[outbound]",
        'mode = "smtp"',
        'host = "127.0.0.1"',
        f"port = {sink.port}",
        "[[imap]]",
        *(f"{key} = {_toml(value)}" for key, value in entry.items()),
    ]
    path = tmp_path / "gateway.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_gateway_text(*args, cwd=cwd, env=BARE_ENV)


def test_ingest_imap_takes_waiting_mail_once(
    tmp_path: Path, store: Store, smtp_sink: SmtpSink, dovecot_server: DovecotServer
) -> None:
    uid = dovecot_server.append(USER, PASSWORD, "INBOX", urgent())
    entry = imap_entry(dovecot_server, processed_folder="Processed")
    path = _write_config(tmp_path, store, smtp_sink, entry)

    result = _cli("--config", str(path), "ingest", "--imap", "support", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "imap:support: item 1 done open ESC-000001" in result.stdout
    assert dovecot_server.folder_uids(USER, PASSWORD, "INBOX") == []
    assert len(dovecot_server.folder_uids(USER, PASSWORD, "Processed")) == 1
    assert len(smtp_sink.wait_for(2)) == 2  # acknowledgement and owner notification
    assert uid is not None

    again = _cli("--config", str(path), "ingest", "--imap", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout == ""


def test_ingest_imap_bad_password_is_one_line(
    tmp_path: Path, store: Store, smtp_sink: SmtpSink, dovecot_server: DovecotServer
) -> None:
    path = _write_config(tmp_path, store, smtp_sink, imap_entry(dovecot_server, password="no"))
    result = _cli("--config", str(path), "ingest", "--imap", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    [line] = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert f"imap support (support@127.0.0.1:{dovecot_server.port} INBOX)" in line
    assert "login refused" in line

    unknown = _cli("--config", str(path), "ingest", "--imap", "nope", cwd=tmp_path)
    assert unknown.returncode == 2
    assert "no [[imap]] mailbox named 'nope'" in unknown.stderr
