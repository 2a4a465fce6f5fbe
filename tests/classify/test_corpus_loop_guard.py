"""Run the loop guard over real bounce collections kept beside the checkout.

The sisimai "set-of-emails" corpus is made of bounces, DSNs, ARF complaints and
vacation replies; every one of them must be refused an automatic reply.  Its
``maildir/not/`` folder holds two person-written mails (a message sent through
an HTTP-to-SMTP relay and an Apple Mail message forwarding another as an
attachment) which must still get one.  flanker's ``bounce/`` and
``complaints/`` folders are checked the same way.

Two sisimai messages (``maildir/bsd/lhost-sendmail-14`` and
``maildir/err/make-test-36``, the latter also inside ``mailbox/mbox-0``) are a
person using Apple Mail to forward a bounce ("Fwd: Returned mail: ...").
sisimai digs the quoted bounce out of the body, but the mail itself is
person-written and has a normal sender, so answering it cannot loop; a customer
forwarding a bounce to support is exactly who should be acknowledged.  They are
recognised by Message-ID and must be allowed.
"""

from __future__ import annotations

import email
import email.errors
import email.header
import email.message
import email.policy
import email.utils
import mailbox
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gateway.classify.loop_guard import LoopGuardSettings, auto_reply_block_reason
from parsers.model import Address, ParsedMail

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
SISIMAI = CORPUS / "sisimai"
FLANKER = CORPUS / "flanker"

PERSON_FORWARDED_BOUNCES = frozenset(
    {
        "36DAE068-34EA-4F98-9B94-1E6F7F936BE8@example.jp",
        "290019D9-D222-4AE6-88F5-284599074462@example.jp",
    }
)

SETTINGS = LoopGuardSettings(
    own_addresses=frozenset({"escalations@support.example.net"}),
    own_domains_for_message_ids=frozenset({"gateway.support.example.net"}),
)


def _decode(value: object) -> str:
    try:
        text = str(email.header.make_header(email.header.decode_header(str(value))))
    except (UnicodeError, LookupError, ValueError, email.errors.HeaderParseError):
        text = str(value)
    return " ".join(text.split())


def _stdlib_parse(raw: bytes) -> ParsedMail:
    """Minimal ParsedMail for when the production parser is not available."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)

    def addresses(name: str) -> tuple[Address, ...]:
        values = [_decode(v) for v in msg.get_all(name, [])]
        return tuple(Address(n, a.lower()) for n, a in email.utils.getaddresses(values))

    def ids(name: str) -> tuple[str, ...]:
        return tuple(t.strip("<>") for t in _decode(msg.get(name, "")).split() if "@" in t)

    froms = addresses("from")
    mid = ids("message-id")
    return ParsedMail(
        from_=froms[0] if froms else None,
        to=addresses("to"),
        cc=addresses("cc"),
        reply_to=addresses("reply-to"),
        subject=_decode(msg.get("subject", "")),
        message_id=mid[0] if mid else "",
        in_reply_to=ids("in-reply-to"),
        references=ids("references"),
        date=None,
        text="",
        html="",
        attachment_names=(),
        headers=tuple((k.lower(), _decode(v)) for k, v in msg.items()),
        parsed_by="stdlib",
    )


def _parser() -> Callable[[bytes], ParsedMail]:
    try:
        from parsers.mail import parse_mail
    except ImportError:
        return _stdlib_parse
    parse: Callable[[bytes], ParsedMail] = parse_mail
    return parse


def _require(path: Path) -> None:
    if not path.is_dir():
        pytest.skip(f"shared corpus is not beside the checkout (expected {path})")


def _sisimai_bounces() -> Iterator[tuple[str, bytes]]:
    maildir = SISIMAI / "maildir"
    for path in sorted(maildir.rglob("*")):
        if path.is_file() and path.parent.name != "not":
            yield str(path.relative_to(SISIMAI)), path.read_bytes()
    for folder in sorted(SISIMAI.glob("to-be-*")):
        for path in sorted(folder.rglob("*.eml")):
            yield str(path.relative_to(SISIMAI)), path.read_bytes()
    for mbox_path in sorted((SISIMAI / "mailbox").glob("mbox-*")):
        box = mailbox.mbox(mbox_path, create=False)
        try:
            # get_bytes keeps the stored bytes; as_bytes() would re-serialise.
            for index, key in enumerate(box.keys()):
                yield f"{mbox_path.relative_to(SISIMAI)}#{index}", box.get_bytes(key)
        finally:
            box.close()


def _check_all_blocked(messages: Iterator[tuple[str, bytes]]) -> Counter[str]:
    parse = _parser()
    stats: Counter[str] = Counter()
    missed: list[str] = []
    for name, raw in messages:
        mail = parse(raw)
        reason = auto_reply_block_reason(mail, None, SETTINGS)
        if mail.message_id in PERSON_FORWARDED_BOUNCES:
            assert reason is None, f"{name}: a person's forward was refused: {reason}"
            stats["allowed: person forwarding a bounce"] += 1
        elif reason is None:
            missed.append(f"{name}: {mail.subject!r}")
        else:
            stats[reason] += 1
    total = sum(stats.values()) + len(missed)
    print(f"\n{total} messages ({parse.__module__}), {len(missed)} wrongly allowed")
    for reason, count in stats.most_common():
        print(f"{count:5d}  {reason}")
    assert not missed, "allowed an auto-reply to:\n" + "\n".join(missed)
    return stats


def test_every_sisimai_bounce_is_blocked() -> None:
    _require(SISIMAI)
    stats = _check_all_blocked(_sisimai_bounces())
    assert sum(stats.values()) > 700


def test_sisimai_not_bounce_folder_is_allowed() -> None:
    _require(SISIMAI)
    paths = sorted((SISIMAI / "maildir" / "not").glob("*.eml"))
    assert paths
    parse = _parser()
    for path in paths:
        reason = auto_reply_block_reason(parse(path.read_bytes()), None, SETTINGS)
        assert reason is None, f"{path.name}: {reason}"


@pytest.mark.parametrize("folder", ["bounce", "complaints"])
def test_every_flanker_report_is_blocked(folder: str) -> None:
    _require(FLANKER / folder)
    paths = sorted((FLANKER / folder).rglob("*.eml"))
    assert paths
    _check_all_blocked((str(p.relative_to(FLANKER)), p.read_bytes()) for p in paths)
