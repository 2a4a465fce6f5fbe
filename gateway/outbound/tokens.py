"""Per-case reply tokens: proof that a reply answers mail we sent to staff.

A lead's From address is easy to forge, so a command must also carry the case's
token: an HMAC of the case key under a server secret. Only mail to staff carries it
(in a plus-address Reply-To and in our Message-IDs), so a customer, who never sees
staff mail, cannot lift it from an acknowledgement.
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

TOKEN_LENGTH = 12
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
class ReplyTokens:
    secret: str
    key_prefix: str

    def token(self, case_key: str) -> str:
        digest = hmac.new(self.secret.encode(), case_key.upper().encode(), hashlib.sha256)
        return digest.hexdigest()[:TOKEN_LENGTH]

    def tagged(self, case_key: str) -> str:
        """`ESC-000001.3f9a...`: what goes into reply addresses and Message-IDs."""
        return f"{case_key}.{self.token(case_key)}"

    def reply_address(self, case_key: str, mailbox: str) -> str:
        local, _, domain = mailbox.partition("@")
        return f"{local}+{self.tagged(case_key)}@{domain}"

    def _pattern(self) -> re.Pattern[str]:
        return re.compile(
            rf"\b({re.escape(self.key_prefix)}-\d{{3,}})[.\-]([0-9a-f]{{{TOKEN_LENGTH}}})\b",
            re.IGNORECASE,
        )

    def found(self, places: Iterable[str]) -> dict[str, bool]:
        """Every case key that appears with a token, and whether that token is valid."""
        result: dict[str, bool] = {}
        pattern = self._pattern()
        for text in places:
            for match in pattern.finditer(text):
                case_key = match.group(1).upper()
                valid = hmac.compare_digest(match.group(2).lower(), self.token(case_key))
                result[case_key] = result.get(case_key, False) or valid
        return result
