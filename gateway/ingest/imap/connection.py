"""Open an authenticated IMAP connection and name what went wrong when it fails.

Every expected failure (refused, timed out, TLS trouble, bad credentials, vanished
folder, dropped connection) becomes an `ImapFailure` with a one-line reason, so the
watcher can log it plainly and retry instead of printing a traceback.
"""

from __future__ import annotations

import imaplib
import ipaddress
import logging
import ssl
from typing import Literal

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError
from imapclient.imapclient import SocketTimeout

from gateway.config.imap import ImapMailboxConfig

log = logging.getLogger("gateway.imap")

FailureKind = Literal["auth", "connection", "folder", "protocol"]


class ImapFailure(Exception):
    """An expected IMAP problem; `str()` is the one line an admin needs."""

    def __init__(self, kind: FailureKind, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind


def _text(exc: BaseException) -> str:
    # imaplib wraps server text as bytes in str form ("b'...'"); show the words only.
    text = str(exc).strip() or type(exc).__name__
    if text.startswith(("b'", 'b"')) and text.endswith(("'", '"')):
        text = text[2:-1]
    return text


def classify(exc: BaseException) -> ImapFailure | None:
    """The ImapFailure an exception stands for, or None if it is a bug."""
    if isinstance(exc, ImapFailure):
        return exc
    if isinstance(exc, LoginError):
        return ImapFailure("auth", f"login refused: {_text(exc)}")
    if isinstance(exc, TimeoutError):
        return ImapFailure("connection", "timed out")
    if isinstance(exc, ssl.SSLError):
        return ImapFailure("connection", f"TLS failed: {_text(exc)}")
    if isinstance(exc, OSError):
        return ImapFailure("connection", _text(exc))
    if isinstance(exc, imaplib.IMAP4.abort):
        return ImapFailure("connection", f"connection lost: {_text(exc)}")
    if isinstance(exc, IMAPClientError | imaplib.IMAP4.error):
        return ImapFailure("protocol", f"server said: {_text(exc)}")
    return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _tls_context(config: ImapMailboxConfig) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=config.ca_file or None)


def connect(config: ImapMailboxConfig) -> IMAPClient:
    """A logged-in client; raises ImapFailure on any expected problem."""
    timeout = config.timeout.total_seconds()
    try:
        client = IMAPClient(
            config.host,
            port=config.effective_port,
            ssl=config.security == "tls",
            ssl_context=_tls_context(config) if config.security == "tls" else None,
            timeout=SocketTimeout(connect=timeout, read=timeout),
        )
    except Exception as exc:
        raise (classify(exc) or exc) from None
    try:
        if config.security == "starttls":
            client.starttls(_tls_context(config))
        elif config.security == "none" and not _is_loopback(config.host):
            log.warning("%s: password sent without TLS (security = none)", config.describe())
        _authenticate(client, config)
    except BaseException as exc:
        client.shutdown()
        failure = classify(exc)
        if failure is None:
            raise
        raise failure from None
    return client


def _authenticate(client: IMAPClient, config: ImapMailboxConfig) -> None:
    try:
        secret = config.secret()
    except OSError as exc:
        which = "oauth2_token_file" if config.oauth2_token_file else "password_file"
        raise ImapFailure("auth", f"cannot read {which}: {exc.strerror}") from None
    if config.oauth2_token_file:
        client.oauth2_login(config.username, secret)
    else:
        client.login(config.username, secret)


def close(client: IMAPClient) -> None:
    """Log out politely if the connection still works, else just drop it."""
    try:
        client.logout()
    except Exception:
        try:
            client.shutdown()
        except Exception as exc:  # already closed; nothing left to release
            log.debug("shutdown after failed logout: %s", exc)
