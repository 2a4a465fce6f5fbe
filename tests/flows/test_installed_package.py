"""The package as an outsider gets it: `pip install .` (not editable), run from elsewhere.

Templates, migrations and the console script must come from the installed copy, so
the test installs into a scratch folder and checks that the source tree is not what
runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")


def test_installed_package_runs_from_its_own_files(tmp_path: Path) -> None:
    # Built from a copy of what a checkout holds, so no build/ left in the tree leaks in.
    source = tmp_path / "source"
    for name in ("pyproject.toml", "README.md"):
        source.mkdir(exist_ok=True)
        shutil.copy(ROOT / name, source / name)
    for package in ("gateway", "parsers", "store", "templates"):
        shutil.copytree(ROOT / package, source / package, ignore=IGNORED)
    target = tmp_path / "site"
    install = ["install", "--quiet", "--no-deps", "--target", str(target), str(source)]
    subprocess.run(
        [sys.executable, "-m", "pip", *install],
        check=True,
        capture_output=True,
        timeout=300,
    )
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}

    def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [str(target / "bin" / "escalation-gateway"), *args],
            cwd=work,
            env=env,
            input=stdin,
            capture_output=True,
            timeout=120,
        )

    where = subprocess.run(
        [sys.executable, "-c", "import gateway, templates, store; print(gateway.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.strip().startswith(str(target))
    checked = run("check-config")
    assert checked.returncode == 0, checked.stderr
    mail = b"From: alice@acme.example\nTo: support@example.com\nSubject: URGENT: down\n\nHelp\n"
    ingested = run("ingest", "-", stdin=mail)
    assert ingested.returncode == 0, ingested.stderr
    listed = run("cases", "list")
    assert b"ESC-000001" in listed.stdout
    assert len(list((work / "outgoing-mail" / "new").iterdir())) == 2
