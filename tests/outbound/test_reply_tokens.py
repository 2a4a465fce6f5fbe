"""Reply tokens: valid for their own case only, and unguessable without the secret."""

from __future__ import annotations

from gateway.outbound.tokens import ReplyTokens


def test_token_round_trip_and_cross_case_refusal() -> None:
    tokens = ReplyTokens(secret="s3cret", key_prefix="ESC")
    address = tokens.reply_address("ESC-000001", "support@example.com")
    assert address.startswith("support+ESC-000001.")
    assert tokens.found([address]) == {"ESC-000001": True}
    other = tokens.tagged("ESC-000002")
    forged = other.replace("ESC-000002", "ESC-000001")
    assert tokens.found([forged]) == {"ESC-000001": False}
    assert tokens.found([f"<{other}.abc@example.com>"]) == {"ESC-000002": True}


def test_another_secret_gives_other_tokens() -> None:
    ours = ReplyTokens(secret="a", key_prefix="ESC").tagged("ESC-000001")
    theirs = ReplyTokens(secret="b", key_prefix="ESC")
    assert theirs.found([ours]) == {"ESC-000001": False}
    assert theirs.found(["Re: [ESC-000001] no token here"]) == {}
