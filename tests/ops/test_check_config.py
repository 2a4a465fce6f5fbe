"""check-config and run refuse, in one line and before anything starts, a config that
would quarantine every escalation: templates that fail for a sample case, override
files that override nothing, unknown time zones, missing paths."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import pytest

from gateway.config import ConfigError
from gateway.ops.reload import load_snapshot
from gateway.ops.template_check import EXTRAS, render_samples, shipped_kinds
from gateway.outbound.render import Renderer
from tests.support.cli import run_gateway_text
from tests.support.smtp_sink import free_port

UNDEFINED = "Hello {{ greeting_name }},\n\nYour owner is {{ case.owner_fullname }}.\n"


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_gateway_text(*args, cwd=cwd, timeout=90)


def write_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "gateway.toml"
    maildir = f'maildir = "{tmp_path}/out"\n'
    # A body with its own [outbound] gets the maildir key there: TOML has one per table.
    outbound = "" if "[outbound]" in body else "[outbound]\n" + maildir
    body = body.replace("[outbound]\n", "[outbound]\n" + maildir)
    # Free ports, so a `run` that wrongly got past the checks could not hide behind
    # a port already in use.
    path.write_text(
        body
        + f'\n[store]\nurl = "sqlite:///{tmp_path}/gw.db"\n'
        + f"[smtp]\nport = {free_port()}\n[monitoring]\nport = {free_port()}\n"
        + outbound
    )
    return path


def templates(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "tpl"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


@dataclass(frozen=True)
class BadConfig:
    """A config line that must be refused, and the problem check-config names.

    In both, {tmp} stands for the test's folder and {folder} for the template_dir
    holding `overrides` (template file name -> text)."""

    body: str
    problem: str
    overrides: dict[str, str] = field(default_factory=dict)

    def write(self, tmp_path: Path) -> tuple[str, str]:
        folder = templates(tmp_path, self.overrides) if self.overrides else None
        places = {"tmp": tmp_path, "folder": folder}
        return self.body.format(**places), self.problem.format(**places)


IN_TEMPLATE_DIR = 'template_dir = "{folder}"'
CASES = {
    "undefined_variable": BadConfig(
        IN_TEMPLATE_DIR,
        "template_dir: {folder}/acknowledgement.txt.j2:3: undefined variable: case has no "
        "attribute 'owner_fullname' (rendering acknowledgement for a sample case)",
        {"acknowledgement.txt.j2": UNDEFINED},
    ),
    # Only a render finds it: the override of the shared footer breaks every mail.
    "undefined_in_partial": BadConfig(
        IN_TEMPLATE_DIR,
        "template_dir: {folder}/_footer.txt.j2:2: undefined variable: 'case_key' is undefined "
        "(rendering acknowledgement for a sample case)",
        {"_footer.txt.j2": "--\n{{ case_key }}\n"},
    ),
    "misspelt_timezone": BadConfig(
        'timezone = "Europe/Berln"',
        "timezone: unknown time zone 'Europe/Berln' (did you mean 'Europe/Berlin'?)",
    ),
    "calendar_timezone": BadConfig(
        '[calendars.business]\ntimezone = "America/New_Yrok"',
        "calendars.business.timezone: unknown time zone 'America/New_Yrok' "
        "(did you mean 'America/New_York'?)",
    ),
    "missing_template_dir": BadConfig(
        'template_dir = "{tmp}/templates"', "template_dir: {tmp}/templates does not exist"
    ),
    "override_matching_nothing": BadConfig(
        IN_TEMPLATE_DIR,
        "template_dir: {folder}/acknowledgment.txt.j2: matches no template the gateway uses "
        "(did you mean acknowledgement.txt.j2?); it would be ignored",
        {"acknowledgment.txt.j2": "Hello {{ greeting_name }}\n"},
    ),
    # A partial counts only if some template includes it; this one was misspelt.
    "partial_nobody_includes": BadConfig(
        IN_TEMPLATE_DIR,
        "template_dir: {folder}/_fotter.txt.j2: matches no template the gateway uses "
        "(did you mean _footer.txt.j2?); it would be ignored",
        {"_fotter.txt.j2": "--\n{{ case.key }}\n"},
    ),
    "sent_journal_under_nothing": BadConfig(
        '[outbound]\nsent_journal_dir = "{tmp}/run/gateway"',
        "outbound.sent_journal_dir: folder {tmp}/run does not exist",
    ),
    "missing_password_file": BadConfig(
        '[leads]\ntoken_secret_file = "{tmp}/secret"',
        "leads.token_secret_file: {tmp}/secret does not exist",
    ),
}


@pytest.mark.parametrize("command", ["check-config", "run"])
@pytest.mark.parametrize("bad", CASES.values(), ids=CASES.keys())
def test_config_that_would_fail_every_mail_is_one_line_exit_2(
    tmp_path: Path, bad: BadConfig, command: str
) -> None:
    body, problem = bad.write(tmp_path)
    path = write_config(tmp_path, body)
    result = run_cli("--config", str(path), command, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [f"config error: {path}: {problem}"]
    # Nothing started: the store was not even created.
    assert not (tmp_path / "gw.db").exists()


def test_overrides_that_render_pass(tmp_path: Path) -> None:
    folder = templates(
        tmp_path,
        {
            "acknowledgement.txt.j2": 'Hi {{ greeting_name }}\n{% include "_sig.txt.j2" %}\n',
            "acknowledgement.html.j2": "<p>Hi {{ greeting_name }}, {{ case.owner_name }}</p>\n",
            "_sig.txt.j2": "{{ case.owner_name or 'Support' }}\n",
            # Optional variables are fine once the template says what to do without them.
            "owner_reminder.txt.j2": "{{ case.nickname | default('') }}{{ case.key }}\n",
        },
    )
    path = write_config(tmp_path, f'template_dir = "{folder}"')
    result = run_cli("--config", str(path), "check-config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert " sample renders)" in result.stdout


def test_production_rendering_is_strict_too(tmp_path: Path) -> None:
    # What check-config finds is what the worker would hit: no variable renders as empty.
    folder = templates(tmp_path, {"acknowledgement.txt.j2": UNDEFINED})
    with pytest.raises(jinja2.UndefinedError, match="owner_fullname"):
        Renderer(str(folder)).render("acknowledgement", {"greeting_name": "x", "case": object()})


def test_hot_reload_rejects_the_same_configs(tmp_path: Path) -> None:
    body, problem = CASES["undefined_variable"].write(tmp_path)
    path = write_config(tmp_path, body)
    with pytest.raises(ConfigError) as caught:
        load_snapshot(path)
    assert str(caught.value) == f"{path}: {problem}"


def test_every_shipped_kind_has_sample_variables() -> None:
    assert set(EXTRAS) == shipped_kinds()
    from gateway.config import GatewayConfig

    # Every kind, for two sample cases, in each variant of its variables.
    assert render_samples(GatewayConfig()) == 2 * sum(len(v) for v in EXTRAS.values())
