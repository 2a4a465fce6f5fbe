"""Issue 16: the retry backoff is capped before it can overflow, and one failing mail
never rolls back or repeats what the rest of its batch recorded."""

from __future__ import annotations

import json
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from gateway.backoff import retry_delay
from gateway.cli.main import main
from gateway.clock import FakeClock
from gateway.config import parse_config
from gateway.ops.monitoring import MonitoringServer
from gateway.outbound.delivery import OutboxSender
from store.db import Store
from store.models import OutboxMail
from tests.conftest import make_config
from tests.outbound.outbox import queue_pending
from tests.outbound.smarthost import Smarthost
from tests.support.mails import build_mail

FAILING = "refuses-for-now@kunde.example"


@pytest.mark.parametrize(("initial", "longest"), [("1s", "1h"), ("30s", "1h"), ("1s", "7d")])
def test_the_delay_doubles_up_to_retry_max_for_any_attempt_count(
    initial: str, longest: str
) -> None:
    config = parse_config({"outbound": {"retry_initial": initial, "retry_max": longest}}, "<test>")
    start, cap = config.outbound.retry_initial, config.outbound.retry_max
    delays = [retry_delay(n, start, cap) for n in range(1, 10_001)]
    assert delays[0] == start and delays[1] == 2 * start
    assert all(a <= b for a, b in pairwise(delays))
    assert delays[-1] == cap and max(delays) == cap


def queue(store: Store, clock: FakeClock, rcpt: str, n: int) -> str:
    message_id = f"<mail-{n}@kunde.example>"
    raw = build_mail(to=rcpt, subject=f"Mail {n}", message_id=message_id)
    queue_pending(
        store,
        clock,
        recipients=[rcpt],
        raw=raw,
        message_id=message_id.strip("<>"),
        subject=f"Mail {n}",
    )
    return message_id


def test_a_mail_failing_60_times_beside_100_that_succeed(
    store: Store, clock: FakeClock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Smarthost(refuse={FAILING: "451 4.7.1 greylisted, try again later"}) as smarthost:
        config = make_config(
            store,
            outbound={
                "port": smarthost.port,
                "max_attempts": 60,
                "retry_initial": "1s",
                "retry_max": "1h",
            },
        )
        sender = OutboxSender(config.outbound, store, clock)
        failing = queue(store, clock, FAILING, 0)
        ordinary: list[str] = []
        failed_runs = 0
        for step in range(1, 66):
            if 41 <= step <= 60:
                # Five ordinary mails share each batch with attempts 41 to 60 of the
                # failing one: attempt 48 is where 1s * 2**47 overflowed.
                ordinary += [
                    queue(store, clock, f"c{step}-{k}@kunde.example", step * 10 + k)
                    for k in range(5)
                ]
            try:
                sender.deliver_due()
            except Exception:
                # What the daemon's loop does with a failed run: log it, run again.
                failed_runs += 1
            # Past retry_max and the claim lease: everything not finished is due again.
            clock.advance(timedelta(hours=1))
        times_delivered = {mid: smarthost.accepted[mid] for mid in ordinary}

    assert len(ordinary) == 100
    assert sorted(set(times_delivered.values())) == [1], {
        mid: n for mid, n in times_delivered.items() if n != 1
    }
    assert failed_runs == 0
    assert smarthost.accepted[failing] == 0
    assert smarthost.refusals[FAILING] == 60  # and never tried again once dead
    with store.session() as session:
        mail = session.scalars(
            select(OutboxMail).where(OutboxMail.message_id == failing.strip("<>"))
        ).one()
        assert (mail.state, mail.attempts, mail.dead_cause) == ("dead", 60, "attempts")
        assert "451 4.7.1 greylisted" in (mail.last_error or "")

    config_file = tmp_path / "gateway.toml"
    config_file.write_text(f'[store]\nurl = "{store.url}"\n', encoding="utf-8")
    assert main(["--config", str(config_file), "outbox", "list", "--state", "dead", "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["attempts"] == 60 and "451" in listed["last_error"]
    assert listed["dead_cause"] == "attempts"
    assert main(["--config", str(config_file), "outbox", "list", "--state", "dead"]) == 0
    table = capsys.readouterr().out
    assert "last error (attempts) after 60 attempt(s): " in table and "greylisted" in table

    monitoring = MonitoringServer(config.monitoring, store, clock, probes={})
    found = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(monitoring.metrics().decode())
        for sample in family.samples
    }
    assert found[("escalation_gateway_outbox_mails", (("state", "dead"),))] == 1
    assert found[("escalation_gateway_outbox_mails", (("state", "sent"),))] == 100
    assert found[("escalation_gateway_outbox_dead_mails", (("cause", "attempts"),))] == 1
