"""The agents' escalation template: the subject form plus labelled fields."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.classify.rules.base import RuleContext, RuleResult, fired, not_fired
from gateway.config.rule_kinds.template import TemplateRule
from parsers.escalation_template import FIELD_LABELS
from parsers.model import ParsedMail


@dataclass(frozen=True)
class EscalationTemplateRule:
    name: str
    description: str
    level: int
    priority_levels: dict[str, int]
    required_fields: tuple[str, ...]
    kind: str = "template"

    @classmethod
    def from_config(cls, rule: TemplateRule) -> EscalationTemplateRule:
        priorities = {k.strip().lower(): v for k, v in rule.priority_levels.items()}
        return cls(rule.name, rule.description, rule.level, priorities, rule.required_fields)

    def check(self, mail: ParsedMail, ctx: RuleContext) -> RuleResult:
        template = ctx.template
        if template is None:
            return not_fired(self, "subject is not 'ESCALATION - <brief> - Ticket #<n>'")
        missing = template.missing(self.required_fields)
        priority = template.fields.get("priority", "").strip()
        level = self.priority_levels.get(priority.split()[0].lower() if priority else "")
        evidence = f"template for ticket #{template.ticket or '?'}"
        if level is None:
            level = self.level
            evidence += f", priority {priority or 'missing'!r} not mapped, level {level}"
        else:
            evidence += f", priority {priority!r} -> level {level}"
        if missing:
            evidence += ", missing " + ", ".join(FIELD_LABELS.get(f, f) for f in missing)
        return fired(
            self,
            level,
            evidence,
            {"missing": missing, "fields": dict(template.fields), "ticket": template.ticket},
        )
