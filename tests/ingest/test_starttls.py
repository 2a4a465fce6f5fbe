"""STARTTLS on the SMTP listener, with a self-signed certificate and smtplib's starttls."""

from __future__ import annotations

import smtplib
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.clock import FakeClock
from gateway.config import ConfigError, GatewayConfig
from gateway.ingest.smtp import InboundHandler, RecipientPolicy, SmtpListener
from store.db import Store
from store.models import InboundItem
from tests.conftest import make_config
from tests.support.mails import build_mail

MAIL = build_mail(subject="URGENT: over TLS")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def start(store: Store, clock: FakeClock, config: GatewayConfig) -> SmtpListener:
    listener = SmtpListener(config.smtp, InboundHandler(store, clock, RecipientPolicy(config.smtp)))
    listener.start()
    return listener


@pytest.fixture
def tls_listener(
    store: Store, clock: FakeClock, certificate: tuple[Path, Path]
) -> Iterator[tuple[SmtpListener, ssl.SSLContext]]:
    cert, key = certificate
    config = make_config(
        store, smtp={"tls_cert_file": str(cert), "tls_key_file": str(key), "require_starttls": True}
    )
    listener = start(store, clock, config)
    # The client checks the server's certificate against the one we made.
    client_context = ssl.create_default_context(cafile=str(cert))
    yield listener, client_context
    listener.stop()


def test_mail_after_starttls_is_stored(
    tls_listener: tuple[SmtpListener, ssl.SSLContext], store: Store
) -> None:
    listener, context = tls_listener
    with smtplib.SMTP("localhost", listener.port, timeout=10) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        client.starttls(context=context)
        client.ehlo()
        assert client.sock is not None
        assert client.sock.version() in {"TLSv1.2", "TLSv1.3"}  # type: ignore[attr-defined]
        assert client.sendmail("alice@acme.example", ["support@example.com"], MAIL) == {}
    with store.session() as session:
        assert [item.raw for item in session.scalars(select(InboundItem))] == [MAIL]


def test_require_starttls_refuses_plain_mail(
    tls_listener: tuple[SmtpListener, ssl.SSLContext], store: Store
) -> None:
    listener, _ = tls_listener
    with smtplib.SMTP("localhost", listener.port, timeout=10) as client:
        client.ehlo()
        code, message = client.mail("alice@acme.example")
    assert code == 530
    assert b"STARTTLS" in message


def test_without_a_certificate_no_starttls_is_offered(store: Store, clock: FakeClock) -> None:
    listener = start(store, clock, make_config(store))
    try:
        with smtplib.SMTP("127.0.0.1", listener.port, timeout=10) as client:
            client.ehlo()
            assert not client.has_extn("starttls")
    finally:
        listener.stop()


def test_an_unreadable_certificate_is_one_config_error(
    store: Store, clock: FakeClock, tmp_path: Path
) -> None:
    config = make_config(store, smtp={"tls_cert_file": str(tmp_path / "missing.pem")})
    handler = InboundHandler(store, clock, RecipientPolicy(config.smtp))
    with pytest.raises(ConfigError) as error:
        SmtpListener(config.smtp, handler)
    assert error.value.key == "smtp.tls_cert_file"
    assert "missing.pem" in str(error.value)
