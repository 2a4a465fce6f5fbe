"""The command line, run as a real subprocess against a real store."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run_gateway, send_once_listening, start_run
from tests.support.mails import build_mail
from tests.support.smtp_sink import free_port
from tests.support.waiting import wait_until

ACCOUNTS = """
[[accounts]]
name = "Acme Corp"
domains = ["acme.example"]
account_managers = [{ name = "Anna Manager", email = "anna.am@example.com" }]
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "escalation-gateway.toml").write_text(
        f'[store]\nurl = "sqlite:///{tmp_path}/gw.db"\n'
        f'[outbound]\nmaildir = "{tmp_path}/out"\n'
        f"[smtp]\nport = {free_port()}\n"
        # Not the default 9125: another gateway on this machine may hold it.
        f"[monitoring]\nport = {free_port()}\n" + ACCOUNTS
    )
    return tmp_path


def cli(
    workdir: Path, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return run_gateway(*args, cwd=workdir, stdin=stdin)


def as_json(result: subprocess.CompletedProcess[bytes]) -> Any:
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)


def test_explain_shows_every_rule_and_changes_nothing(workdir: Path) -> None:
    mail = workdir / "m.eml"
    mail.write_bytes(build_mail(cc="anna.am@example.com", subject="Our data was corrupted"))
    explained = as_json(cli(workdir, "explain", str(mail), "--json"))
    assert isinstance(explained, dict)
    assert explained["decision"] == "open"
    assert explained["level"] == 3
    fired = {r["rule"]: r["evidence"] for r in explained["fired"]}
    assert set(fired) == {"account-manager-copied", "security-or-data-loss"}
    assert "anna.am@example.com, account manager of Acme Corp" in fired["account-manager-copied"]
    assert len(explained["rules"]) == 8
    assert as_json(cli(workdir, "cases", "list", "--json")) == []
    text = cli(workdir, "explain", str(mail)).stdout.decode()
    assert "[FIRED] L3 security-or-data-loss" in text
    assert "[  -  ]    urgent-subject" in text


def test_ingest_from_stdin_then_cases_show(workdir: Path) -> None:
    raw = build_mail(subject="URGENT: invoices missing", message_id="<one@acme.example>")
    result = cli(workdir, "ingest", "-", stdin=raw)
    assert result.returncode == 0, result.stderr.decode()
    assert b"open ESC-000001" in result.stdout
    [listed] = as_json(cli(workdir, "cases", "list", "--json"))
    assert listed["level"] == 4
    shown = as_json(cli(workdir, "cases", "show", "ESC-000001", "--json"))
    assert isinstance(shown, dict)
    assert shown["deadlines"]["first_response_due"]
    assert [e["kind"] for e in shown["events"]] == ["opened"]
    assert shown["mail_in"][0]["message_id"] == "one@acme.example"
    assert sorted(m["kind"] for m in shown["mail_out"]) == ["acknowledgement", "owner_notification"]
    assert {m["state"] for m in shown["mail_out"]} == {"sent"}
    assert len(list((workdir / "out" / "new").iterdir())) == 2
    missing = cli(workdir, "cases", "show", "ESC-999999")
    assert (missing.returncode, missing.stderr) == (2, b"error: no case ESC-999999\n")


def test_quarantine_keeps_failed_mail_and_replays_it(workdir: Path) -> None:
    # An admin's template override with a typo makes processing fail at render time.
    overrides = workdir / "my-templates"
    overrides.mkdir()
    (overrides / "acknowledgement.txt.j2").write_text("Hello {{ customer_nmae }}\n")
    config = workdir / "escalation-gateway.toml"
    config.write_text(f'template_dir = "{overrides}"\n' + config.read_text())

    raw = build_mail(subject="URGENT: please help")
    result = cli(workdir, "ingest", "-", stdin=raw)
    assert result.returncode == 0
    assert b"quarantined" in result.stdout
    assert b"Traceback" not in result.stdout
    [item] = as_json(cli(workdir, "quarantine", "list", "--json"))
    assert "customer_nmae" in item["error"]
    assert as_json(cli(workdir, "cases", "list", "--json")) == []  # rolled back whole
    assert not (workdir / "out").exists()

    (overrides / "acknowledgement.txt.j2").write_text(
        "Hello {{ greeting_name }}, case {{ case.key }}\n"
    )
    replayed = cli(workdir, "quarantine", "replay", str(item["id"]))
    assert replayed.returncode == 0, replayed.stderr.decode()
    assert b"done open" in replayed.stdout
    assert as_json(cli(workdir, "quarantine", "list", "--json")) == []
    assert len(as_json(cli(workdir, "cases", "list", "--json"))) == 1


def test_unparseable_input_is_quarantined_not_answered(workdir: Path) -> None:
    result = cli(workdir, "ingest", "-", stdin=b"")
    assert b"quarantined" in result.stdout
    [item] = as_json(cli(workdir, "quarantine", "list", "--json"))
    assert item["error"].startswith("unparseable")
    assert not (workdir / "out").exists()


def test_run_accepts_mail_and_stops_cleanly_on_sigterm(workdir: Path) -> None:
    config = (workdir / "escalation-gateway.toml").read_text()
    port = int(config.split("port = ")[1].split()[0])
    daemon = start_run(workdir)
    try:
        send_once_listening(port, build_mail(subject="URGENT: daemon test"))
        wait_until(
            lambda: (
                (workdir / "out" / "new").is_dir()
                and len(list((workdir / "out" / "new").iterdir())) == 2
            ),
            what="acknowledgement and owner notification",
        )
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=30)
    assert daemon.returncode == 0
    log = stderr.decode()
    assert "decision=open level=4 case=ESC-000001" in log
    assert "gateway stopped" in log
    assert "Traceback" not in log
