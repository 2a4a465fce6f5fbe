"""Checks that the private Dovecot test server behaves like a real mailbox."""

from __future__ import annotations

import socket

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from tests.support import dovecot as dovecot_support
from tests.support.dovecot import DovecotError, DovecotServer

# No conftest.py yet, so the fixture is pulled in here.
dovecot_server = dovecot_support.dovecot_server

MESSAGE = (
    b"From: customer@example.com\r\n"
    b"To: support@example.com\r\n"
    b"Subject: Printer on fire\r\n"
    b"Message-ID: <fire-1@example.com>\r\n"
    b"\r\n"
    b"Please send help.\r\n"
)


def test_login_succeeds(dovecot_server: DovecotServer) -> None:
    with dovecot_server.session("support", "secret") as client:
        assert client.select_folder("INBOX")[b"EXISTS"] == 0


def test_wrong_password_raises_login_error(dovecot_server: DovecotServer) -> None:
    client = IMAPClient(dovecot_server.host, port=dovecot_server.port, ssl=False, timeout=10)
    try:
        with pytest.raises(LoginError):
            client.login("support", "not-the-password")
    finally:
        client.logout()


def test_user_added_while_running_can_log_in(dovecot_server: DovecotServer) -> None:
    dovecot_server.add_user("late", "hunter2")
    with dovecot_server.session("late", "hunter2") as client:
        client.select_folder("INBOX")


def test_append_then_search_finds_message(dovecot_server: DovecotServer) -> None:
    uid = dovecot_server.append("support", "secret", "INBOX", MESSAGE, flags=[b"\\Flagged"])
    assert uid is not None

    with dovecot_server.session("support", "secret") as client:
        client.select_folder("INBOX", readonly=True)
        assert client.search(["SUBJECT", "Printer on fire"]) == [uid]
        fetched = client.fetch([uid], ["FLAGS", "RFC822"])[uid]
    assert b"\\Flagged" in fetched[b"FLAGS"]
    assert fetched[b"RFC822"] == MESSAGE
    assert dovecot_server.folder_uids("support", "secret", "INBOX") == [uid]


def test_mailboxes_are_per_user(dovecot_server: DovecotServer) -> None:
    dovecot_server.append("support", "secret", "INBOX", MESSAGE)
    assert dovecot_server.folder_uids("escalations", "secret", "INBOX") == []


def test_create_and_delete_nested_folder(dovecot_server: DovecotServer) -> None:
    dovecot_server.create_folder("support", "secret", "Escalations/Done")
    uid = dovecot_server.append("support", "secret", "Escalations/Done", MESSAGE)
    assert dovecot_server.folder_uids("support", "secret", "Escalations/Done") == [uid]

    dovecot_server.delete_folder("support", "secret", "Escalations/Done")
    with dovecot_server.session("support", "secret") as client:
        assert not client.folder_exists("Escalations/Done")


def test_capabilities_needed_by_gateway(dovecot_server: DovecotServer) -> None:
    with dovecot_server.session("support", "secret") as client:
        for capability in ("IDLE", "UIDPLUS", "MOVE"):
            assert client.has_capability(capability), capability


def test_idle_reports_new_mail(dovecot_server: DovecotServer) -> None:
    with dovecot_server.session("support", "secret") as client:
        client.select_folder("INBOX")
        client.idle()
        try:
            dovecot_server.append("support", "secret", "INBOX", MESSAGE)
            responses = client.idle_check(timeout=5)
        finally:
            client.idle_done()
    assert (1, b"EXISTS") in responses


def test_restart_keeps_mail_and_port(dovecot_server: DovecotServer) -> None:
    port = dovecot_server.port
    uid = dovecot_server.append("support", "secret", "INBOX", MESSAGE)

    dovecot_server.restart()

    assert dovecot_server.port == port
    assert dovecot_server.folder_uids("support", "secret", "INBOX") == [uid]


def test_restart_drops_open_connections(dovecot_server: DovecotServer) -> None:
    client = dovecot_server.client("support", "secret")
    client.select_folder("INBOX")
    dovecot_server.restart()
    with pytest.raises((OSError, IMAPClient.AbortError)):
        client.noop()
    client.shutdown()


def test_kill_then_start_recovers(dovecot_server: DovecotServer) -> None:
    uid = dovecot_server.append("support", "secret", "INBOX", MESSAGE)

    dovecot_server.kill()
    with pytest.raises(OSError):
        socket.create_connection((dovecot_server.host, dovecot_server.port), timeout=1).close()
    dovecot_server.start()

    assert dovecot_server.folder_uids("support", "secret", "INBOX") == [uid]


@pytest.mark.parametrize("folder", ["INBOX", "Escalations/Open"])
def test_reset_uidvalidity_changes_uidvalidity(dovecot_server: DovecotServer, folder: str) -> None:
    if folder != "INBOX":
        dovecot_server.create_folder("support", "secret", folder)
    for n in range(3):
        dovecot_server.append("support", "secret", folder, MESSAGE.replace(b"fire-1", b"m%d" % n))
    with dovecot_server.session("support", "secret") as client:
        client.select_folder(folder)
        client.delete_messages(client.search(["HEADER", "Message-ID", "m0"]))
        client.expunge()
    old_uids = dovecot_server.folder_uids("support", "secret", folder)
    before = dovecot_server.uidvalidity("support", "secret", folder)
    port = dovecot_server.port

    after = dovecot_server.reset_uidvalidity("support", "secret", folder)

    assert after != before
    assert dovecot_server.uidvalidity("support", "secret", folder) == after
    assert dovecot_server.port == port
    with dovecot_server.session("support", "secret") as client:
        select = client.select_folder(folder, readonly=True)
        assert select[b"UIDVALIDITY"] == after
        # Surviving messages are renumbered from scratch under the new epoch.
        new_uids = client.search("ALL")
        assert len(new_uids) == len(old_uids) == 2
        assert new_uids == [1, 2] != old_uids


def test_start_failure_reports_log(dovecot_server: DovecotServer) -> None:
    # A second instance on the same port cannot bind; start() must notice even
    # though the port answers, and say why.
    clash = DovecotServer(port=dovecot_server.port)
    try:
        with pytest.raises(
            DovecotError, match=r"(?s)exited during startup.*Address already in use"
        ):
            clash.start()
    finally:
        clash.cleanup()
