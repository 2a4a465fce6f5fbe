"""What a failed delivery attempt means: give up now, or try again later and when.

RFC 5321 (4.2.1) makes a 5yz reply permanent: the same transaction will fail again,
so retrying only delays the dead letter and hides the reason. Only replies about the
mail itself count: MAIL FROM, RCPT TO and the end of DATA. A 5yz while connecting
(EHLO, STARTTLS, AUTH: a wrong password, a smarthost that is not ours) is no fault
of the mail, and every mail would die of it, so that is retried like a network error.
"""

from __future__ import annotations

import smtplib
from dataclasses import dataclass

# Longest reason kept with a mail: a smarthost's reply can be long and multi-line.
_REASON_CHARS = 1000


@dataclass(frozen=True)
class Failure:
    reason: str
    permanent: bool


def _is_permanent(code: int) -> bool:
    return 500 <= code <= 599


def _reply(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    return f"{code} {' '.join(text.split())}"


def classify(exc: BaseException) -> Failure:
    """Permanent for a 5yz about this mail; transient for 4yz, network and session errors."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        replies = exc.recipients.items()
        detail = "; ".join(f"{rcpt}: {_reply(code, msg)}" for rcpt, (code, msg) in replies)
        permanent = bool(replies) and all(
            _is_permanent(code) for code, _ in exc.recipients.values()
        )
        return _failure("recipients refused", detail, permanent)
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return _failure(
            "sender refused", _reply(exc.smtp_code, exc.smtp_error), _is_permanent(exc.smtp_code)
        )
    if isinstance(exc, smtplib.SMTPDataError):
        return _failure(
            "message refused", _reply(exc.smtp_code, exc.smtp_error), _is_permanent(exc.smtp_code)
        )
    return _failure(type(exc).__name__, str(exc), False)


def _failure(what: str, detail: str, permanent: bool) -> Failure:
    kind = "permanent" if permanent else "temporary"
    return Failure(f"{kind}: {what}: {detail}"[:_REASON_CHARS], permanent)


def partial_refusal(refused: dict[str, tuple[int, bytes]]) -> str:
    """The note kept on a mail that went out to some of its recipients only."""
    detail = "; ".join(f"{rcpt}: {_reply(code, msg)}" for rcpt, (code, msg) in refused.items())
    return f"sent, but refused for: {detail}"[:_REASON_CHARS]
