"""Personal reply tokens: proof that a reply answers mail we sent to that person.

A lead's From address is easy to forge, so a command must also carry a token that
only mail to that lead held. Each staff mail gets its own token, bound to the case
and to the one address it is sent to:

    token = nonce + HMAC-SHA256(secret, case key, recipient address, nonce)[:12]

with a fresh random nonce per mail (8 hex digits). A token therefore works only for
its case and only from the address it was issued to: a colleague's token, or one
lifted from a mail someone copied to a customer, does not let anyone command as
somebody else. Tokens travel in a plus-address Reply-To (`support+ESC-000001.<token>@`)
and in the Message-ID, which replies copy into In-Reply-To and References.

Rotation: every mail brings a new token, so a single one can be withdrawn without
cutting its holder off. `gateway/leads/token_retirement.py` retires the tokens of a
mail that was copied to someone outside the case; the next gateway mail to the lead
carries a fresh one. Changing `[leads] token_secret` voids every token at once.
Tokens of the old shape (12 hex digits, one per case, the same for everyone) are
recognised only to refuse them with that reason.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.config import GatewayConfig
from store.db import Store
from store.models import Setting

NONCE_LENGTH = 8
MAC_LENGTH = 12
TOKEN_LENGTH = NONCE_LENGTH + MAC_LENGTH
LEGACY_TOKEN_LENGTH = 12
_SECRET_KEY = "reply_token_secret"


def load_or_create_secret(session: Session, configured: str = "") -> str:
    """The configured secret, else one generated once and kept in the store."""
    if configured:
        return configured
    row = session.scalar(select(Setting).where(Setting.key == _SECRET_KEY))
    if row is None:
        row = Setting(key=_SECRET_KEY, value=secrets.token_hex(32))
        session.add(row)
        session.flush()
    return row.value


def ensure_token_secret(store: Store, config: GatewayConfig) -> None:
    """Make sure the generated secret exists; safe when several processes start at once."""
    if config.leads.resolved_secret():
        return
    try:
        with store.transaction() as session:
            load_or_create_secret(session)
    except IntegrityError:
        pass  # another process created it first; that one is the secret


def tokens_from_store(session: Session, config: GatewayConfig) -> ReplyTokens:
    secret = load_or_create_secret(session, config.leads.resolved_secret())
    return ReplyTokens(secret, config.case_key_prefix)


@dataclass(frozen=True)
class FoundToken:
    """A case key and token as written in a mail (lower-case token)."""

    case_key: str
    token: str

    @property
    def legacy(self) -> bool:
        """The old shape: one token per case, not bound to anybody."""
        return len(self.token) == LEGACY_TOKEN_LENGTH


@dataclass(frozen=True)
class ReplyTokens:
    secret: str
    key_prefix: str

    def _mac(self, case_key: str, address: str, nonce: str) -> str:
        message = "\n".join((case_key.upper(), address.strip().lower(), nonce.lower()))
        digest = hmac.new(self.secret.encode(), message.encode(), hashlib.sha256)
        return digest.hexdigest()[:MAC_LENGTH]

    def token(self, case_key: str, address: str, nonce: str | None = None) -> str:
        """A new token for mail to `address` about `case_key` (nonce given: that one)."""
        nonce = nonce if nonce is not None else secrets.token_hex(NONCE_LENGTH // 2)
        return nonce + self._mac(case_key, address, nonce)

    def tagged(self, case_key: str, token: str) -> str:
        """`ESC-000001.<token>`: what goes into reply addresses and Message-IDs."""
        return f"{case_key}.{token}"

    def reply_address(self, case_key: str, token: str, mailbox: str) -> str:
        local, _, domain = mailbox.partition("@")
        return f"{local}+{self.tagged(case_key, token)}@{domain}"

    def _pattern(self) -> re.Pattern[str]:
        return re.compile(
            rf"\b({re.escape(self.key_prefix)}-\d{{3,}})[.\-]"
            rf"([0-9a-f]{{{TOKEN_LENGTH}}}|[0-9a-f]{{{LEGACY_TOKEN_LENGTH}}})\b",
            re.IGNORECASE,
        )

    def found(self, places: Iterable[str]) -> tuple[FoundToken, ...]:
        """Every case key written with something shaped like a token, valid or not."""
        pattern = self._pattern()
        seen: dict[FoundToken, None] = {}
        for text in places:
            for match in pattern.finditer(text):
                seen.setdefault(FoundToken(match.group(1).upper(), match.group(2).lower()), None)
        return tuple(seen)

    def issued_to(self, found: FoundToken, address: str) -> bool:
        """Whether the token was made by us for this case and this address."""
        if found.legacy:
            return False
        nonce, mac = found.token[:NONCE_LENGTH], found.token[NONCE_LENGTH:]
        return hmac.compare_digest(mac, self._mac(found.case_key, address, nonce))

    def holder(self, found: FoundToken, candidates: Iterable[str]) -> str | None:
        """Which of these addresses the token was issued to, if any."""
        return next((a.lower() for a in candidates if self.issued_to(found, a)), None)

    def legacy_valid(self, found: FoundToken) -> bool:
        """An old per-case token that this secret did make."""
        digest = hmac.new(self.secret.encode(), found.case_key.encode(), hashlib.sha256)
        return found.legacy and hmac.compare_digest(
            found.token, digest.hexdigest()[:LEGACY_TOKEN_LENGTH]
        )

    def only_own(self, message_ids: Iterable[str], address: str) -> tuple[str, ...]:
        """The ids without those carrying a token issued to somebody else.

        Staff mail threads under earlier case mail; an earlier mail to a colleague has
        the colleague's token in its Message-ID, which must not travel in References.
        """
        kept = []
        for message_id in message_ids:
            tokens = self.found([message_id])
            if all(self.issued_to(t, address) for t in tokens):
                kept.append(message_id)
        return tuple(kept)
