"""Classification: from a parsed mail to a Decision, with no side effects.

The steps run in a fixed order (loop guard, threading, rules) and every step leaves
its reason on the Decision, so `explain` and the case log can say why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.orm import Session

from gateway.cases.accounts import AccountDirectory
from gateway.classify.loop_guard import LoopGuardSettings, auto_reply_block_reason
from gateway.classify.rules import Rule, RuleContext, RuleResult, build_rules
from gateway.classify.rules.phrase import PhraseScreen
from gateway.classify.threading import ThreadMatch, find_case, ticket_in_subject
from gateway.config import GatewayConfig
from gateway.leads.auth import LeadAuthorizer
from gateway.outbound.tokens import ReplyTokens, tokens_from_store
from parsers.escalation_template import EscalationTemplate, parse_escalation_template
from parsers.model import ParsedMail
from parsers.reply import extract_new_text

Action = Literal["open", "upgrade", "attach", "command", "ignore", "suppress"]


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    level: int | None
    results: tuple[RuleResult, ...]
    thread: ThreadMatch | None
    auto_reply_blocked: str | None  # why no automatic reply may go to the sender
    account: str | None
    template: EscalationTemplate | None
    new_text: str
    # Which config decided (see gateway/ops/reload.py), so a stored decision can be
    # traced to the exact rules that made it after a hot reload.
    config_version: str = ""

    @property
    def fired(self) -> tuple[RuleResult, ...]:
        return tuple(r for r in self.results if r.fired)

    def as_dict(self) -> dict[str, Any]:
        case = self.thread.case if self.thread else None
        return {
            "decision": self.action,
            "reason": self.reason,
            "level": self.level,
            "case_key": case.key if case else None,
            "threaded_by": self.thread.how if self.thread else None,
            "auto_reply_blocked": self.auto_reply_blocked,
            "account": self.account,
            "config_version": self.config_version,
            "fired": [r.as_dict() for r in self.fired],
            "rules": [r.as_dict() for r in self.results],
        }


@dataclass(frozen=True)
class Evaluation:
    """What the rules say of a mail on its own, before threading is known.

    It needs no store, so the worker computes it outside its write transaction
    (gateway/work/worker.py); `Classifier.decide` adds the thread and gives the Decision.
    """

    blocked: str | None
    new_text: str
    template: EscalationTemplate | None
    results: tuple[RuleResult, ...]
    level: int | None
    account: str | None


class Classifier:
    def __init__(
        self,
        config: GatewayConfig,
        rules: Sequence[Rule] | None = None,
        *,
        config_version: str = "",
    ) -> None:
        self.config = config
        self.config_version = config_version
        self._tokens: ReplyTokens | None = None
        self.rules = tuple(rules) if rules is not None else tuple(build_rules(config))
        self.phrase_screen = PhraseScreen(self.rules)
        self.directory = AccountDirectory.build(config.accounts)
        self.loop_settings = LoopGuardSettings(
            own_addresses=config.own_addresses,
            own_domains_for_message_ids=frozenset(
                {config.outbound.effective_message_id_domain.lower()}
            ),
        )

    def classify(
        self,
        session: Session | None,
        mail: ParsedMail,
        envelope_sender: str | None,
        rcpt_tos: Sequence[str] = (),
        evaluation: Evaluation | None = None,
    ) -> Decision:
        """`evaluation`, if given, is `evaluate(mail, envelope_sender)` done earlier."""
        if evaluation is None:
            evaluation = self.evaluate(mail, envelope_sender)
        thread = self.find_thread(session, mail, evaluation.template)
        command = False
        if thread is not None and session is not None:
            if self._tokens is None:
                self._tokens = tokens_from_store(session, self.config)
            authorizer = LeadAuthorizer(self.config, self._tokens)
            command = authorizer.is_command_attempt(thread.case, mail, rcpt_tos)
        return self.decide(evaluation, thread, command_attempt=command)

    def find_thread(
        self, session: Session | None, mail: ParsedMail, template: EscalationTemplate | None
    ) -> ThreadMatch | None:
        if session is None:
            return None
        ticket = (template.ticket if template else None) or ticket_in_subject(mail.subject)
        return find_case(session, mail, self.config.case_key_prefix, ticket)

    def classify_in_thread(
        self,
        mail: ParsedMail,
        envelope_sender: str | None,
        thread: ThreadMatch | None,
        *,
        command_attempt: bool = False,
    ) -> Decision:
        """Decide with threading already known; replay passes the case as it was then."""
        evaluation = self.evaluate(mail, envelope_sender)
        return self.decide(evaluation, thread, command_attempt=command_attempt)

    def evaluate(self, mail: ParsedMail, envelope_sender: str | None) -> Evaluation:
        """Loop guard and every rule; no store, no threading."""
        blocked = auto_reply_block_reason(mail, envelope_sender, self.loop_settings)
        new_text = extract_new_text(mail.text)
        template = parse_escalation_template(mail.subject, mail.text)
        ctx = RuleContext(
            self.directory,
            new_text,
            template,
            envelope_sender,
            phrase_free=self.phrase_screen.phrase_free(mail.subject, new_text),
        )
        results = tuple(rule.check(mail, ctx) for rule in self.rules)
        fired = [r for r in results if r.fired]
        level = max((r.level for r in fired if r.level is not None), default=None)
        account = self._account(mail, fired, template)
        return Evaluation(blocked, new_text, template, results, level, account)

    def decide(
        self, evaluation: Evaluation, thread: ThreadMatch | None, *, command_attempt: bool = False
    ) -> Decision:
        blocked, level = evaluation.blocked, evaluation.level

        def decide(action: Action, reason: str, level: int | None = level) -> Decision:
            return Decision(
                action,
                reason,
                level,
                evaluation.results,
                thread,
                blocked,
                evaluation.account,
                evaluation.template,
                evaluation.new_text,
                self.config_version,
            )

        signals = ", ".join(r.rule for r in evaluation.results if r.fired)
        if thread is not None:
            case = thread.case
            if blocked:
                # Automatic mail may join the record but never moves a case.
                return decide("attach", f"{thread.how}; automatic mail ({blocked})", case.level)
            if command_attempt:
                # A lead's reply (or a reply carrying a staff token) is read for
                # commands, never for escalation signals: its quoted text would repeat them.
                return decide(
                    "command", f"{thread.how}; staff reply, read for commands", case.level
                )
            if case.state == "closed" and level is not None:
                return decide("open", f"{thread.how} but it is closed; new escalation: {signals}")
            if level is not None and level > case.level:
                return decide("upgrade", f"{thread.how}; {signals} raise level to {level}")
            return decide("attach", f"{thread.how}; no stronger signal", case.level)
        if blocked:
            return decide("suppress", f"automatic mail ({blocked}); no case opened")
        if level is None:
            return decide("ignore", "no escalation rule fired")
        return decide("open", f"{signals} fired; highest level {level}")

    def _account(
        self, mail: ParsedMail, fired: list[RuleResult], template: EscalationTemplate | None
    ) -> str | None:
        """The customer's account: from a rule, the agent's template, or the sender."""
        for result in fired:
            if "account" in result.data:
                return str(result.data["account"])
        if template is not None:
            # Agents write the account's name in the template's Customer field.
            named = template.fields.get("customer", "").strip().lower()
            for configured in self.config.accounts:
                if named and configured.name.lower() == named:
                    return configured.name
        if mail.from_ is not None:
            by_domain = self.directory.for_address(mail.from_.email)
            if by_domain is not None:
                return by_domain.name
        return None
