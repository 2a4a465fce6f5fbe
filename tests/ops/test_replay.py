"""Replay: re-deciding stored mail under a changed config lists exactly what changes."""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

from gateway.classify.classifier import Classifier
from gateway.clock import FakeClock
from gateway.config import GatewayConfig
from gateway.config.rule_kinds.phrase import PhraseRule
from gateway.ingest.inbound import store_inbound
from gateway.ops.replay import replay
from gateway.work.worker import Worker
from store.db import Store
from tests.conftest import make_config
from tests.support.cli import run_gateway
from tests.support.mails import build_mail


def changed_rules(config: GatewayConfig) -> GatewayConfig:
    """The config under test: urgent-subject to level 3, asks-for-manager off, a GDPR rule."""
    rules: list[Any] = []
    for rule in config.rules:
        if rule.name == "urgent-subject":
            rule = rule.model_copy(update={"level": 3})
        if rule.name == "asks-for-manager":
            rule = rule.model_copy(update={"enabled": False})
        rules.append(rule)
    rules.append(
        PhraseRule(
            kind="phrase",
            name="gdpr-request",
            level=3,
            phrases=(r"(?i)\b(GDPR|data subject (access )?request)\b",),
        )
    )
    return config.model_copy(update={"rules": tuple(rules)})


MAILS: list[dict[str, Any]] = [
    dict(subject="URGENT: checkout down", message_id="<m1@acme.example>"),
    dict(
        subject="Five days", body="I want to speak to a manager.\n", message_id="<m2@acme.example>"
    ),
    dict(subject="GDPR data subject request", body="Please send my data.\n"),
    dict(subject="How do I add a user?", body="Where is the invite button?\n"),
    # Threads to the level-4 case of m1: outage (level 3) is no upgrade, old or new.
    dict(
        subject="Re: URGENT: checkout down",
        body="Also nobody can log in.\n",
        in_reply_to="<m1@acme.example>",
    ),
    dict(
        subject="Automatic reply: URGENT: checkout down",
        body="I am out of office.\n",
        headers={"Auto-Submitted": "auto-replied"},
    ),
    # Upgrades m2's case from 2 to 4; replay must compare with level 2 (as it was then),
    # not with today's level 4, or it would wrongly report "attach".
    dict(
        subject="Re: Five days",
        body="Our lawyer is reading this.\n",
        in_reply_to="<m2@acme.example>",
    ),
]


def test_replay_lists_exactly_the_changed_decisions(store: Store, clock: FakeClock) -> None:
    config = make_config(store)
    worker = Worker(config, store, clock)
    for fields in MAILS:
        store_inbound(store, build_mail(**fields), source="smtp", clock=clock, mail_from=None)
        worker.drain()
        clock.advance(timedelta(minutes=5))
    new = changed_rules(config)

    with store.session() as session:
        same = replay(session, Classifier(config), clock.now() - timedelta(days=1))
        result = replay(session, Classifier(new), clock.now() - timedelta(days=1))
        session.rollback()

    assert same.replayed == 7 and same.changes == []  # the same config changes nothing
    assert result.replayed == 7
    assert [(c.item_id, c.differences) for c in result.changes] == [
        (1, ["level 4 -> 3"]),
        (2, ["decision open -> ignore", "level 2 -> -", "rules -asks-for-manager",
             "reply would NOT go out"]),
        (3, ["decision ignore -> open", "level - -> 3", "rules +gdpr-request",
             "reply would go out"]),
        # Still suppressed, but the level its signals carry changed with urgent-subject.
        (6, ["level 4 -> 3"]),
    ]  # fmt: skip
    assert result.changes[0].before.decision == result.changes[0].after.decision == "open"
    # Nothing was written: the stored decisions are still the old ones.
    with store.session() as session:
        again = replay(session, Classifier(config), clock.now() - timedelta(days=1))
    assert again.changes == []


def test_replay_command_with_new_config(tmp_path: Path) -> None:
    current = tmp_path / "escalation-gateway.toml"
    current.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path}/gw.db"\n[outbound]\nmaildir = "{tmp_path}/out"\n'
    )
    new = tmp_path / "new.toml"
    new.write_text(
        current.read_text() + '[[rules]]\nkind = "phrase"\nname = "gdpr-request"\nlevel = 3\n'
        "phrases = ['(?i)\\bGDPR\\b']\n"
    )

    def cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return run_gateway(*args, cwd=tmp_path, stdin=stdin)

    for subject in ("URGENT: site down", "GDPR question", "Hello"):
        assert cli("ingest", "-", stdin=build_mail(subject=subject)).returncode == 0
    result = cli("replay", "--since", "1d", "--config", str(new), "--json")
    assert result.returncode == 0, result.stderr.decode()
    data = json.loads(result.stdout)
    assert data["replayed"] == 3
    # The new file has only the GDPR rule, so the default rules are gone.
    assert [(c["subject"], c["changes"]) for c in data["changed"]] == [
        ("URGENT: site down", ["decision open -> ignore", "level 4 -> -",
                               "rules -urgent-subject", "reply would NOT go out"]),
        ("GDPR question", ["decision ignore -> open", "level - -> 3", "rules +gdpr-request",
                           "reply would go out"]),
    ]  # fmt: skip
    text = cli("replay", "--since", "1d", "--config", str(new)).stdout.decode()
    assert "3 mail(s) re-decided, 2 would change" in text
    assert "    decision ignore -> open" in text
    bad = cli("replay", "--since", "soon")
    assert bad.returncode == 2 and bad.stderr.decode().count("\n") == 1
