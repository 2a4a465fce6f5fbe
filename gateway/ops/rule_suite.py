"""Rule regression suites: sample mails with the outcome each one must get.

A suite is a folder of ``NAME.eml`` files, each with a ``NAME.expect.toml`` beside it.
Running it only classifies (as ``explain`` does), so an admin can check a rule change
against the mails that matter before it goes live, and keep that check in CI.

Expectation keys (all optional except ``decision``)::

    decision = "open"            # open, ignore, suppress, attach or upgrade
    level = 3                    # 0 means "no level"
    rules_fired = ["outage"]     # each must fire (others may fire too)
    rules_not_fired = ["urgent-subject"]
    case = "ESC-000012"          # threads to this case; needs a store (--store)
    mail_from = "agent@example.com"   # the envelope sender, when it matters
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from gateway.classify.classifier import Classifier, Decision
from parsers.mail import parse_mail
from parsers.model import UnparseableMail

DECISIONS = ("open", "ignore", "suppress", "attach", "upgrade")
_KEYS = {"decision", "level", "rules_fired", "rules_not_fired", "case", "mail_from"}


class SuiteError(Exception):
    """The suite itself is unusable (missing sidecar, bad key): a usage error."""


@dataclass(frozen=True)
class Expectation:
    decision: str
    level: int | None = None
    level_given: bool = False
    rules_fired: tuple[str, ...] = ()
    rules_not_fired: tuple[str, ...] = ()
    case: str | None = None
    mail_from: str | None = None


@dataclass(frozen=True)
class MailResult:
    name: str
    decision: str
    level: int | None
    fired: tuple[tuple[str, str], ...]  # (rule, evidence)
    problems: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.problems


@dataclass
class SuiteReport:
    results: list[MailResult] = field(default_factory=list)

    @property
    def failed(self) -> list[MailResult]:
        return [r for r in self.results if not r.passed]


def _strings(value: Any, key: str, where: Path) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SuiteError(f"{where}: {key}: must be a list of rule names")
    return tuple(value)


def load_expectation(path: Path, rule_names: frozenset[str]) -> Expectation:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SuiteError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise SuiteError(f"{path}: unknown key {unknown[0]!r}; keys: {', '.join(sorted(_KEYS))}")
    decision = data.get("decision")
    if decision not in DECISIONS:
        raise SuiteError(f"{path}: decision: must be one of {', '.join(DECISIONS)}")
    level = data.get("level")
    if level is not None and (not isinstance(level, int) or not 0 <= level <= 4):
        raise SuiteError(f"{path}: level: must be 0 (none) or 1-4")
    fired = _strings(data.get("rules_fired", []), "rules_fired", path)
    not_fired = _strings(data.get("rules_not_fired", []), "rules_not_fired", path)
    # A typo in a rule name would make "must not fire" pass forever; refuse it.
    for name in (*fired, *not_fired):
        if name not in rule_names:
            raise SuiteError(f"{path}: no rule named {name!r} in the config")
    case = data.get("case")
    mail_from = data.get("mail_from")
    return Expectation(
        decision=str(decision),
        level=(level or None) if level is not None else None,
        level_given=level is not None,
        rules_fired=fired,
        rules_not_fired=not_fired,
        case=str(case).upper() if case is not None else None,
        mail_from=str(mail_from) if mail_from is not None else None,
    )


def check(name: str, decision: Decision, expected: Expectation, with_store: bool) -> MailResult:
    results = {r.rule: r for r in decision.results}
    problems: list[str] = []
    if decision.action != expected.decision:
        problems.append(
            f"expected decision {expected.decision}, got {decision.action} ({decision.reason})"
        )
    if expected.level_given and decision.level != expected.level:
        problems.append(
            f"expected level {expected.level or 'none'}, got {decision.level or 'none'}"
        )
    for rule in expected.rules_fired:
        if not results[rule].fired:
            problems.append(f"rule {rule} should fire but did not: {results[rule].evidence}")
    for rule in expected.rules_not_fired:
        if results[rule].fired:
            problems.append(f"rule {rule} should not fire but did: {results[rule].evidence}")
    if expected.case is not None:
        got = decision.thread.case.key if decision.thread else None
        if not with_store:
            problems.append(f"expected case {expected.case}: threading needs --store")
        elif got != expected.case:
            problems.append(f"expected case {expected.case}, got {got or 'no case'}")
    return MailResult(
        name,
        decision.action,
        decision.level,
        tuple((r.rule, r.evidence) for r in decision.fired),
        tuple(problems),
    )


def suite_mails(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise SuiteError(f"{folder}: not a directory")
    mails = sorted(folder.glob("*.eml"))
    if not mails:
        raise SuiteError(f"{folder}: no .eml files")
    for mail in mails:
        if not mail.with_suffix(".expect.toml").exists():
            raise SuiteError(f"{mail}: no {mail.stem}.expect.toml beside it")
    return mails


def run_suite(
    folder: Path,
    classifier: Classifier,
    session: Session | None,
    progress: Callable[[int, int], None] | None = None,
) -> SuiteReport:
    mails = suite_mails(folder)
    rule_names = frozenset(rule.name for rule in classifier.rules)
    # Read every expectation first: a broken sidecar is a usage error, not a failure.
    expectations = [load_expectation(m.with_suffix(".expect.toml"), rule_names) for m in mails]
    report = SuiteReport()
    for done, (path, expected) in enumerate(zip(mails, expectations, strict=True), 1):
        try:
            mail = parse_mail(path.read_bytes())
        except UnparseableMail as exc:
            report.results.append(
                MailResult(path.stem, "-", None, (), (f"cannot be parsed: {exc}",))
            )
            continue
        decision = classifier.classify(session, mail, expected.mail_from)
        report.results.append(check(path.stem, decision, expected, session is not None))
        if progress is not None:
            progress(done, len(mails))
    return report


def format_report(report: SuiteReport) -> str:
    width = max([len("MAIL"), *(len(r.name) for r in report.results)])
    lines = [f"{'RESULT':<6}  {'MAIL':<{width}}  {'DECISION':<8}  LVL  RULES FIRED"]
    for r in report.results:
        fired = ", ".join(rule for rule, _ in r.fired) or "-"
        level = str(r.level) if r.level is not None else "-"
        lines.append(
            f"{'PASS' if r.passed else 'FAIL':<6}  {r.name:<{width}}  {r.decision:<8}  "
            f"{level:>3}  {fired}"
        )
        for rule, evidence in r.fired:
            lines.append(f"{'':<6}  {'':<{width}}    evidence {rule}: {evidence}")
        for problem in r.problems:
            lines.append(f"{'':<6}  {'':<{width}}    !! {problem}")
    total, failed = len(report.results), len(report.failed)
    lines.append(f"{total - failed} of {total} mails as expected, {failed} not")
    return "\n".join(lines)
