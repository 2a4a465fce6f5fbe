"""`rules test`: the shipped suite passes on the example config; a wrong expectation fails."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.classify.classifier import Classifier
from gateway.clock import FakeClock
from gateway.ingest.inbound import store_inbound
from gateway.ops.rule_suite import run_suite
from gateway.work.worker import Worker
from store.db import Store
from tests.conftest import make_config
from tests.support.mails import build_mail

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "tests" / "rule-suite"


def example_config_with_accounts(tmp_path: Path) -> Path:
    """config.example.toml with its documented (commented-out) Acme account switched on."""
    lines = []
    for line in (ROOT / "config.example.toml").read_text(encoding="utf-8").splitlines():
        for key in ("[[accounts]]", "name = ", "domains = ", "account_managers = ", "lead = "):
            if line.startswith(f"# {key}"):
                line = line[2:]
        lines.append(line)
    path = tmp_path / "suite.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def rules_test(config: Path, suite: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "--config",
            str(config),
            "rules",
            "test",
            str(suite),
            *list(extra),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=config.parent,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return example_config_with_accounts(tmp_path)


def test_shipped_suite_passes_on_example_config(config: Path) -> None:
    result = rules_test(config, SUITE)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith(("PASS", "FAIL"))]
    assert len(rows) == 12
    assert all(row.startswith("PASS") for row in rows)
    # Every default rule is exercised by at least one mail.
    for rule in (
        "account-manager-copied",
        "urgent-subject",
        "agent-escalation-template",
        "escalation-level-header",
        "security-or-data-loss",
        "outage",
        "legal-or-media",
        "asks-for-manager",
    ):
        assert f"evidence {rule}:" in result.stdout
    assert "12 of 12 mails as expected" in result.stdout
    assert result.stderr == ""  # no progress noise when stderr is not a terminal


def test_wrong_expectation_fails_with_exit_1_and_shows_why(config: Path, tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    shutil.copytree(SUITE, suite)
    (suite / "07-outage.expect.toml").write_text(
        'decision = "open"\nlevel = 4\nrules_fired = ["outage", "urgent-subject"]\n'
    )
    result = rules_test(config, suite)
    assert result.returncode == 1, result.stdout + result.stderr
    [row] = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert "07-outage" in row
    assert "!! expected level 4, got 3" in result.stdout
    assert "!! rule urgent-subject should fire but did not: subject 'Cannot log in'" in (
        result.stdout
    )
    assert "11 of 12 mails as expected, 1 not" in result.stdout


def test_broken_suite_is_a_usage_error(config: Path, tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    shutil.copytree(SUITE, suite)
    (suite / "02-urgent-subject.expect.toml").write_text('decision = "open"\nrules_fired = ["x"]\n')
    result = rules_test(config, suite)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "no rule named 'x' in the config" in result.stderr
    (suite / "02-urgent-subject.expect.toml").unlink()
    result = rules_test(config, suite)
    assert result.returncode == 2
    assert "02-urgent-subject.eml: no 02-urgent-subject.expect.toml beside it" in result.stderr


def test_case_expectation_threads_against_the_store(
    store: Store, clock: FakeClock, tmp_path: Path
) -> None:
    config = make_config(store)
    store_inbound(
        store,
        build_mail(subject="URGENT: checkout down", message_id="<root@acme.example>"),
        source="smtp",
        clock=clock,
        mail_from=None,
    )
    Worker(config, store, clock).drain()
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "reply.eml").write_bytes(
        build_mail(subject="Re: checkout", body="Any news?\n", in_reply_to="<root@acme.example>")
    )
    (suite / "reply.expect.toml").write_text('decision = "attach"\ncase = "ESC-000001"\n')
    with store.session() as session:
        threaded = run_suite(suite, Classifier(config), session)
    assert [(r.decision, r.problems) for r in threaded.results] == [("attach", ())]
    alone = run_suite(suite, Classifier(config), None)
    assert alone.results[0].problems == (
        "expected decision attach, got ignore (no escalation rule fired)",
        "expected case ESC-000001: threading needs --store",
    )
