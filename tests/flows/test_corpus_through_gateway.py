"""Every message of the shared corpus goes through store and worker without escaping.

The corpus (flanker's messy MIME, sisimai's bounces and auto-replies) lives beside the
checkout in ../shared/corpus; CI always has it. A checkout without it skips only this
module, and says why.
"""

from __future__ import annotations

import mailbox
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway.clock import FakeClock
from gateway.ingest.inbound import store_inbound
from gateway.work.worker import Worker
from store.db import Store
from store.models import InboundItem, OutboxMail
from tests.conftest import CORPUS, make_config

pytestmark = pytest.mark.skipif(
    not CORPUS.is_dir(),
    reason=f"shared mail corpus not found at {CORPUS} (it sits beside the checkout in CI)",
)

NOT_MAIL = {"README.md", "LICENSE"}


def corpus_messages(root: Path) -> Iterator[tuple[str, bytes]]:
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.name in NOT_MAIL or path.suffix == ".json":
            continue
        if path.parent.name == "mailbox" and path.name.startswith("mbox"):
            for index, message in enumerate(mailbox.mbox(path)):
                yield f"{path.relative_to(root)}#{index}", message.as_bytes()
            continue
        yield str(path.relative_to(root)), path.read_bytes()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'corpus.db'}")
    store.migrate()
    yield store
    store.dispose()


def run_corpus(store: Store, root: Path) -> dict[str, InboundItem]:
    clock = FakeClock(datetime(2026, 11, 23, 14, 0, tzinfo=UTC))
    worker = Worker(make_config(store), store, clock)
    names: dict[int, str] = {}
    for name, raw in corpus_messages(root):
        item_id = store_inbound(store, raw, source="ingest", clock=clock)
        names[item_id] = name
        outcome = worker.process_next(item_id)  # must not raise
        assert outcome is not None
    with store.session() as session:
        return {names[item.id]: item for item in session.scalars(select(InboundItem))}


def test_whole_corpus_goes_through_without_an_exception(sqlite_store: Store) -> None:
    items = run_corpus(sqlite_store, CORPUS)
    assert len(items) > 800
    quarantined = {name: item.error for name, item in items.items() if item.state == "quarantined"}
    # Quarantine is for mail that cannot be read at all, never for a bug of ours.
    assert all(error and error.startswith("unparseable") for error in quarantined.values()), (
        quarantined
    )
    assert len(quarantined) <= 2, quarantined


def test_no_sisimai_message_gets_an_automatic_reply(sqlite_store: Store) -> None:
    items = run_corpus(sqlite_store, CORPUS / "sisimai")
    with sqlite_store.session() as session:
        sent = session.scalar(select(func.count()).select_from(OutboxMail))
    opened = sorted(name for name, item in items.items() if item.decision == "open")
    assert opened == []
    assert sent == 0
