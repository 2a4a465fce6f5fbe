"""The content key: equal for every copy of one mail, different for different mails."""

from __future__ import annotations

import re

import pytest

from gateway.clock import FakeClock
from gateway.ingest.inbound import store_inbound
from store.content_key import canonical_content, content_key
from store.db import Store
from store.models import InboundItem
from tests.support.mails import build_mail

MAIL = build_mail(subject="URGENT: payments fail", message_id="<pay-1@acme.example>")

# What receiving hosts put on top of a copy: each delivery adds its own.
TRACE_FIELDS = (
    b"Return-Path: <alice@acme.example>\r\n",
    b"Delivered-To: support@example.com\r\n",
    b"X-Original-To: support@example.com\r\n",
    b"Envelope-To: support@example.com\r\n",
    b"Received: from mx1.example.com (mx1.example.com [192.0.2.1])\r\n"
    b"\tby gateway.example.com with ESMTPS id 4Xz; Mon, 23 Nov 2026 14:00:05 +0000\r\n",
    b"X-Received: by 2002:a05:6000:1:b0 with SMTP id q1; Mon, 23 Nov 2026 06:00:05 -0800\r\n",
    b"Received-SPF: pass (example.com: domain of acme.example designates 192.0.2.9)\r\n",
    b"Authentication-Results: mx1.example.com; spf=pass smtp.mailfrom=acme.example\r\n",
    b"ARC-Seal: i=1; a=rsa-sha256; d=example.com; s=arc; cv=none; b=abc\r\n",
    b"ARC-Message-Signature: i=1; a=rsa-sha256; d=example.com; s=arc; b=def\r\n",
    b"ARC-Authentication-Results: i=1; mx1.example.com; spf=pass\r\n",
    b"X-Spam-Status: No, score=-0.1 required=5.0\r\n",
    b"X-Spam-Score: -0.1\r\n",
)


@pytest.mark.parametrize("field", TRACE_FIELDS, ids=lambda f: f.split(b":")[0].decode())
def test_trace_fields_added_on_delivery_do_not_change_the_key(field: bytes) -> None:
    assert content_key(field + MAIL) == content_key(MAIL)


def test_a_copy_with_every_trace_field_and_lf_line_ends_has_the_same_key() -> None:
    # As a mailbox stores it and an IMAP server hands it back after a rescan.
    copy = b"".join(TRACE_FIELDS) + MAIL
    assert content_key(copy.replace(b"\r\n", b"\n")) == content_key(MAIL)
    # A trace field in the middle of the header block, and empty lines added at the end.
    head, body = MAIL.split(b"\r\n\r\n", 1)
    assert content_key(head + b"\r\nReceived: by relay\r\n\r\n" + body + b"\r\n\r\n") == (
        content_key(MAIL)
    )


def test_a_refolded_field_has_the_same_key() -> None:
    folded = MAIL.replace(b"Subject: URGENT: payments fail", b"Subject: URGENT:\r\n payments  fail")
    assert folded != MAIL
    assert content_key(folded) == content_key(MAIL)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"URGENT: payments fail", b"URGENT: payments failed"),  # subject
        (b"<pay-1@acme.example>", b"<pay-2@acme.example>"),  # Message-ID
        (b"23 Nov 2026 14:00:00", b"23 Nov 2026 14:05:00"),  # Date
        (b"alice@acme.example", b"bob@acme.example"),  # From
        (b"fails since this morning", b"fails since this evening"),  # body
    ],
)
def test_a_change_anywhere_else_is_another_mail(old: bytes, new: bytes) -> None:
    assert old in MAIL
    assert content_key(MAIL.replace(old, new)) != content_key(MAIL)


def test_a_received_line_in_the_body_is_content() -> None:
    with_line = MAIL + b"Received: this line is the customer's text\r\n"
    assert content_key(with_line) != content_key(MAIL)


def test_a_mail_without_header_block_has_a_key_of_its_body() -> None:
    assert canonical_content(b"\r\njust text\r\n") == b"\n\njust text"
    assert content_key(b"\r\njust text\r\n") != content_key(b"\r\nother text\r\n")


def test_an_added_message_id_makes_another_mail() -> None:
    # A relay that adds a missing Message-ID changes the mail: a second case is safer
    # than taking two different mails for one.
    bare = re.sub(rb"(?im)^message-id:.*\r\n", b"", MAIL)
    assert content_key(bare) != content_key(MAIL)


def test_the_stored_bytes_are_kept_as_received(store: Store, clock: FakeClock) -> None:
    copy = b"".join(TRACE_FIELDS) + MAIL
    item_id = store_inbound(store, copy, source="smtp", clock=clock)
    with store.session() as session:
        item = session.get(InboundItem, item_id)
        assert item is not None and item.raw == copy
