"""The literal screen may only ever say "cannot match" where the regex finds nothing."""

from __future__ import annotations

import functools
import re

import pytest

from gateway.classify.rules.literal_screen import LiteralScreen, fold, required_literals
from gateway.config import GatewayConfig
from gateway.config.rule_kinds.phrase import PhraseRule
from parsers.mail import parse_mail
from tests.classify.test_phrase_rule import TEXTS
from tests.parsers.test_corpus_parsing import CORPUS, corpus_messages

DEFAULT_PATTERNS = [
    re.compile(phrase)
    for rule in GatewayConfig().rules
    if isinstance(rule, PhraseRule)
    for phrase in rule.phrases
]
# Shapes an admin might write, beyond the shipped phrases.
EXTRA_PATTERNS = [
    re.compile(p)
    for p in (
        r"(?i)log ?in",
        r"(?i)(?:ab|ac)+d",
        r"Case[- ]?Sensitive",
        r"(?i)\b(?:refund|chargeback)s?\b",
        r"(?i)x(?-i:ABC)y",
        r"(?i)k(?=elvin)",
        r"(?is)start.*end",
        r"(?i)straße",
    )
]
# Characters re.IGNORECASE matches to ASCII letters although lower() does not.
TRICKY_TEXTS = [
    "\u017fecurity breach reported",  # long s
    "LOG\u0130N fails",  # dotted capital I
    "lo\u0131n? no: log\u0131n",  # dotless i
    "\u212aelvin",  # Kelvin sign
    "SECURITY INCIDENT",
    "Nobody Can Access the portal",
    "case sensitive vs Case-Sensitive",
    "ACABD and abababd",
    "START ... END",
    "STRASSE or STRAẞE",
    "Refunds, please",
    "xABCy",
]


def test_literals_are_read_from_the_pattern() -> None:
    assert required_literals(re.compile(r"(?i)\bsecurity (breach|incident)\b")) == frozenset(
        {"security "}
    )
    assert required_literals(re.compile(r"foo|bar")) == frozenset({"foo", "bar"})
    assert required_literals(re.compile(r"(?i)log ?in")) == frozenset({"log"})
    assert required_literals(re.compile(r"a+b")) == frozenset({"a"})
    # Nothing literal is required: no screen, the regex always runs.
    assert required_literals(re.compile(r"\d+")) is None
    assert required_literals(re.compile(r"(foo)?bar|\w+")) is None
    assert LiteralScreen.of([re.compile("foo"), re.compile(r"\d+")]) is None


def test_case_rules_inside_a_group_are_left_to_the_regex() -> None:
    # Only the parts under the pattern's own case rules give literals.
    assert required_literals(re.compile(r"(?i)x(?-i:ABCDEF)y")) == frozenset({"x"})
    screen = LiteralScreen.of([re.compile(r"(?i)x(?-i:ABC)y")])
    assert screen is not None and screen.may_match("XABCY", fold("XABCY"))


@functools.cache
def _texts() -> list[str]:
    texts = [*TEXTS, *TRICKY_TEXTS]
    if CORPUS.is_dir():
        for _, raw in corpus_messages():
            mail = parse_mail(raw)
            texts += [mail.subject, mail.text]
    return texts


@pytest.mark.parametrize(
    "pattern", DEFAULT_PATTERNS + EXTRA_PATTERNS, ids=lambda p: p.pattern.replace(" ", "_")
)
def test_the_screen_never_rules_out_a_text_the_regex_matches(pattern: re.Pattern[str]) -> None:
    screen = LiteralScreen.of([pattern])
    if pattern.pattern.endswith("straße"):
        assert screen is None  # non-ASCII case folding stays with the engine
        return
    assert screen is not None
    matched = ruled_out = 0
    for text in _texts():
        allowed = screen.may_match(text, fold(text))
        if pattern.search(text):
            matched += 1
            assert allowed, f"{pattern.pattern!r} matches {text[:80]!r} but was ruled out"
        elif not allowed:
            ruled_out += 1
    assert matched > 0, "every pattern here matches some text, or the test proves little"
    assert ruled_out > 0, "and the screen spares the regex somewhere"


def test_the_tricky_characters_fold_to_what_the_engine_matches() -> None:
    assert fold("\u017fecurity") == "security"
    assert fold("LOG\u0130N") == "login"
    assert fold("\u212aelvin") == "kelvin"
