"""Phrase rules scan the text once through a joined pattern and still say what matched."""

from __future__ import annotations

import re

import pytest

from gateway.cases.accounts import AccountDirectory
from gateway.classify.classifier import Classifier
from gateway.classify.rules.base import RuleContext
from gateway.classify.rules.phrase import Phrases, PhraseScreen, any_of
from gateway.config import GatewayConfig
from gateway.config.rule_kinds.phrase import PhraseRule
from parsers.mail import parse_mail
from tests.support.mails import build_mail

DEFAULT_PHRASES = [rule for rule in GatewayConfig().rules if isinstance(rule, PhraseRule)]
TEXTS = [
    "",
    "The export page fails with a timeout again. " * 60,
    "We had a SECURITY BREACH last night",
    "security incident\nand our systems are down",
    "I want to speak to your manager now",
    "our lawyer will call; also press inquiry pending",
    "Nobody can log in since 9:00",
    "escalate this please",
    "hacked? no, just slow",
    "data was corrupted, we lost all our data",
    "outages are common",  # \b keeps "outage" from matching inside a longer word
]


@pytest.mark.parametrize("rule", DEFAULT_PHRASES, ids=lambda r: r.name)
def test_the_joined_pattern_matches_exactly_when_one_phrase_does(rule: PhraseRule) -> None:
    patterns = tuple(re.compile(p) for p in rule.phrases)
    joined = any_of(patterns)
    assert joined is not None
    for text in TEXTS:
        assert (joined.search(text) is not None) == any(p.search(text) for p in patterns), text


@pytest.mark.parametrize(
    "phrases",
    [
        [r"(\w+) \1", "plain"],  # a numbered back-reference
        [r"(?P<word>\w+) (?P=word)", "plain"],  # a named one
        [r"(?x) out age  # spaced", "plain"],  # verbose: the comment would eat the rest
        [r"(a)?(?(1)b|c)", "plain"],  # a conditional on a group number
    ],
)
def test_patterns_that_cannot_be_joined_safely_are_scanned_one_by_one(
    phrases: list[str],
) -> None:
    assert any_of(tuple(re.compile(p) for p in phrases)) is None


def test_flags_stay_with_their_own_phrase() -> None:
    joined = any_of((re.compile("(?i)urgent"), re.compile("CASE")))
    assert joined is not None
    assert joined.search("this is URGENT")
    assert joined.search("a CASE")
    assert not joined.search("a case")


def test_the_evidence_still_names_the_first_phrase_of_the_rule_that_matched() -> None:
    rule = Phrases.from_config(
        PhraseRule(
            kind="phrase",
            name="outage",
            level=3,
            phrases=(r"(?i)\bdown\b", r"(?i)\boutage\b"),
        )
    )
    assert rule.combined is not None
    mail = parse_mail(build_mail(subject="Outage: checkout is down"))
    context = RuleContext(AccountDirectory.build(()), mail.text, None, None)
    result = rule.check(mail, context)
    assert result.fired and result.level == 3
    assert result.evidence.startswith("subject says 'down'")
    quiet = parse_mail(build_mail(subject="Question", body="How do I export?"))
    assert not rule.check(
        quiet, RuleContext(AccountDirectory.build(()), quiet.text, None, None)
    ).fired


def test_the_screen_over_all_rules_spares_scans_only_where_nothing_can_match() -> None:
    rules = [Phrases.from_config(rule) for rule in DEFAULT_PHRASES]
    screen = PhraseScreen(rules)
    assert screen.combined is not None and screen.combined.pattern.startswith("(?i)")
    every_pattern = [p for rule in rules for p in rule.patterns]
    for text in TEXTS:
        free = screen.phrase_free("Question", text)
        assert "subject" in free
        assert ("body" in free) == (not any(p.search(text) for p in every_pattern)), text


def test_a_screened_classification_decides_as_an_unscreened_one() -> None:
    classifier = Classifier(GatewayConfig())
    for body in TEXTS:
        mail = parse_mail(build_mail(subject="Export question", body=body or "Hello"))
        screened = classifier.classify_in_thread(mail, "alice@acme.example", None)
        classifier.phrase_screen = PhraseScreen(())
        classifier.phrase_screen.active = True  # no screen: every rule scans for itself
        plain = classifier.classify_in_thread(mail, "alice@acme.example", None)
        classifier.phrase_screen = PhraseScreen(classifier.rules)
        assert screened.as_dict() == plain.as_dict(), body
