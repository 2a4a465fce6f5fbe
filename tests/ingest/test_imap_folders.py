"""Folders: processed and quarantine moves, read-only folders, UIDVALIDITY changes."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from store.db import Store
from tests.support.dovecot import DovecotServer
from tests.support.imap_gateway import PASSWORD, USER, ImapGateway, urgent
from tests.support.smtp_sink import SmtpSink
from tests.support.waiting import wait_until

SEEN = b"\\Seen"
UNPARSEABLE = b"\r\nno header block at all, so the worker quarantines it\r\n"
Factory = Callable[..., ImapGateway]


class AclDovecot(DovecotServer):
    """Dovecot with the ACL plugin, so a folder can be made read-only for its owner."""

    def _write_config(self) -> None:
        super()._write_config()
        with self.config_path.open("a") as conf:
            conf.write(
                "mail_plugins = $mail_plugins acl\n"
                "protocol imap {\n  mail_plugins = $mail_plugins acl imap_acl\n}\n"
                "plugin {\n  acl = vfile\n}\n"
            )

    def make_read_only(self, folder: str) -> None:
        acl = self._maildir_for(USER, folder) / "dovecot-acl"
        acl.write_text("owner lr\n")  # lookup and read: no flags, no expunge, no insert
        os.chown(acl, *self._mail_owner)


@pytest.fixture
def acl_dovecot() -> Iterator[AclDovecot]:
    server = AclDovecot()
    server.add_user(USER, PASSWORD)
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


def test_processed_and_quarantined_mail_is_moved_by_verdict(
    imap_gateway_on: Factory, dovecot_server: DovecotServer
) -> None:
    gateway = imap_gateway_on(
        dovecot_server, processed_folder="Processed", quarantine_folder="Quarantine"
    )
    gateway.append(urgent())
    gateway.append(UNPARSEABLE)

    wait_until(
        lambda: (
            len(dovecot_server.folder_uids(USER, PASSWORD, "Processed")) == 1
            and len(dovecot_server.folder_uids(USER, PASSWORD, "Quarantine")) == 1
        ),
        what="both messages moved",
    )
    assert dovecot_server.folder_uids(USER, PASSWORD, "INBOX") == []
    assert [i.state for i in gateway.items()] == ["done", "quarantined"]
    assert gateway.cases() == 1
    assert all(SEEN in f for f in gateway.flags("Processed").values())
    assert all(SEEN in f for f in gateway.flags("Quarantine").values())


def test_mail_left_unmoved_by_an_earlier_run_is_moved_after_restart(
    imap_gateway_on: Factory, dovecot_server: DovecotServer, store: Store
) -> None:
    # The first run has no processed folder, as if it had stopped before moving.
    first = imap_gateway_on(dovecot_server)
    first.append(urgent())
    first.wait_for_cases(1)
    first.wait_all_seen()
    first.stop()

    second = imap_gateway_on(dovecot_server, processed_folder="Processed")
    wait_until(
        lambda: len(dovecot_server.folder_uids(USER, PASSWORD, "Processed")) == 1,
        what="leftover moved to Processed",
    )
    assert second.cases() == 1 and len(second.items()) == 1


@pytest.mark.parametrize("how", ["config", "acl"])
def test_read_only_folder_is_watched_without_changing_it(
    imap_gateway_on: Factory, acl_dovecot: AclDovecot, how: str
) -> None:
    acl_dovecot.create_folder(USER, PASSWORD, "Shared")
    if how == "acl":
        acl_dovecot.make_read_only("Shared")
    gateway = imap_gateway_on(
        acl_dovecot,
        folder="Shared",
        read_only=how == "config",
        processed_folder="Processed",
        initial_scan="all",
        # A file dropped straight into the maildir may never raise an IDLE event;
        # this test is about read-only access, so it polls.
        mode="poll",
    )
    uid = acl_dovecot.append(USER, PASSWORD, "Shared", urgent()) if how == "config" else None
    if uid is None:
        # The ACL forbids APPEND to the folder, so deliver as the MTA would.
        drop = acl_dovecot._maildir_for(USER, "Shared") / "new" / "1.readonly.test"
        drop.write_bytes(urgent())

    gateway.wait_for_cases(1)
    [flags] = gateway.flags("Shared").values()
    assert SEEN not in flags  # EXAMINE plus BODY.PEEK: the folder is untouched
    assert len(acl_dovecot.folder_uids(USER, PASSWORD, "Shared")) == 1
    position = gateway.position("Shared")
    assert position is not None and position.last_uid >= 1

    gateway.stop()
    again = imap_gateway_on(acl_dovecot, folder="Shared", read_only=how == "config")
    again.append(urgent(2), folder="INBOX")  # unrelated folder; Shared has nothing new
    wait_until(again.settled, what="restart to settle")
    assert again.cases() == 1 and len(again.items()) == 1  # progress came from the store


def test_uidvalidity_change_rescans_without_duplicate_cases(
    imap_gateway_on: Factory, dovecot_server: DovecotServer, smtp_sink: SmtpSink
) -> None:
    gateway = imap_gateway_on(dovecot_server)
    gateway.append(urgent(1))
    gateway.append(urgent(2))
    gateway.wait_for_cases(2)
    gateway.wait_all_seen()
    before = gateway.position()
    assert before is not None

    dovecot_server.reset_uidvalidity(USER, PASSWORD, "INBOX")
    wait_until(lambda: len(gateway.items()) == 4 and gateway.settled(), what="rescan")

    def adopted() -> bool:
        # Compared with SELECT, not STATUS: Dovecot's list index may lag right after
        # the reset, and the watcher's own SELECT is the value that counts.
        position = gateway.position()
        with dovecot_server.session(USER, PASSWORD) as client:
            current = client.select_folder("INBOX", readonly=True)[b"UIDVALIDITY"]
        return position is not None and position.uidvalidity == current != before.uidvalidity

    wait_until(adopted, what="watcher to adopt the new UIDVALIDITY")
    assert [i.state for i in gateway.items()] == ["done", "done", "duplicate", "duplicate"]
    assert gateway.cases() == 2 and gateway.acks() == 2

    gateway.append(urgent(3))  # and new mail still flows under the new epoch
    gateway.wait_for_cases(3)
    smtp_sink.wait_for(3 * 2)  # acknowledgement plus owner notification per case
    assert len(smtp_sink.to("alice@acme.example")) == 3
