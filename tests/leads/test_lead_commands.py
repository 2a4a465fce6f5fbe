"""The lead command language, parsed from a reply's new text."""

from __future__ import annotations

from datetime import datetime, timedelta

from gateway.leads.commands import HELP_TEXT, parse_commands


def test_leading_key_value_lines_are_commands_and_the_rest_is_text() -> None:
    parsed = parse_commands(
        "Status: Investigating\n"
        "NOTE: We found the cause and are testing a fix.\n"
        "eta: 4h\n"
        "next update: 2h\n"
        "\n"
        "Jane, can you double-check the staging logs?\n"
        "status: this is prose now\n"
    )
    assert [c.name for c in parsed.commands] == ["status", "note", "eta", "next_update"]
    assert parsed.commands[0].status == "investigating"
    assert parsed.commands[1].value == "We found the cause and are testing a fix."
    assert parsed.commands[2].duration == timedelta(hours=4)
    assert parsed.commands[3].duration == timedelta(hours=2)
    assert parsed.errors == ()
    assert parsed.free_text.startswith("Jane, can you double-check")


def test_bare_commands_and_absolute_eta() -> None:
    parsed = parse_commands("ack\n**Resolve**\neta: 2026-11-24 15:00\nhelp\n")
    assert [c.name for c in parsed.commands] == ["ack", "resolve", "eta", "help"]
    assert parsed.commands[2].when == datetime(2026, 11, 24, 15, 0)


def test_invalid_values_are_reported_with_their_reason() -> None:
    parsed = parse_commands(
        "level: 5\nstatus: sleeping\neta: whenever\nfrobnicate: now\n"
        "owner:\nsend: later\nlevel: 3\n"
    )
    assert [c.name for c in parsed.commands] == ["level"]
    assert parsed.commands[0].level == 3
    reasons = [e.reason for e in parsed.errors]
    assert reasons == [
        "level must be 1, 2, 3 or 4, not '5'",
        "unknown status 'sleeping'; use one of acknowledged, investigating, resolved, waiting",
        "'whenever' is neither a time like 2026-11-24 15:00 nor a duration like 4h",
        "unknown command 'frobnicate'",
        "owner needs a value",
        "send takes the value 'now', not 'later'",
    ]


def test_plain_prose_has_no_commands() -> None:
    parsed = parse_commands("Thanks, I called the customer and we agreed on a workaround.\n")
    assert parsed.empty
    assert parsed.free_text.startswith("Thanks, I called")


def test_greeting_with_a_comma_ends_the_block() -> None:
    parsed = parse_commands("Hi team,\nstatus: resolved\n")
    assert parsed.empty


def test_help_text_documents_every_command() -> None:
    for word in (
        "status:",
        "note:",
        "send: now",
        "internal:",
        "eta:",
        "owner:",
        "level:",
        "next update:",
        "ack",
        "resolve",
        "close",
        "reopen",
        "help",
    ):
        assert word in HELP_TEXT
