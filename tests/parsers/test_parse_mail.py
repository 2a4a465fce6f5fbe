from __future__ import annotations

import email
import email.policy
from datetime import UTC, timedelta
from typing import Any

import mailparser
import pytest

from parsers import UnparseableMail, extract_new_text, parse_mail


def crlf(text: str, charset: str = "ascii") -> bytes:
    """Sample messages are written with \\n; real mail arrives with CRLF."""
    return text.lstrip("\n").replace("\n", "\r\n").encode(charset)


OUTLOOK_HTML_REPLY = crlf("""
From: "Bob Builder" <Bob.Builder@Customer.Example>
To: Support <SUPPORT@Example.com>, "Ops, Team" <ops@example.com>
Cc: =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <JOERG@example.de>
Subject: =?utf-8?q?RE=3A_Printer_=E2=80=93_still?=
 =?utf-8?q?_broken?=
Date: Tue, 9 Jan 2024 08:30:00 +0100
Message-ID: <AM0PR01MB1234@eurprd01.prod.outlook.com>
In-Reply-To: <abc123@example.com>
References: <root@example.com>
 <abc123@example.com>
X-MS-Has-Attach:
MIME-Version: 1.0
Content-Type: text/html; charset="utf-8"
Content-Transfer-Encoding: quoted-printable

<html><head><style>p {margin:0}</style></head><body>
<div>Still broken after the update =E2=80=93 error E42.</div><div>Bob</div>
<div>________________________________</div>
<div id=3D"divRplyFwdMsg"><b>From:</b> Support &lt;support@example.com&gt;<br>
<b>Sent:</b> Monday, January 8, 2024 10:15 AM<br><b>To:</b> Bob<br>
<b>Subject:</b> RE: Printer</div>
<div>Please try restarting the spooler.</div></body></html>
""")

GMAIL_REPLY = crlf("""
Return-Path: <alice@gmail.com>
Received: from mx2.example.com by mail.example.com; Mon, 8 Jan 2024 11:00:02 -0800
Received: from mail-ej1.google.com by mx2.example.com; Mon, 8 Jan 2024 11:00:01 -0800
From: Alice Example <Alice.Example@Gmail.com>
To: support@example.com
Subject: Re: [Ticket #4521] Cannot log in
Date: Mon, 8 Jan 2024 11:00:00 -0800
Message-ID: <CAFx9=abc@mail.gmail.com>
In-Reply-To: <t4521-2@example.com>
References: <t4521-1@example.com> <t4521-2@example.com>
X-Note: =?iso-8859-1?q?caf=E9?= ok
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="000000000000b1"

--000000000000b1
Content-Type: text/plain; charset="UTF-8"

Thanks, that fixed it.

On Mon, Jan 8, 2024 at 10:15 AM Support Team <
support@example.com> wrote:

> Please try clearing your cookies.
>

--000000000000b1
Content-Type: text/html; charset="UTF-8"

<div dir="ltr">Thanks, that fixed it.</div>
<blockquote>Please try clearing your cookies.</blockquote>

--000000000000b1--
""")

APPLE_MAIL_REPLY = crlf("""
From: Carol <carol@icloud.com>
To: support@example.com
Subject: Re: Outage
Date: Mon, 8 Jan 2024 19:20:00 +0000
Message-Id: <3F1E-AA@icloud.com>
Mime-Version: 1.0 (1.0)
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Yes please escalate, we are losing orders.

Sent from my iPhone

> On Jan 8, 2024, at 10:15 AM, Support <support@example.com> wrote:
>=20
> Shall I escalate this?
""")

GERMAN_REPLY = crlf(
    """
From: =?ISO-8859-1?Q?J=F6rg_B=E4cker?= <joerg@example.de>
To: support@example.com
Subject: AW: =?ISO-8859-1?Q?St=F6rung_im_Rechenzentrum?=
Date: Tue, 9 Jan 2024 09:00:00 +0100
Message-ID: <de-1@example.de>
MIME-Version: 1.0
Content-Type: text/plain; charset=ISO-8859-1
Content-Transfer-Encoding: 8bit

Die Störung besteht weiterhin.

Viele Grüße
Jörg

Von: Support <support@example.com>
Gesendet: Montag, 8. Januar 2024 10:15
An: Jörg Bäcker <joerg@example.de>
Betreff: Störung im Rechenzentrum

Bitte starten Sie den Server neu.
""",
    "latin-1",
)

