"""check-config and run refuse, in one line and before anything starts, a config that
would quarantine every escalation: templates that fail for a sample case, override
files that override nothing, unknown time zones, missing paths."""

from __future__ import annotations

import subprocess
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
    # Free ports, so a `run` that wrongly got past the checks could not hide behind
    # a port already in use.
    path.write_text(
        body
        + f'\n[store]\nurl = "sqlite:///{tmp_path}/gw.db"\n'
        + f"[smtp]\nport = {free_port()}\n[monitoring]\nport = {free_port()}\n"
        + f'[outbound]\nmaildir = "{tmp_path}/out"\n'
    )
    return path


def templates(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "tpl"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def template_case(tmp_path: Path, name: str, text: str, problem: str) -> tuple[str, str]:
    """A template_dir holding one override; `problem` is what follows its path."""
    folder = templates(tmp_path, {name: text})
    return f'template_dir = "{folder}"', f"template_dir: {folder}/{name}{problem}"


def case_undefined_variable(tmp_path: Path) -> tuple[str, str]:
    return template_case(
        tmp_path,
        "acknowledgement.txt.j2",
        UNDEFINED,
        ":3: undefined variable: case has no "
        "attribute 'owner_fullname' (rendering acknowledgement for a sample case)",
    )


def case_undefined_in_partial(tmp_path: Path) -> tuple[str, str]:
    # Only a render finds it: the override of the shared footer breaks every mail.
    return template_case(
        tmp_path,
        "_footer.txt.j2",
        "--\n{{ case_key }}\n",
        ":2: undefined variable: 'case_key' is undefined "
        "(rendering acknowledgement for a sample case)",
    )


def case_misspelt_timezone(tmp_path: Path) -> tuple[str, str]:
    return (
        'timezone = "Europe/Berln"',
        "timezone: unknown time zone 'Europe/Berln' (did you mean 'Europe/Berlin'?)",
    )


def case_calendar_timezone(tmp_path: Path) -> tuple[str, str]:
    return (
        '[calendars.business]\ntimezone = "America/New_Yrok"',
        "calendars.business.timezone: unknown time zone 'America/New_Yrok' "
        "(did you mean 'America/New_York'?)",
    )


def case_missing_template_dir(tmp_path: Path) -> tuple[str, str]:
    return (
        f'template_dir = "{tmp_path}/templates"',
        f"template_dir: {tmp_path}/templates does not exist",
    )


def case_override_matching_nothing(tmp_path: Path) -> tuple[str, str]:
    return template_case(
        tmp_path,
        "acknowledgment.txt.j2",
        "Hello {{ greeting_name }}\n",
        ": matches no template the gateway uses "
        "(did you mean acknowledgement.txt.j2?); it would be ignored",
    )


def case_partial_nobody_includes(tmp_path: Path) -> tuple[str, str]:
    # A partial counts only if some template includes it; this one was misspelt.
    return template_case(
        tmp_path,
        "_fotter.txt.j2",
        "--\n{{ case.key }}\n",
        ": matches no template the gateway uses "
        "(did you mean _footer.txt.j2?); it would be ignored",
    )


def case_missing_password_file(tmp_path: Path) -> tuple[str, str]:
    return (
        f'[leads]\ntoken_secret_file = "{tmp_path}/secret"',
        f"leads.token_secret_file: {tmp_path}/secret does not exist",
    )


CASES = [
    case_undefined_variable,
    case_undefined_in_partial,
    case_misspelt_timezone,
    case_calendar_timezone,
    case_missing_template_dir,
    case_override_matching_nothing,
    case_partial_nobody_includes,
    case_missing_password_file,
]


@pytest.mark.parametrize("command", ["check-config", "run"])
@pytest.mark.parametrize("make_case", CASES, ids=lambda f: f.__name__.removeprefix("case_"))
def test_config_that_would_fail_every_mail_is_one_line_exit_2(
    tmp_path: Path, make_case: object, command: str
) -> None:
    assert callable(make_case)
    body, problem = make_case(tmp_path)
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
    body, problem = case_undefined_variable(tmp_path)
    path = write_config(tmp_path, body)
    with pytest.raises(ConfigError) as caught:
        load_snapshot(path)
    assert str(caught.value) == f"{path}: {problem}"


def test_every_shipped_kind_has_sample_variables() -> None:
    assert set(EXTRAS) == shipped_kinds()
    from gateway.config import GatewayConfig

    # Every kind, for two sample cases, in each variant of its variables.
    assert render_samples(GatewayConfig()) == 2 * sum(len(v) for v in EXTRAS.values())
