"""Which Authentication-Results header is believed, and when a pass is aligned."""

from __future__ import annotations

from gateway.leads.sender_auth import aligned, check_sender
from parsers.mail import parse_mail
from tests.support.mails import build_mail

BORDER = "mx.ourco.example"


def _mail(*results: str) -> bytes:
    fields = "".join(f"Authentication-Results: {r}\r\n" for r in results)
    return fields.encode() + build_mail(sender="Li Chen <li.chen@ourco.example>")


def test_alignment_is_the_from_domain_or_a_parent_of_it() -> None:
    assert aligned("ourco.example", "ourco.example")
    assert aligned("ourco.example", "mail.ourco.example")
    assert not aligned("mail.ourco.example", "ourco.example")
    assert not aligned("evil.example", "ourco.example")
    assert not aligned("co.example", "ourco.example")  # a suffix of the text, not a parent
    assert not aligned("example", "ourco.example")  # never a bare top-level name


def test_only_the_topmost_header_of_a_trusted_server_is_read() -> None:
    mail = parse_mail(
        _mail(
            "relay.internal.example; dkim=pass header.d=ourco.example",  # not trusted
            f"{BORDER} (our border); dkim=fail header.d=ourco.example",
            f"{BORDER}; dkim=pass header.d=ourco.example",  # written by the sender
        )
    )
    checked = check_sender(mail, "ourco.example", [BORDER])
    assert not checked.passed
    assert checked.detail == "mx.ourco.example found dkim=fail for ourco.example"


def test_unreadable_topmost_header_is_not_skipped() -> None:
    below = f"{BORDER}; dmarc=pass header.from=ourco.example"
    mail = parse_mail(_mail(f"{BORDER}; dkim=pass; =;;garbage", below))
    checked = check_sender(mail, "ourco.example", [BORDER])
    assert not checked.passed
    assert checked.detail == "the topmost Authentication-Results of mx.ourco.example is unreadable"


def test_aligned_dkim_or_dmarc_pass_is_accepted() -> None:
    for result in ("dkim=pass header.d=ourco.example", "dmarc=pass header.from=ourco.example"):
        checked = check_sender(parse_mail(_mail(f"{BORDER}; {result}")), "ourco.example", [BORDER])
        assert checked.passed, checked.detail


def test_no_trusted_header_says_which_servers_are_trusted() -> None:
    checked = check_sender(parse_mail(_mail()), "ourco.example", [BORDER])
    assert (checked.passed, checked.code) == (False, "not_authenticated")
    assert checked.detail == "no Authentication-Results from a trusted server (mx.ourco.example)"