FRENCH_REPLY = crlf("""
From: =?UTF-8?B?SMOpbMOobmU=?= <helene@example.fr>
To: support@example.com
Subject: =?UTF-8?B?UkU6IFByb2Jsw6htZSBkZSBmYWN0dXJhdGlvbg==?=
Date: Tue, 9 Jan 2024 10:00:00 +0100
MIME-Version: 1.0
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: base64

VG91am91cnMgZW4gcGFubmUgZGVwdWlzIGhpZXIuCgpMZSBsdW4uIDggamFudi4gMjAyNCDDoCAx
MDoxNSwgU3VwcG9ydCA8c3VwcG9ydEBleGFtcGxlLmNvbT4gYSDDqWNyaXQgOgo+IFJlZMOpbWFy
cmV6IGxlIHNlcnZldXIuCg==
""")

UNDECLARED_ISO2022JP = crlf("""
From: tanaka@example.jp
To: support@example.com
Subject: =?ISO-2022-JP?B?GyRCJWEhPCVrGyhC?=
Date: Tue, 9 Jan 2024 18:00:00 +0900
MIME-Version: 1.0
Content-Type: text/plain
Content-Transfer-Encoding: 7bit

""") + "サーバーが停止しています。\r\n至急対応をお願いします。\r\n".encode("iso-2022-jp")

UNDECLARED_GB2312 = crlf("""
From: wang@example.cn
To: support@example.com
Subject: =?GB2312?B?x+u8sdDo0K3W+g==?=
Date: Tue, 9 Jan 2024 17:00:00 +0800
Content-Type: text/plain
Content-Transfer-Encoding: 8bit

""") + "系统无法登录\uff0c请尽快处理。\r\n".encode("gb2312")

UNDECLARED_LATIN1 = crlf(
    """
From: renee@example.fr
To: support@example.com
Subject: facture
Content-Transfer-Encoding: 8bit

Le café est froid et la facture est erronée.
""",
    "latin-1",
)

MISSING_FINAL_BOUNDARY = crlf("""
From: dave@example.com
To: support@example.com
Subject: broken mime
Date: Tue, 9 Jan 2024 12:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: text/plain; charset=us-ascii

The body survives even though the closing boundary is lost.

--b1
Content-Type: application/pdf; name="=?utf-8?q?Rechnung_M=C3=A4rz.pdf?="
Content-Disposition: attachment; filename*=utf-8''Rechnung%20M%C3%A4rz.pdf
Content-Transfer-Encoding: base64

JVBERi0xLjQK
""")


def test_outlook_html_reply_headers_and_body() -> None:
    mail = parse_mail(OUTLOOK_HTML_REPLY)

    assert mail.parsed_by == "mail-parser"
    assert mail.subject == "RE: Printer \u2013 still broken"
    assert mail.from_ is not None
    assert mail.from_.email == "bob.builder@customer.example"
    assert mail.from_.name == "Bob Builder"
    assert [a.email for a in mail.to] == ["support@example.com", "ops@example.com"]
    assert mail.to[1].name == "Ops, Team"
    assert mail.cc[0].name == "J\u00f6rg M\u00fcller"
    assert mail.cc[0].email == "joerg@example.de"
    assert mail.message_id == "AM0PR01MB1234@eurprd01.prod.outlook.com"
    assert mail.in_reply_to == ("abc123@example.com",)
    assert mail.references == ("root@example.com", "abc123@example.com")
    assert mail.date is not None
    assert mail.date.utcoffset() == timedelta(hours=1)
    assert mail.date.astimezone(UTC).hour == 7
    assert "<div>" in mail.html
    assert "Still broken after the update \u2013 error E42." in mail.text
    assert "p {margin:0}" not in mail.text
    assert extract_new_text(mail.text) == "Still broken after the update \u2013 error E42.\nBob"


