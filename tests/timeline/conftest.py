"""Simulations on the test's store, sink and clock, with the shared timeline config."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from gateway.clock import FakeClock
from gateway.config import AutoReplyConfig
from store.db import Store
from tests.support.smtp_sink import SmtpSink
from tests.support.timeline_sim import Simulation, timeline_config

SimFactory = Callable[..., Simulation]


@pytest.fixture
def make_sim(store: Store, smtp_sink: SmtpSink, clock: FakeClock) -> SimFactory:
    """Call for a simulation with changes to the shared config: `level_overrides` as
    timeline_config takes them, `reply_cap` the auto-replies an address gets an hour."""

    def start(
        *, level_overrides: dict[int, dict[str, Any]] | None = None, reply_cap: int | None = None
    ) -> Simulation:
        config = timeline_config(store, smtp_sink, level_overrides=level_overrides)
        if reply_cap is not None:
            cap = AutoReplyConfig(max_per_address_per_hour=reply_cap)
            config = config.model_copy(update={"auto_reply": cap})
        return Simulation(store, smtp_sink, clock, config)

    return start


@pytest.fixture
def sim(make_sim: SimFactory) -> Simulation:
    return make_sim()
