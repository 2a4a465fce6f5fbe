"""`report` on a seeded history: every number checked by hand (see tests/support/report_data)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from gateway.config import GatewayConfig
from gateway.ops.reports import build_report, collect, format_table
from store.db import Store
from tests.support.report_data import at, seed

ROOT = Path(__file__).resolve().parents[2]
H, M = 3600.0, 60.0


def rows(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["group"]: row for row in report["rows"]}


def test_report_by_level_is_exact(store: Store) -> None:
    seed(store)
    with store.session() as session:
        facts, inbound = collect(session, GatewayConfig(), at(2, 0), at(16, 0))
    report = build_report(facts, inbound, "level")
    assert inbound == 60
    by = rows(report)
    assert list(by) == ["level 1", "level 2", "level 3", "level 4", "all"]
    total = by["all"]
    assert total["cases"] == 6 and total["per_1000_inbound"] == 100.0
    # First response, business: A 30m, B 1h30m (Fri 16:30-17:00 + Mon 09:00-10:00),
    # C 20m, D 1h30m, E 10m; F never -> sorted 10m 20m 30m 90m 90m.
    assert (total["first_response_business_p50_s"], total["first_response_business_p90_s"]) == (
        30 * M,
        90 * M,
    )
    # Wall: B took 65h30m over the weekend.
    assert (total["first_response_wall_p50_s"], total["first_response_wall_p90_s"]) == (
        30 * M,
        65.5 * H,
    )
    # Resolution, business: A 6h, B 22h30m (Fri 30m + Mon 8h + Tue 8h + Wed 6h), C 8h, E 7h.
    assert (total["resolution_business_p50_s"], total["resolution_business_p90_s"]) == (
        7 * H,
        22.5 * H,
    )
    assert (total["resolution_wall_p50_s"], total["resolution_wall_p90_s"]) == (7 * H, 118.5 * H)
    assert (total["sla_breached"], total["sla_breached_share"]) == (3, 0.5)  # B, D, F
    assert (total["resolved"], total["resolved_without_reopen_share"]) == (4, 0.75)  # B reopened
    assert total["repeat_escalations"] == 4  # B, E (Acme), D (ticket 4711), F (Globex)
    assert (total["status_on_time"], total["status_late"]) == (4, 1)  # C's second was late

    level2 = by["level 2"]
    assert level2["cases"] == 2 and level2["per_1000_inbound"] == 33.3
    assert level2["first_response_business_p50_s"] == 30 * M
    assert level2["first_response_business_p90_s"] == 90 * M
    assert level2["resolved_without_reopen_share"] == 0.5
    level1 = by["level 1"]
    assert level1["first_response_business_p50_s"] is None
    assert (level1["sla_breached"], level1["resolved"]) == (1, 0)
    assert level1["resolved_without_reopen_share"] is None

    table = format_table(report)
    assert table.splitlines()[0].split()[:3] == ["GROUP", "CASES", "/1000"]
    assert table.splitlines()[-1] == "inbound mails in period: 60"


def test_report_by_account_and_owner(store: Store) -> None:
    seed(store)
    with store.session() as session:
        facts, inbound = collect(session, GatewayConfig(), at(2, 0), at(16, 0))
    by_account = rows(build_report(facts, inbound, "account"))
    assert {k: v["cases"] for k, v in by_account.items()} == {
        "(no account)": 1,
        "Acme Corp": 3,
        "Globex": 2,
        "all": 6,
    }
    assert by_account["Acme Corp"]["repeat_escalations"] == 2
    by_owner = rows(build_report(facts, inbound, "owner"))
    assert by_owner["oncall@example.com"]["status_late"] == 1
    assert by_owner["head-of-support@example.com"]["status_on_time"] == 3


def test_report_command_formats_and_chart(store: Store, tmp_path: Path) -> None:
    if not store.is_sqlite:
        return  # the command is the same for both stores; one subprocess run is enough
    seed(store)
    config = tmp_path / "gw.toml"
    config.write_text(f'[store]\nurl = "{store.url}"\n')

    def report(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway", "--config", str(config), "report",
             "--since", "2026-11-02", "--until", "2026-11-16", *args],
            capture_output=True, text=True, timeout=120, cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip

    table = report()
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0] == "cases opened 2026-11-02 00:00 to 2026-11-16 00:00 UTC, by level"
    all_row = next(line for line in lines if line.startswith("all"))
    assert all_row.split() == [
        "all", "6", "100", "30m/1h30m", "30m/65h30m", "7h00m/22h30m", "7h00m/118h30m",
        "3", "(50%)", "75%", "4", "4/1",
    ]  # fmt: skip
    parsed = list(csv.DictReader(io.StringIO(report("--format", "csv", "--by", "account").stdout)))
    assert [r["group"] for r in parsed] == ["(no account)", "Acme Corp", "Globex", "all"]
    assert parsed[-1]["first_response_wall_p90_s"] == str(65.5 * H)
    data = json.loads(report("--format", "json").stdout)
    assert data["inbound_mails"] == 60 and data["rows"][-1]["cases"] == 6
    chart = tmp_path / "escalations.png"
    drawn = report("--chart", str(chart))
    assert drawn.returncode == 0, drawn.stderr
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 10_000
    bad = report("--by", "moon")
    assert bad.returncode == 2
    wrong = report("--until", "2026-10-01")
    assert wrong.returncode == 2 and wrong.stderr == "error: --since must be before --until\n"
