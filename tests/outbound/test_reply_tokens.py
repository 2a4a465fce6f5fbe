"""Reply tokens: valid for their own case and their own recipient only, and unguessable
without the secret."""

from __future__ import annotations

from gateway.outbound.tokens import FoundToken, ReplyTokens

LEE = "lee.lead@example.com"


def test_token_round_trip_and_cross_case_refusal() -> None:
    tokens = ReplyTokens(secret="s3cret", key_prefix="ESC")
    token = tokens.token("ESC-000001", LEE)
    address = tokens.reply_address("ESC-000001", token, "support@example.com")
    assert address.startswith("support+ESC-000001.")
    [found] = tokens.found([address])
    assert tokens.issued_to(found, LEE)
    other = tokens.tagged("ESC-000002", tokens.token("ESC-000002", LEE))
    [forged] = tokens.found([other.replace("ESC-000002", "ESC-000001")])
    assert not tokens.issued_to(forged, LEE)
    [in_id] = tokens.found([f"<{other}.abc@example.com>"])
    assert in_id.case_key == "ESC-000002" and tokens.issued_to(in_id, LEE)


def test_token_is_bound_to_its_recipient_and_fresh_per_mail() -> None:
    tokens = ReplyTokens(secret="s3cret", key_prefix="ESC")
    first, second = tokens.token("ESC-000001", LEE), tokens.token("ESC-000001", LEE)
    assert first != second  # a new nonce per mail
    found = FoundToken("ESC-000001", first)
    assert tokens.issued_to(found, "Lee.Lead@Example.com")  # addresses compare as mail does
    assert not tokens.issued_to(found, "anna.am@example.com")
    assert tokens.holder(found, ["anna.am@example.com", LEE]) == LEE


def test_another_secret_gives_other_tokens() -> None:
    ours = ReplyTokens(secret="a", key_prefix="ESC")
    theirs = ReplyTokens(secret="b", key_prefix="ESC")
    [found] = theirs.found([ours.tagged("ESC-000001", ours.token("ESC-000001", LEE))])
    assert not theirs.issued_to(found, LEE)
    assert theirs.found(["Re: [ESC-000001] no token here"]) == ()


def test_old_shared_tokens_are_recognised_but_never_valid() -> None:
    tokens = ReplyTokens(secret="s3cret", key_prefix="ESC")
    [old] = tokens.found(["support+ESC-000001.0123456789ab@example.com"])
    assert old.legacy and not tokens.issued_to(old, LEE)


def test_only_own_drops_ids_carrying_someone_elses_token() -> None:
    tokens = ReplyTokens(secret="s3cret", key_prefix="ESC")
    mine = f"{tokens.tagged('ESC-000001', tokens.token('ESC-000001', LEE))}.1@example.com"
    theirs = f"{tokens.tagged('ESC-000001', tokens.token('ESC-000001', 'x@example.com'))}.2@e"
    plain = "abc@acme.example"
    assert tokens.only_own([plain, theirs, mine], LEE) == (plain, mine)