def test_gmail_reply_prefers_plain_part_and_keeps_header_order() -> None:
    mail = parse_mail(GMAIL_REPLY)

    assert mail.text.startswith("Thanks, that fixed it.")
    assert "<div" not in mail.text
    assert mail.html.startswith('<div dir="ltr">')
    assert extract_new_text(mail.text) == "Thanks, that fixed it."
    assert mail.header_values("received")[0].startswith("from mx2.example.com")
    assert len(mail.header_values("received")) == 2
    assert all(name == name.lower() for name, _ in mail.headers)
    assert mail.header("X-Note") == "caf\u00e9 ok"
    assert mail.thread_ids == ("t4521-2@example.com", "t4521-1@example.com")
    assert mail.from_ is not None
    assert mail.from_.domain == "gmail.com"
    assert mail.date is not None
    assert mail.date.utcoffset() == timedelta(hours=-8)


def test_apple_mail_reply_drops_phone_signature_and_quote() -> None:
    mail = parse_mail(APPLE_MAIL_REPLY)

    assert mail.message_id == "3F1E-AA@icloud.com"
    assert "Sent from my iPhone" in mail.text
    assert extract_new_text(mail.text) == "Yes please escalate, we are losing orders."


def test_german_latin1_reply() -> None:
    mail = parse_mail(GERMAN_REPLY)

    assert mail.subject == "AW: St\u00f6rung im Rechenzentrum"
    assert mail.from_ is not None
    assert mail.from_.name == "J\u00f6rg B\u00e4cker"
    assert "Die St\u00f6rung besteht weiterhin." in mail.text
    assert extract_new_text(mail.text) == (
        "Die St\u00f6rung besteht weiterhin.\n\nViele Gr\u00fc\u00dfe\nJ\u00f6rg"
    )


def test_french_base64_reply() -> None:
    mail = parse_mail(FRENCH_REPLY)

    assert mail.subject == "RE: Probl\u00e8me de facturation"
    assert mail.from_ is not None
    assert mail.from_.name == "H\u00e9l\u00e8ne"
    assert mail.message_id == ""
    assert mail.in_reply_to == ()
    assert extract_new_text(mail.text) == "Toujours en panne depuis hier."


def test_undeclared_iso2022jp_body_is_decoded() -> None:
    mail = parse_mail(UNDECLARED_ISO2022JP)

    assert mail.subject == "\u30e1\u30fc\u30eb"
    assert "\u30b5\u30fc\u30d0\u30fc\u304c\u505c\u6b62\u3057\u3066\u3044\u307e\u3059" in mail.text
    assert "\x1b" not in mail.text
    assert any("iso2022" in defect for defect in mail.defects)


def test_undeclared_gb2312_body_is_decoded() -> None:
    mail = parse_mail(UNDECLARED_GB2312)

    assert mail.subject == "\u8bf7\u6025\u9700\u534f\u52a9"
    assert "\u7cfb\u7edf\u65e0\u6cd5\u767b\u5f55" in mail.text
    assert "\ufffd" not in mail.text


def test_undeclared_latin1_body_is_decoded() -> None:
    mail = parse_mail(UNDECLARED_LATIN1)

    assert mail.text == "Le caf\u00e9 est froid et la facture est erron\u00e9e."
    assert mail.date is None


def test_missing_final_boundary_is_reported_not_fatal() -> None:
    mail = parse_mail(MISSING_FINAL_BOUNDARY)

    assert "missing final boundary" in mail.defects
    assert mail.text == "The body survives even though the closing boundary is lost."
    assert mail.attachment_names == ("Rechnung M\u00e4rz.pdf",)


def test_undisclosed_recipients_and_odd_ids() -> None:
    raw = crlf("""
From: undisclosed
To: undisclosed-recipients:;
Subject:   lots   of
\tspace
Message-ID: bare-id@example.com
References: <a@x>,<b@x>
Date: 9 Jan 2024 12:00:00 -0000

hi
""")
    mail = parse_mail(raw)

    assert mail.to == ()
    assert mail.from_ is not None
    assert mail.from_.email in ("", "undisclosed")
    assert mail.subject == "lots of space"
    assert mail.message_id == "bare-id@example.com"
    assert mail.references == ("a@x", "b@x")
    assert mail.date is not None
    assert mail.date.tzinfo is not None
    assert mail.date.utcoffset() == timedelta(0)


def test_unparseable_date_is_none_with_defect() -> None:
    mail = parse_mail(b"From: a@example.com\r\nDate: last Tuesday-ish\r\n\r\nbody\r\n")

    assert mail.date is None
    assert "unparseable date" in mail.defects


