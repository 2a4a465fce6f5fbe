"""A substring test that rules a regex out before the regex engine runs.

Most mail fires no phrase rule, and CPython's engine pays for saying so: a
case-insensitive alternation over 3 kB of text took 0.9 ms, measured, against tens of
microseconds for a few substring searches. Every match of a pattern contains at
least one of some set of literal strings (for `(?i)\\bsecurity (breach|incident)\\b`
that is "security "); when none of them is in the text, the pattern cannot match and
is not run. When any is, the regex decides as before, so the answer never changes.

The literals are read from the parsed pattern (`re._parser`, the standard library's
own parser). Anything this module does not understand makes it give up on that
pattern, and a pattern it gave up on is always run.
"""

from __future__ import annotations

import re
import re._constants as sre
import re._parser as sre_parse
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# Under re.IGNORECASE these match an ASCII letter although lower() does not give
# that letter (found by matching [a-z] case-insensitively against all of Unicode;
# the Kelvin sign lowercases to "k" already). Mapped before folding, so folded text
# holds every ASCII literal the engine would match.
_FOLD_TO_ASCII = {"\u0130": "i", "\u0131": "i", "\u017f": "s"}
_SCOPED_FLAGS = re.IGNORECASE | re.ASCII | re.LOCALE | re.UNICODE


def fold(text: str) -> str:
    """The text as the case-insensitive literals are compared with it."""
    for special, ascii_letter in _FOLD_TO_ASCII.items():
        if special in text:
            text = text.replace(special, ascii_letter)
    return text.lower()


@dataclass(frozen=True)
class LiteralScreen:
    """Literals of which every match contains one: `exact` as written, `folded` lowered."""

    exact: frozenset[str]
    folded: frozenset[str]

    def may_match(self, text: str, folded_text: str) -> bool:
        return any(s in folded_text for s in self.folded) or any(s in text for s in self.exact)

    @classmethod
    def of(cls, patterns: Iterable[re.Pattern[str]]) -> LiteralScreen | None:
        """One screen for several patterns (any may match), or None if one defeats it."""
        exact: set[str] = set()
        folded: set[str] = set()
        for pattern in patterns:
            literals = required_literals(pattern)
            if literals is None:
                return None
            if pattern.flags & re.IGNORECASE:
                if not all(s.isascii() for s in literals):
                    return None  # non-ASCII case folding is the engine's business
                folded.update(s.lower() for s in literals)
            else:
                exact.update(literals)
        return cls(frozenset(exact), frozenset(folded))


def required_literals(pattern: re.Pattern[str]) -> frozenset[str] | None:
    """Strings of which every match contains at least one, or None if unknown."""
    try:
        parsed = sre_parse.parse(pattern.pattern, pattern.flags)
    except Exception:
        return None  # the parser's internals moved: screening is only an optimisation
    return _sequence(list(parsed))


def _selectivity(literals: frozenset[str]) -> tuple[int, int]:
    # The rarest set is the one whose shortest string is longest; fewer is better.
    return min(len(s) for s in literals), -len(literals)


def _sequence(items: list[tuple[Any, Any]]) -> frozenset[str] | None:
    """The most selective required set among the parts of a sequence."""
    candidates: list[frozenset[str]] = []
    run: list[str] = []

    def end_run() -> None:
        if run:
            candidates.append(frozenset({"".join(run)}))
            run.clear()

    for op, argument in items:
        if op is sre.LITERAL:
            run.append(chr(argument))
            continue
        end_run()
        found = _item(op, argument)
        if found is not None:
            candidates.append(found)
    end_run()
    return max(candidates, key=_selectivity) if candidates else None


def _item(op: Any, argument: Any) -> frozenset[str] | None:
    """Required literals of one part, or None when it requires nothing known."""
    if op is sre.SUBPATTERN:
        _group, add_flags, del_flags, inner = argument
        if (add_flags | del_flags) & _SCOPED_FLAGS:
            # Case rules change inside; the screen keeps to the pattern's own, so it
            # takes its literals from the other parts.
            return None
        return _sequence(list(inner))
    if op is sre.BRANCH:
        _, branches = argument
        sets = [_sequence(list(branch)) for branch in branches]
        if any(s is None for s in sets):
            return None  # some branch requires nothing: the branch as a whole neither
        return frozenset().union(*(s for s in sets if s is not None))
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
        low, _high, inner = argument
        return _sequence(list(inner)) if low >= 1 else None
    if op is sre.ATOMIC_GROUP:
        return _sequence(list(argument))
    # Anchors, classes, any character, lookarounds, back references: no literal known.
    return None
