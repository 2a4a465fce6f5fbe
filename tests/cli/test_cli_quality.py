"""Every command's --help shows an example; usage mistakes are one line with exit 2."""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
from pathlib import Path

from gateway.cli.main import build_parser
from gateway.cli.progress import Progress
from tests.support.cli import inherited_env, run_gateway_text


def commands(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found.append(child)
                found.extend(commands(child))
    return found


def test_every_command_help_has_an_example() -> None:
    parsers = commands(build_parser())
    names = {p.prog.removeprefix("escalation-gateway ") for p in parsers}
    assert {"rules test", "outbox list", "replay", "report", "quarantine replay"} <= names
    missing = [p.prog for p in parsers if "example: escalation-gateway" not in p.format_help()]
    assert missing == []


def test_usage_errors_are_one_line_with_exit_2(tmp_path: Path) -> None:
    for args in (["report", "--by", "moon"], ["no-such-command"], ["outbox", "list", "--x"]):
        result = run_gateway_text(*args, cwd=tmp_path)
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_only_on_a_terminal() -> None:
    piped = io.StringIO()
    progress = Progress("replay", piped)
    progress(1, 2)
    progress.finish()
    assert piped.getvalue() == ""
    tty = Terminal()
    progress = Progress("replay", tty)
    progress(1, 4)
    progress(4, 4)
    progress.finish()
    assert tty.getvalue() == "\rreplay: 1/4  25%\rreplay: 4/4 100%\n"


def test_output_closed_early_is_quiet(tmp_path: Path) -> None:
    # `cases list --json | head -c 1`, with more output than a pipe buffer holds, so the
    # command is still writing when the reader goes away.
    files = []
    for n in range(300):
        path = tmp_path / f"{n}.eml"
        headers = f"From: c{n}@acme.example\nTo: support@example.com\nSubject: URGENT {n}\n"
        path.write_bytes(f"{headers}\nHelp\n".encode())
        files.append(str(path))
    env = inherited_env()
    subprocess.run(
        [sys.executable, "-m", "gateway", "ingest", "--no-deliver", *files],
        cwd=tmp_path,
        capture_output=True,
        env=env,
        check=True,
    )
    listing = subprocess.Popen(
        [sys.executable, "-m", "gateway", "cases", "list", "--json"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert listing.stdout is not None and listing.stderr is not None
    listing.stdout.read(1)
    listing.stdout.close()
    stderr = listing.stderr.read().decode()
    assert listing.wait(timeout=60) == 1
    assert stderr == ""