@pytest.mark.parametrize(
    "raw",
    [b"", b"   \r\n\r\n", b"just some words\nwith no header at all\n"],
    ids=["empty", "blank", "no-headers"],
)
def test_unreadable_input_raises_unparseable(raw: bytes) -> None:
    with pytest.raises(UnparseableMail):
        parse_mail(raw)


def nested_multipart(depth: int) -> bytes:
    head = b"From: bomb@example.com\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n"
    parts = [head]
    for level in range(1, depth):
        parts.append(
            f"--b{level - 1}\r\nContent-Type: multipart/mixed; boundary=b{level}\r\n\r\n".encode()
        )
    return b"".join(parts)


@pytest.mark.parametrize(
    "raw",
    [
        bytes(range(256)) * 4,
        b"From: a\r\n\r\n",
        b"Content-Type: multipart/mixed\r\n\r\n--x\r\n",
        b"Subject: =?utf-8?b?not base64!?= =?x-unknown?q?abc?=\r\n\r\nbody",
        b"From: =?utf-8?q?broken\r\nTo: <<<@@>>>\r\nDate: Mon, 99 Foo 2024 99:99:99 +9999\r\n\r\n",
        b"Content-Type: text/plain; charset=no-such-charset\r\n\r\n\xff\xfe\xfd",
        nested_multipart(3000),
    ],
    ids=["binary", "bad-from", "no-boundary", "bad-words", "bad-headers", "bad-charset", "nesting"],
)
def test_hostile_input_never_raises_anything_else(raw: bytes) -> None:
    try:
        mail = parse_mail(raw)
    except UnparseableMail:
        return
    assert isinstance(mail.text, str)
    mail.text.encode("utf-8")  # no lone surrogates may leak out
    mail.subject.encode("utf-8")


def test_bad_encoded_words_are_kept_verbatim() -> None:
    mail = parse_mail(b"Subject: =?x-unknown?q?abc?= and =?utf-8?q?ok?=\r\n\r\nbody")

    assert mail.subject.endswith("and ok")
    assert "abc" in mail.subject


def test_falls_back_to_stdlib_when_mailparser_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(raw: bytes) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(mailparser, "parse_from_bytes", explode)
    mail = parse_mail(GMAIL_REPLY)

    assert mail.parsed_by == "stdlib"
    assert mail.defects[0] == "mail-parser failed: RuntimeError: boom"
    assert mail.subject == "Re: [Ticket #4521] Cannot log in"
    assert mail.from_ is not None
    assert mail.from_.email == "alice.example@gmail.com"
    assert mail.to[0].email == "support@example.com"
    assert extract_new_text(mail.text) == "Thanks, that fixed it."


def test_stdlib_fallback_matches_mailparser_on_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = parse_mail(OUTLOOK_HTML_REPLY)
    real = mailparser.parse_from_bytes
    monkeypatch.setattr(mailparser, "parse_from_bytes", lambda raw: real(b""))
    fallback = parse_mail(OUTLOOK_HTML_REPLY)

    assert fallback.parsed_by == "stdlib"
    assert "mail-parser found no headers" in fallback.defects
    assert fallback.subject == expected.subject
    assert fallback.cc == expected.cc
    assert fallback.to == expected.to
    assert fallback.text == expected.text
    assert fallback.date == expected.date


def test_compat32_used_when_default_policy_explodes(monkeypatch: pytest.MonkeyPatch) -> None:
    real = email.message_from_bytes

    def picky(raw: bytes, **kwargs: Any) -> Any:
        if kwargs.get("policy") is email.policy.default:
            raise ValueError("header parser blew up")
        return real(raw, **kwargs)

    monkeypatch.setattr(mailparser, "parse_from_bytes", lambda raw: None)
    monkeypatch.setattr(email, "message_from_bytes", picky)
    mail = parse_mail(UNDECLARED_GB2312)

    assert mail.parsed_by == "stdlib"
    assert "stdlib default policy failed: ValueError: header parser blew up" in mail.defects
    assert "\u7cfb\u7edf\u65e0\u6cd5\u767b\u5f55" in mail.text


def test_stdlib_fallback_raises_unparseable_for_headerless(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mailparser, "parse_from_bytes", lambda raw: None)

    with pytest.raises(UnparseableMail, match="no headers"):
        parse_mail(b"no header here\n\njust text\n")
