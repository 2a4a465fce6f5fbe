"""Every mail template rendered against sample cases before anything starts.

A template that compiles can still fail on every mail: the renderer is strict
(jinja2.StrictUndefined), so a variable the mail is not given, such as
`{{ case.owner_fullname }}`, raises at render time and the worker quarantines the
mail. `check-config`, `run` and a hot reload therefore render each kind of mail with
the variables its call site passes (on top of `TimelineMail.context`), for a case
with every field filled and for a sparse one, with each flag that picks a branch.
Override files in `template_dir` must each replace or serve a template the gateway
uses: a misspelt name would otherwise be ignored without a word.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2
from jinja2 import meta

from gateway.cases.mail import TimelineMail
from gateway.classify.rules.base import RuleResult
from gateway.config import GatewayConfig
from gateway.outbound.compose import Recipient
from gateway.outbound.outbox import Outbox
from gateway.outbound.render import PACKAGED_TEMPLATES, Renderer
from store.models import Case

SAMPLE_NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
_WHEN = "11:00 UTC on Mon 02 Mar 2026"


class TemplateProblem(Exception):
    """A template that would fail in production; `str()` names the file and the problem."""


def sample_cases() -> tuple[Case, Case]:
    """A case with every field a template may show, and one with the optional ones empty."""
    hour = timedelta(hours=1)
    full = Case(
        key="ESC-000123",
        state="investigating",
        level=2,
        owner_name="Ada Owner",
        owner_email="ada.owner@example.com",
        account="Acme Corp",
        customer_name="Casey Customer",
        customer_email="casey@acme.example",
        customer_cc=[{"name": "Anna Manager", "email": "anna.am@acme.example"}],
        subject="Checkout fails for every customer",
        summary="Checkout answers 500 since the 09:00 deploy.",
        ticket="4711",
        fields={"issue_summary": "Checkout answers 500", "impact": "All shops"},
        opened_at=SAMPLE_NOW - 3 * hour,
        updated_at=SAMPLE_NOW,
        first_response_due=SAMPLE_NOW + hour,
        first_responded_at=SAMPLE_NOW - 2 * hour,
        next_status_due=SAMPLE_NOW + 4 * hour,
        resolution_due=SAMPLE_NOW + 24 * hour,
        eta=SAMPLE_NOW + 6 * hour,
        resolved_at=SAMPLE_NOW - hour,
        monitoring_until=SAMPLE_NOW + 48 * hour,
        last_status_at=SAMPLE_NOW - hour,
        root_message_id="<first@acme.example>",
    )
    sparse = Case(
        key="ESC-000124",
        state="open",
        level=1,
        owner_name="",
        owner_email="owner@example.com",
        account=None,
        customer_name="",
        # An agent's escalation may name no customer address at all.
        customer_email="",
        customer_cc=[],
        subject="Question",
        summary="",
        ticket=None,
        fields={},
        opened_at=SAMPLE_NOW,
        updated_at=SAMPLE_NOW,
    )
    return full, sparse


_SIGNAL = RuleResult(
    rule="urgent_subject",
    kind="subject_pattern",
    description="urgent words in the subject",
    fired=True,
    evidence="subject matched 'URGENT'",
    level=2,
).as_dict()
_LEVEL_CHANGE: dict[str, Any] = {
    "previous_level": 1,
    "previous_owner": Recipient("bo.before@example.com", "Bo Before"),
    "why": "the customer asked for a faster answer",
}

# What each kind of mail is given besides TimelineMail.context, as its call site passes
# it (gateway/act, cases/lifecycle.py, timeline/, leads/); each dict is one variant.
EXTRAS: dict[str, tuple[dict[str, Any], ...]] = {
    "acknowledgement": ({},),
    "agent_acknowledgement": ({},),
    "template_incomplete": ({"missing": ["Impact", "Steps to reproduce"]},),
    "upgrade_notice": ({"previous_level": 1},),
    "owner_notification": (
        {
            "summary": "Checkout answers 500",
            "fields": [("Impact", "All shops")],
            "signals": [_SIGNAL],
            "previous_level": 1,
        },
        {"summary": "(no text)", "fields": [], "signals": [_SIGNAL], "previous_level": None},
    ),
    "customer_reply_notice": (
        {"sender": "casey@acme.example", "text": "Still failing.", "effect": "it went on"},
        {"sender": "casey@acme.example", "text": "", "effect": ""},
    ),
    "closing": (
        {
            "reason": "confirmed by the customer",
            "confirmed_by_customer": True,
            "opened": _WHEN,
            "resolved": _WHEN,
            "notes": ["Rolled back the deploy."],
            "reopen_days": 7,
        },
        {
            "reason": "monitoring ended quietly",
            "confirmed_by_customer": False,
            "opened": _WHEN,
            "resolved": "",
            "notes": [],
            "reopen_days": 7,
        },
    ),
    "owner_handover": (
        {"why": "the customer wrote again", "reopened": True},
        {**_LEVEL_CHANGE, "breach": False, "reopened": False},
    ),
    "reopen_notice": ({"reason": "the problem is back"},),
    "level_change_notice": ({**_LEVEL_CHANGE, "breach": False}, {**_LEVEL_CHANGE, "breach": True}),
    "escalation_notice": ({**_LEVEL_CHANGE, "breach": False}, {**_LEVEL_CHANGE, "breach": True}),
    "owner_reminder": ({},),
    "breach_notice": ({"why": "nobody responded by " + _WHEN},),
    "resolution_breach": ({"why": "not resolved by " + _WHEN},),
    "status_update": (
        {
            "changes": ["The case moved to level 2."],
            "nothing_new": False,
            "last_update": _WHEN,
            "note": "A fix is being tested.",
            "catch_up": True,
            "eta": _WHEN,
        },
        {
            "changes": [],
            "nothing_new": True,
            "last_update": "",
            "note": "",
            "catch_up": False,
            "eta": "",
        },
    ),
    "owner_assigned": ({"by": "lee.lead@example.com"},),
    "owner_change_notice": ({},),
    "command_confirmation": (
        {
            "applied": ["level is now 3"],
            "rejected": [("level 9", "there is no level 9")],
            "notices": ["the ETA is outside business hours"],
            "help_text": "Commands: level N, owner EMAIL, eta WHEN ...",
            "eta": _WHEN,
        },
        {"applied": [], "rejected": [], "notices": [], "help_text": "", "eta": ""},
    ),
    "command_refused": (
        {"reason": "the reply token is not yours", "sender": "mallory@example.net"},
    ),
    "resolution_notice": (
        {"reason": "Rolled back.", "monitoring_until": _WHEN, "monitoring_text": "2 days"},
        {"reason": "", "monitoring_until": _WHEN, "monitoring_text": "2 days"},
    ),
}


def shipped_names() -> set[str]:
    return {p.name for p in PACKAGED_TEMPLATES.glob("*.j2")}


def shipped_kinds() -> set[str]:
    """Kinds of mail: every shipped text template that is not a partial (`_footer`)."""
    return {
        name.removesuffix(".txt.j2")
        for name in shipped_names()
        if name.endswith(".txt.j2") and not name.startswith("_")
    }


def _override_files(template_dir: Path) -> Iterator[str]:
    for folder, subfolders, files in os.walk(template_dir):
        subfolders[:] = sorted(
            d for d in subfolders if not d.startswith(".") and d != "__pycache__"
        )
        for name in sorted(files):
            if not name.startswith("."):  # editor swap files and the like
                yield Path(folder, name).relative_to(template_dir).as_posix()


def _referenced(sources: dict[str, str]) -> set[str]:
    """Templates named by any include, import or extends (with a literal name)."""
    environment = jinja2.Environment()
    found: set[str] = set()
    for source in sources.values():
        found.update(n for n in meta.find_referenced_templates(environment.parse(source)) if n)
    return found


def check_override_names(template_dir: str) -> int:
    """Raise TemplateProblem for a file in template_dir the gateway would never use."""
    folder = Path(template_dir)
    overrides = list(_override_files(folder))
    kinds = shipped_kinds()
    usable = shipped_names() | {f"{k}.txt.j2" for k in kinds} | {f"{k}.html.j2" for k in kinds}
    sources = {p.name: p.read_text(encoding="utf-8") for p in PACKAGED_TEMPLATES.glob("*.j2")}
    for name in overrides:
        if name.endswith(".j2"):
            sources[name] = (folder / name).read_text(encoding="utf-8", errors="replace")
    usable |= _referenced(sources)
    for name in overrides:
        if name not in usable:
            close = difflib.get_close_matches(name, sorted(usable), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise TemplateProblem(
                f"{folder / name}: matches no template the gateway uses{hint}; it would be ignored"
            )
    return len(overrides)


def _failing_template(tb: TracebackType | None) -> tuple[str, int] | None:
    """The innermost template frame: jinja2 maps its traceback onto template lines."""
    found = None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            found = (filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


def _problem(exc: Exception) -> str:
    if isinstance(exc, jinja2.UndefinedError):
        text = re.sub(r"'[\w.]*\bCase object'", "case", exc.message or str(exc))
        return f"undefined variable: {text}"
    return f"{type(exc).__name__}: {exc}"


def render_samples(config: GatewayConfig) -> int:
    """Render every kind of mail for each sample case and variant; returns how many."""
    renderer = Renderer(config.template_dir)
    mail = TimelineMail(config, Outbox(config, renderer))
    rendered = 0
    for kind in sorted(shipped_kinds() & set(EXTRAS)):
        for case in sample_cases():
            for extra in EXTRAS[kind]:
                context = mail.context(case, SAMPLE_NOW, **extra)
                try:
                    renderer.render(kind, context)
                except Exception as exc:  # whatever fails here fails for every such mail
                    where = _failing_template(exc.__traceback__)
                    place = f"{where[0]}:{where[1]}" if where else f"{kind} template"
                    raise TemplateProblem(
                        f"{place}: {_problem(exc)} (rendering {kind} for a sample case)"
                    ) from None
                rendered += 1
    return rendered
