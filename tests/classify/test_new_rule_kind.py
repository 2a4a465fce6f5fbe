"""A new rule kind is two new files, as the README's "How to add a rule" says, and nothing else.

The test copies the code into a scratch folder, adds the kind's config model and its
rule class there (and touches no other file), and runs `explain` on a mail with a
config that uses the new kind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CONFIG_MODEL = """
from __future__ import annotations

from typing import Literal

from gateway.config.rule_kinds.base import RuleKindConfig


class SenderDomainRule(RuleKindConfig):
    kind: Literal["sender_domain"]
    domains: tuple[str, ...]
"""

RULE = """
from __future__ import annotations

from dataclasses import dataclass

from gateway.classify.rules.base import RuleContext, RuleResult
from gateway.config.rule_kinds.sender_domain import SenderDomainRule
from parsers.model import ParsedMail


@dataclass(frozen=True)
class SenderDomain:
    name: str
    description: str
    level: int
    domains: frozenset[str]
    kind: str = "sender_domain"

    @classmethod
    def from_config(cls, rule: SenderDomainRule) -> SenderDomain:
        return cls(rule.name, rule.description, rule.level, frozenset(rule.domains))

    def check(self, mail: ParsedMail, ctx: RuleContext) -> RuleResult:
        domain = mail.from_.email.rpartition("@")[2] if mail.from_ else ""
        fired = domain in self.domains
        return RuleResult(
            self.name,
            self.kind,
            self.description,
            fired=fired,
            level=self.level if fired else None,
            evidence=f"sender domain {domain!r} {'is' if fired else 'is not'} listed",
        )
"""

CONFIG = """
[[rules]]
kind = "sender_domain"
name = "vip-domain"
description = "Mail from a VIP customer's domain."
level = 3
domains = ["vip.example"]
"""


def test_a_rule_kind_added_as_two_modules_works(tmp_path: Path) -> None:
    for package in ("gateway", "parsers", "store", "templates"):
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    (tmp_path / "gateway/config/rule_kinds/sender_domain.py").write_text(CONFIG_MODEL)
    (tmp_path / "gateway/classify/rules/sender_domain.py").write_text(RULE)
    (tmp_path / "gateway.toml").write_text(CONFIG)
    (tmp_path / "mail.eml").write_bytes(
        b"From: Dana <dana@vip.example>\nTo: support@example.com\nSubject: Invoice question\n"
        b"Message-ID: <q1@vip.example>\n\nCould you look at our last invoice?\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    command = ["--config", "gateway.toml", "explain", "mail.eml", "--json"]
    result = subprocess.run(
        [sys.executable, "-m", "gateway", *command],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    decision = json.loads(result.stdout)
    fired = [r for r in decision["rules"] if r["fired"]]
    assert [r["rule"] for r in fired] == ["vip-domain"]
    assert fired[0]["kind"] == "sender_domain"
    assert decision["decision"] == "open" and decision["level"] == 3


def test_a_config_model_without_its_rule_class_is_named(tmp_path: Path) -> None:
    for package in ("gateway", "parsers", "store", "templates"):
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    (tmp_path / "gateway/config/rule_kinds/sender_domain.py").write_text(CONFIG_MODEL)
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "check-config"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "sender_domain" in result.stderr
