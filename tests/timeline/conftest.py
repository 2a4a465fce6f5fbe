"""A simulation on the test's store, sink and clock, with the shared timeline config."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gateway.clock import FakeClock
from gateway.config import AutoReplyConfig
from store.db import Store
from tests.support.smtp_sink import SmtpSink
from tests.support.timeline_sim import Simulation, timeline_config


@pytest.fixture
def sim(store: Store, smtp_sink: SmtpSink, clock: FakeClock) -> Simulation:
    return Simulation(store, smtp_sink, clock, timeline_config(store, smtp_sink))


@pytest.fixture
def capped_sim(store: Store, smtp_sink: SmtpSink, clock: FakeClock) -> Callable[[int], Simulation]:
    """Call with a cap: the simulation sends each address at most that many auto-replies
    an hour."""

    def start(max_per_address_per_hour: int) -> Simulation:
        config = timeline_config(store, smtp_sink).model_copy(
            update={
                "auto_reply": AutoReplyConfig(max_per_address_per_hour=max_per_address_per_hour)
            }
        )
        return Simulation(store, smtp_sink, clock, config)

    return start
