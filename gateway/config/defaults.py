"""The embedded defaults for levels and rules: a working setup with no config file."""

from __future__ import annotations

from datetime import timedelta

from gateway.config.rule_kinds import RuleConfig
from gateway.config.rule_kinds.account_manager import AccountManagerRule
from gateway.config.rule_kinds.header import HeaderRule
from gateway.config.rule_kinds.phrase import PhraseRule
from gateway.config.rule_kinds.subject_pattern import SubjectPatternRule
from gateway.config.rule_kinds.template import TemplateRule
from gateway.config.sections import LevelConfig, Person


def _person(name: str, email: str) -> Person:
    return Person(name=name, email=email)


def default_levels() -> tuple[LevelConfig, ...]:
    return (
        LevelConfig(
            number=1,
            name="Senior support agent",
            first_response=timedelta(hours=4),
            status_interval=timedelta(days=1),
            resolution=timedelta(days=3),
            calendar="business",
            owners=(_person("Senior Agent", "senior@example.com"),),
        ),
        LevelConfig(
            number=2,
            name="Team lead",
            first_response=timedelta(hours=1),
            status_interval=timedelta(hours=8),
            resolution=timedelta(days=2),
            calendar="business",
            owners=(_person("Team Lead", "lead@example.com"),),
            managers=(_person("Support Manager", "support-manager@example.com"),),
            assignment="account_lead",
        ),
        LevelConfig(
            number=3,
            name="Technical team",
            first_response=timedelta(hours=1),
            status_interval=timedelta(hours=4),
            resolution=timedelta(days=1),
            owners=(_person("On-call Engineer", "oncall@example.com"),),
            managers=(_person("Engineering Manager", "eng-manager@example.com"),),
        ),
        LevelConfig(
            number=4,
            name="Executive team",
            first_response=timedelta(minutes=30),
            status_interval=timedelta(hours=2),
            resolution=timedelta(hours=12),
            owners=(_person("Head of Support", "head-of-support@example.com"),),
            managers=(_person("Chief Operating Officer", "coo@example.com"),),
        ),
    )


def default_rules() -> tuple[RuleConfig, ...]:
    return (*_signal_rules(), *_phrase_rules())


def _signal_rules() -> tuple[RuleConfig, ...]:
    """The product's escalation signals: the account manager copied, URGENT, the
    agents' template and the header trusted systems set."""
    return (
        AccountManagerRule(
            kind="account_manager",
            name="account-manager-copied",
            description="A customer copied their account manager on the thread.",
            level=2,
        ),
        SubjectPatternRule(
            kind="subject_pattern",
            name="urgent-subject",
            description="URGENT in the subject reaches the executive team.",
            pattern=r"\bURGENT\b",
            level=4,
        ),
        TemplateRule(
            kind="template",
            name="agent-escalation-template",
            description="An agent used the escalation template.",
            level=2,
        ),
        HeaderRule(
            kind="header",
            name="escalation-level-header",
            description="A trusted system set X-Escalation-Level.",
            header="X-Escalation-Level",
            pattern=r"^\s*[1-4]\s*$",
            level_from_value=True,
            trusted_senders=("example.com",),
        ),
    )


def _phrase_rules() -> tuple[RuleConfig, ...]:
    """Words in the mail that call for a higher level whoever sends them."""
    return (
        PhraseRule(
            kind="phrase",
            name="security-or-data-loss",
            description="Security breach or data loss reported.",
            level=3,
            phrases=(
                r"(?i)\bsecurity (breach|incident)\b",
                r"(?i)\b(data loss|lost (all )?(our |my )?data|data (is |was )?corrupt(ed|ion))\b",
                r"(?i)\b(hacked|compromised account)\b",
            ),
        ),
        PhraseRule(
            kind="phrase",
            name="outage",
            description="A system-wide outage reported.",
            level=3,
            phrases=(
                r"(?i)\b(outage|system(s)? (is |are )?down|service (is )?down)\b",
                r"(?i)\bnobody can (log ?in|access)\b",
            ),
        ),
        PhraseRule(
            kind="phrase",
            name="legal-or-media",
            description="Legal threat or media attention.",
            level=4,
            phrases=(
                r"(?i)\b(lawyer|attorney|legal action|lawsuit|sue you)\b",
                r"(?i)\b(press|journalist|media) (inquiry|enquiry|coverage)\b",
            ),
        ),
        PhraseRule(
            kind="phrase",
            name="asks-for-manager",
            description="The customer asks for a manager or supervisor.",
            level=2,
            phrases=(
                r"(?i)\b(speak|talk) (to|with) (a |your )?(manager|supervisor)\b",
                r"(?i)\bescalate (this|it)\b",
            ),
        ),
    )
