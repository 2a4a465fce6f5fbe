"""Config loading: defaults documented, errors name file, key and problem, exit code 2."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gateway.config import ConfigError, GatewayConfig, load_config, load_config_file
from tests.support.cli import BARE_ENV, run_gateway_text

ROOT = Path(__file__).resolve().parents[2]


def test_example_config_documents_exactly_the_defaults() -> None:
    assert load_config_file(ROOT / "config.example.toml") == GatewayConfig()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gw.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("toml", "key", "problem"),
    [
        ("[smtp]\nport = 99999\n", "smtp.port", "less than or equal to 65535"),
        ("[smtp]\nprot = 25\n", "smtp.prot", "Extra inputs are not permitted"),
        (
            '[[rules]]\nkind = "subject_pattern"\nname = "broken"\npattern = "(unclosed"\n',
            "rules[0 ('broken')].pattern",
            "invalid regular expression '(unclosed'",
        ),
        (
            '[[rules]]\nkind = "phrase"\nname = "bad-phrase"\nphrases = ["ok", "[a-"]\n',
            "rules[0 ('bad-phrase')].phrases[1]",
            "invalid regular expression",
        ),
        ('[outbound]\nretry_max = "soon"\n', "outbound.retry_max", "invalid duration 'soon'"),
        ('[[rules]]\nkind = "telepathy"\nname = "x"\n', "rules[0 ('x')]", "kind"),
        ("[store]\nurl = 5\n", "store.url", "valid string"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, toml: str, key: str, problem: str) -> None:
    path = write(tmp_path, toml)
    with pytest.raises(ConfigError) as error:
        load_config_file(path)
    assert error.value.source == str(path)
    assert error.value.key == key
    assert problem in error.value.problem


def test_levels_must_be_complete(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[levels]]\nnumber = 1\nname = "Only"\nfirst_response = "1h"\n'
        'status_interval = "1h"\nresolution = "1d"\n'
        'owners = [{name = "A", email = "a@x.example"}]\n',
    )
    with pytest.raises(ConfigError, match=r"levels must define numbers 1, 2, 3 and 4"):
        load_config_file(path)


def test_not_toml_is_reported_with_position(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"gw.toml: not valid TOML: .*line 1"):
        load_config_file(write(tmp_path, "[smtp\n"))


def test_config_is_found_by_option_then_environment_then_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ESCALATION_GATEWAY_CONFIG", raising=False)
    assert load_config(None)[1] == "<embedded defaults>"
    (tmp_path / "escalation-gateway.toml").write_text('timezone = "Europe/Berlin"\n')
    assert load_config(None)[0].timezone == "Europe/Berlin"
    other = write(tmp_path, 'timezone = "Asia/Tokyo"\n')
    monkeypatch.setenv("ESCALATION_GATEWAY_CONFIG", str(other))
    assert load_config(None)[0].timezone == "Asia/Tokyo"
    explicit = tmp_path / "explicit.toml"
    explicit.write_text('timezone = "America/Chicago"\n')
    assert load_config(str(explicit))[0].timezone == "America/Chicago"


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_gateway_text(*args, cwd=cwd, env=BARE_ENV)


def test_check_config_exits_2_with_one_clear_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[[rules]]\nkind = "subject_pattern"\nname = "urgent"\npattern = "(("\n')
    result = run_cli("--config", str(path), "check-config", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"config error: {path}: rules[0 ('urgent')].pattern: invalid regular expression '((': "
        "missing ), unterminated subpattern at position 1"
    ]


def test_run_with_bad_config_starts_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, "[smtp]\nport = -1\n")
    result = run_cli("--config", str(path), "run", cwd=tmp_path)
    assert result.returncode == 2
    assert "smtp.port" in result.stderr
    assert not (tmp_path / "escalation-gateway.db").exists()


def test_template_syntax_error_is_one_line_with_file_and_line(tmp_path: Path) -> None:
    overrides = tmp_path / "tpl"
    overrides.mkdir()
    (overrides / "acknowledgement.txt.j2").write_text("Hello\n{% if %}\n")
    path = write(tmp_path, f'template_dir = "{overrides}"\n')
    result = run_cli("--config", str(path), "check-config", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: template {overrides}/acknowledgement.txt.j2:2: ")
    assert "Traceback" not in result.stderr


def test_check_config_accepts_the_example(tmp_path: Path) -> None:
    result = run_cli("--config", str(ROOT / "config.example.toml"), "check-config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "OK (8 rules, 0 accounts, " in result.stdout
