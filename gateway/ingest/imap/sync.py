"""Bring one IMAP folder's new mail into the store, in an order that never loses mail.

For every message above the recorded UID: fetch with BODY.PEEK[] (so fetching alone
never marks it read), commit the fetched batch together with the new last UID, and
only then flag it \\Seen. A crash anywhere in that sequence leaves the message either
unstored and unrecorded (fetched again next time) or stored and recorded but not
flagged (flagged on the next start's reconciliation). During a first scan, or after a
UIDVALIDITY change, the position is saved once the whole scan is stored; a crash
before that stores the scan again, and the worker sees the same Message-ID and
content already done and marks each copy "duplicate", so no second case or reply.

Moving to the processed or quarantine folder waits for the worker's verdict, which
the sync learns by looking up the items it stored. Nothing is deleted except by MOVE.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from sqlalchemy import select

from gateway.clock import Clock
from gateway.config.imap import ImapMailboxConfig
from gateway.ingest.imap.connection import ImapFailure
from gateway.ingest.imap.state import FolderPosition, load_position, record_position, save_position
from gateway.ingest.inbound import inbound_row, insert_rows
from gateway.ingest.raw_mail import content_hash
from store.db import Store
from store.models import InboundItem

log = logging.getLogger("gateway.imap")

SEEN = b"\\Seen"
DELETED = b"\\Deleted"
_BODY = b"BODY[]"
_SETTLED_OK = frozenset({"done", "duplicate"})


def _chunks(values: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _take_exists(client: IMAPClient) -> bool:
    """Whether the server said "n EXISTS" since last asked, forgetting that it did.

    Servers send EXISTS once, as an aside to whatever command is running; imaplib
    keeps such asides in `untagged_responses`. Without this look, mail arriving
    during a catch-up would only be found at the next IDLE timeout.
    """
    pending: dict[str, Any] = client._imap.untagged_responses
    return pending.pop("EXISTS", None) is not None


@dataclass
class SyncResult:
    stored: list[int] = field(default_factory=list)  # item ids, in UID order


class FolderSync:
    """One folder of one mailbox. `attach` after every (re)connect, then `catch_up`."""

    def __init__(
        self,
        config: ImapMailboxConfig,
        store: Store,
        clock: Clock,
        *,
        on_stored: Callable[[int], None] = lambda _id: None,
        checkpoint: Callable[[str], None] = lambda _stage: None,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.on_stored = on_stored
        # Lets tests stop the process at an exact point ("stored", "recorded").
        self.checkpoint = checkpoint
        self.client: IMAPClient | None = None
        self.writable = False
        self.position: FolderPosition | None = None
        # UID -> item id for mail still waiting for a verdict before it is moved.
        self.awaiting: dict[int, int] = {}
        # Recorded but not yet flagged \Seen (the connection broke in between).
        self.unflagged: set[int] = set()
        self._reconciled = False
        self._first_scan: list[int] | None = None
        # When the folder was last known to be in the store up to date (health).
        self.last_synced_at: datetime | None = None

    @property
    def moves_configured(self) -> bool:
        return bool(self.config.processed_folder or self.config.quarantine_folder)

    # -- connection setup ----------------------------------------------------

    def attach(self, client: IMAPClient) -> None:
        """Select the folder on a fresh connection and check that UIDs still mean the same."""
        self.client = client
        cfg = self.config
        try:
            status = self._select(client)
        except IMAPClient.AbortError:
            raise
        except IMAPClientError as exc:
            raise ImapFailure("folder", f"cannot open folder {cfg.folder!r}: {exc}") from None
        uidvalidity = int(status[b"UIDVALIDITY"])
        saved = load_position(self.store, cfg.name, cfg.folder)
        if saved is None:
            self.position = self._first_position(client, uidvalidity)
        elif saved.uidvalidity != uidvalidity:
            log.warning(
                "%s: UIDVALIDITY changed from %s to %s; rescanning the whole folder "
                "(mail already processed is recognised as a duplicate)",
                cfg.describe(),
                saved.uidvalidity,
                uidvalidity,
            )
            # Old UIDs now name other messages (or none): forget everything tied to them.
            self.awaiting.clear()
            self.unflagged.clear()
            self._reconciled = False
            self.position = FolderPosition(uidvalidity, 0)
            save_position(self.store, cfg.name, cfg.folder, self.position)
        else:
            self.position = saved
        if not self.writable:
            return
        if self.moves_configured:
            self._ensure_folders(client)
        if not self._reconciled:
            self._reconcile(client)
            self._reconciled = True
        self._flag_seen(client, sorted(self.unflagged))

    def _select(self, client: IMAPClient) -> dict[bytes, Any]:
        folder = self.config.folder
        self.writable = False
        if not self.config.read_only:
            try:
                status: dict[bytes, Any] = client.select_folder(folder)
                self.writable = True
                return status
            except IMAPClient.ReadOnlyError:
                # Shared or ACL-restricted folder: watch it, keep progress in the store only.
                log.info("%s: folder is read-only; tracking UIDs only", self.config.describe())
        examined: dict[bytes, Any] = client.select_folder(folder, readonly=True)
        return examined

    def _first_position(self, client: IMAPClient, uidvalidity: int) -> FolderPosition:
        cfg = self.config
        if cfg.initial_scan == "all":
            position = FolderPosition(uidvalidity, 0)
            save_position(self.store, cfg.name, cfg.folder, position)
            return position
        present = sorted(int(uid) for uid in client.search("ALL"))
        boundary = present[-1] if present else 0
        if cfg.initial_scan == "unseen":
            # Unread mail already waiting is taken; the rest is treated as handled.
            unseen = sorted(int(uid) for uid in client.search("UNSEEN"))
            self._first_scan = [uid for uid in unseen if uid <= boundary]
        log.info(
            "%s: first start; %s, continuing above UID %s",
            cfg.describe(),
            f"taking {len(self._first_scan or [])} unread message(s)"
            if cfg.initial_scan == "unseen"
            else "skipping existing mail",
            boundary,
        )
        # Saved only after the first scan is stored, so a crash repeats the scan.
        return FolderPosition(uidvalidity, boundary)

    def _ensure_folders(self, client: IMAPClient) -> None:
        for folder in (self.config.processed_folder, self.config.quarantine_folder):
            if folder and not client.folder_exists(folder):
                log.info("%s: creating folder %r", self.config.describe(), folder)
                client.create_folder(folder)

    def _reconcile(self, client: IMAPClient) -> None:
        """On the first connection of a run, finish what an interrupted run left undone.

        A crash after recording progress can leave the newest stored messages without
        \\Seen, and (with a processed folder) stored messages never moved. Both are
        found at or below last_uid and matched to their items by content hash, so
        only mail the store really holds is touched.
        """
        assert self.position is not None
        cfg, last = self.config, self.position.last_uid
        if last == 0 or not (cfg.mark_seen or cfg.processed_folder):
            return
        present = sorted(uid for uid in (int(u) for u in client.search(["UID", f"1:{last}"])))
        present = [uid for uid in present if uid <= last]
        candidates: set[int] = set()
        unseen: set[int] = set()
        if cfg.mark_seen and present:
            # Flags are set batch by batch right after recording, so only the last
            # batch of a crashed run can lack them; older unread mail is a human's choice.
            tail = present[-cfg.fetch_batch :]
            found = client.search(["UNSEEN", "UID", f"{tail[0]}:{tail[-1]}"])
            unseen = {int(u) for u in found} & set(tail)
            candidates |= unseen
        if cfg.processed_folder:
            candidates |= set(present)
        candidates -= set(self.awaiting)
        matched = self._stored_items(client, sorted(candidates))
        self.unflagged |= unseen & set(matched)
        if cfg.processed_folder:
            self.awaiting.update(matched)
        if matched:
            log.info(
                "%s: %d stored message(s) left unfinished by an earlier run; completing them",
                cfg.describe(),
                len(matched),
            )

    def _stored_items(self, client: IMAPClient, uids: list[int]) -> dict[int, int]:
        """UID -> id of the item holding exactly that message, for those stored."""
        matched: dict[int, int] = {}
        for batch in _chunks(uids, self.config.fetch_batch):
            bodies = client.fetch(batch, ["BODY.PEEK[]"])
            with self.store.transaction() as session:
                for uid, data in bodies.items():
                    if _BODY not in data:
                        continue
                    item_id = session.scalar(
                        select(InboundItem.id)
                        .where(InboundItem.source == self.config.source)
                        .where(InboundItem.sha256 == content_hash(bytes(data[_BODY])))
                        .order_by(InboundItem.id.desc())
                        .limit(1)
                    )
                    if item_id is not None:
                        matched[int(uid)] = item_id
        return matched

    def _flag_seen(self, client: IMAPClient, uids: list[int]) -> None:
        if not uids or not self.config.mark_seen:
            return
        # Remembered first: if the connection breaks now, the next attach retries.
        self.unflagged.update(uids)
        client.add_flags(uids, [SEEN], silent=True)
        self.unflagged.difference_update(uids)

    # -- new mail --------------------------------------------------------------

    def _new_uids(self, client: IMAPClient) -> list[int]:
        assert self.position is not None
        if self._first_scan is not None:
            return self._first_scan
        last = self.position.last_uid
        # "n:*" always matches the highest UID, even when it is below n; filter it out.
        found = client.search(["UID", f"{last + 1}:*"])
        return sorted(uid for uid in (int(u) for u in found) if uid > last)

    def catch_up(self) -> SyncResult:
        """Store everything new, record progress, then flag it; returns what was stored."""
        client, position = self.client, self.position
        assert client is not None and position is not None, "attach() first"
        result = SyncResult()
        while True:
            _take_exists(client)
            uids = self._new_uids(client)
            for batch in _chunks(uids, self.config.fetch_batch):
                result.stored.extend(self._store_batch(client, batch))
            if self._first_scan is not None and self.position is not None:
                self._first_scan = None
                save_position(self.store, self.config.name, self.config.folder, self.position)
            # Mail announced while our own commands ran is not announced again in IDLE.
            if not _take_exists(client):
                self.last_synced_at = self.clock.now()
                return result

    def _store_batch(self, client: IMAPClient, batch: Sequence[int]) -> list[int]:
        assert self.position is not None
        cfg = self.config
        fetched = client.fetch(batch, ["BODY.PEEK[]"])
        present: list[tuple[int, bytes]] = []
        for uid in batch:
            raw = fetched.get(uid, {}).get(_BODY)
            if raw is None:
                # Expunged between SEARCH and FETCH by another client: nothing to take.
                log.info("%s: UID %s vanished before it could be fetched", cfg.describe(), uid)
                continue
            present.append((uid, bytes(raw)))
        rows = [inbound_row(raw, source=cfg.source, clock=self.clock) for _, raw in present]
        high = max(batch)
        advanced = FolderPosition(self.position.uidvalidity, max(high, self.position.last_uid))
        # The batch's mail and the new last UID are one commit: one turn at the store's
        # write lock instead of two, and no crash can separate them.
        with self.store.transaction() as session:
            item_ids = insert_rows(session.connection(), rows)
            if self._first_scan is None and advanced != self.position:
                record_position(session, self.store, cfg.name, cfg.folder, advanced)
        self.position = advanced
        # A long first scan is progress too, batch by batch.
        self.last_synced_at = self.clock.now()
        stored = [(uid, item_id) for (uid, _), item_id in zip(present, item_ids, strict=True)]
        if stored:
            self.checkpoint("stored")
        self.checkpoint("recorded")
        # The worker is woken once the batch is fully recorded (it would find the
        # items within a second anyway); waking it earlier gains nothing.
        for _, item_id in stored:
            self.on_stored(item_id)
        if self.writable:
            if self.moves_configured:
                self.awaiting.update(stored)
            self._flag_seen(client, [uid for uid, _ in stored])
        log.debug("%s: stored %d message(s) up to UID %s", cfg.describe(), len(stored), high)
        return [item_id for _, item_id in stored]

    # -- moving by verdict -----------------------------------------------------

    def verdicts(self) -> dict[int, str]:
        """UID -> item state for every awaited message the worker has finished with."""
        if not self.awaiting:
            return {}
        with self.store.transaction() as session:
            rows = session.execute(
                select(InboundItem.id, InboundItem.state).where(
                    InboundItem.id.in_(set(self.awaiting.values()))
                )
            ).all()
        states = {item_id: state for item_id, state in rows}
        return {
            uid: states[item_id]
            for uid, item_id in self.awaiting.items()
            if states.get(item_id, "pending") != "pending"
        }

    def settle(self) -> int:
        """Move every message whose item has a verdict; returns how many were moved."""
        client = self.client
        assert client is not None
        targets: dict[str, list[int]] = {}
        for uid, state in self.verdicts().items():
            del self.awaiting[uid]
            target = (
                self.config.processed_folder
                if state in _SETTLED_OK
                else self.config.quarantine_folder
            )
            if target:
                targets.setdefault(target, []).append(uid)
        moved = 0
        for target, uids in targets.items():
            moved += self._move(client, sorted(uids), target)
        return moved

    def _move(self, client: IMAPClient, uids: list[int], target: str) -> int:
        try:
            if client.has_capability("MOVE"):
                client.move(uids, target)
            elif client.has_capability("UIDPLUS"):
                # MOVE emulated per RFC 6851: only our own UIDs are ever expunged.
                client.copy(uids, target)
                client.add_flags(uids, [DELETED], silent=True)
                client.uid_expunge(uids)
            else:
                client.copy(uids, target)
                log.warning(
                    "%s: server has neither MOVE nor UIDPLUS; copied to %r, original kept",
                    self.config.describe(),
                    target,
                )
        except IMAPClientError as exc:
            if isinstance(exc, IMAPClient.AbortError):
                raise
            log.warning(
                "%s: could not move UID(s) %s to %r: %s",
                self.config.describe(),
                ",".join(map(str, uids)),
                target,
                exc,
            )
            return 0
        log.info("%s: moved %d message(s) to %r", self.config.describe(), len(uids), target)
        return len(uids)
