"""IMAP gateways started against a given Dovecot and stopped when the test ends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gateway.clock import FakeClock
from store.db import Store
from tests.support.dovecot import DovecotServer
from tests.support.imap_gateway import ImapGateway, imap_config
from tests.support.smtp_sink import SmtpSink

ServerFactory = Callable[..., ImapGateway]


@pytest.fixture
def imap_gateway_on(store: Store, smtp_sink: SmtpSink, clock: FakeClock) -> Iterator[ServerFactory]:
    """Call with a Dovecot and `[[imap]]` overrides; each gateway is started at once."""
    started: list[ImapGateway] = []

    def factory(server: DovecotServer, **overrides: Any) -> ImapGateway:
        config = imap_config(store, smtp_sink, server, **overrides)
        gateway = ImapGateway(config, store, clock, server).start()
        started.append(gateway)
        return gateway

    yield factory
    for gateway in started:
        gateway.stop()
