"""Every message of the shared public corpus must parse, or fail only with UnparseableMail."""

from __future__ import annotations

import mailbox
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from parsers import ParsedMail, UnparseableMail, parse_mail

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
NOT_MAIL = {"README.md", "LICENSE"}


def corpus_messages() -> Iterator[tuple[str, bytes]]:
    for path in sorted(CORPUS.rglob("*")):
        if not path.is_file() or path.name in NOT_MAIL or path.suffix == ".json":
            continue
        name = str(path.relative_to(CORPUS))
        if path.name.startswith("mbox-"):
            box = mailbox.mbox(path, create=False)
            try:
                for key in box.iterkeys():
                    yield f"{name}#{key}", box.get_bytes(key)
            finally:
                box.close()
        else:
            yield name, path.read_bytes()


def test_whole_corpus_parses(capsys: pytest.CaptureFixture[str]) -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus is not beside the checkout (looked for {CORPUS})")

    outcomes: Counter[str] = Counter()
    unparseable: list[str] = []
    for name, raw in corpus_messages():
        try:
            mail = parse_mail(raw)
        except UnparseableMail as exc:
            outcomes["unparseable"] += 1
            unparseable.append(f"{name}: {exc}")
            continue
        assert isinstance(mail, ParsedMail), name
        mail.text.encode("utf-8")  # no lone surrogates reach downstream sinks
        mail.subject.encode("utf-8")
        outcomes[mail.parsed_by] += 1

    total = sum(outcomes.values())
    assert total > 0, "corpus folder exists but holds no messages"
    with capsys.disabled():
        print(
            f"\ncorpus: {total} messages, {outcomes['mail-parser']} by mail-parser, "
            f"{outcomes['stdlib']} fell back to stdlib, {outcomes['unparseable']} unparseable"
        )
        for line in unparseable:
            print(f"  unparseable {line}")
    # The fallback is for the odd broken message, not the normal path.
    assert outcomes["mail-parser"] > 0.9 * total
