"""Strip quoted history and phone signatures from a reply, keeping only the new text.

Engine choice: an ordered list of line-level cut markers written here, not
``mail-parser-reply``.  That library (1.36) was measured against the reply
samples in tests/test_reply_text.py and got 18 of 28 right: it missed Spanish,
Dutch and Finnish attribution lines, French headers written with a no-break
space before the colon, bare ``>`` quoted lines, and phone footers such as
"Sent from my iPhone" (its signature stripping, which would catch those, also
eats ordinary "Regards," sign-offs).  It also strips the indentation of every
line, which damages pasted stack traces.  Patching all of that around it would
have cost more than the few patterns below.

Rules, applied top to bottom over the lines of the body:
* the first line that starts quoted history cuts everything from there on
  (attribution lines, "Original Message" banners, Outlook header blocks, an
  underscore rule followed by a header block, phone signatures);
* ``>``-quoted lines above the cut are dropped, so inline answers survive.
"""

from __future__ import annotations

import re

__all__ = ["extract_new_text"]

# Verbs used by mail clients in "On <date>, <who> wrote:" across languages.
_WROTE = (
    r"wrote|writes|schrieb|a\s+écrit|a\s+ecrit|escribió|escribio|schreef|skrev|skrevet|"
    r"kirjoitti|scrisse|ha\s+scritto|escreveu|napisał|napisal|написал|написала|"
    r"napsal|írta|yazd\u0131"
)
_ATTRIBUTION = re.compile(
    # A date (a digit) and the verb, ending with a colon: "As I wrote:" does not qualify.
    rf"^(?=.*\d).{{0,300}}\b(?:{_WROTE})\b.{{0,200}}:\s*$",
    re.IGNORECASE,
)

_BANNER = re.compile(
    r"^\s*-{2,}\s*(?:original\s+message|forwarded\s+message|ursprüngliche\s+nachricht|"
    r"weitergeleitete\s+nachricht|message\s+d'origine|message\s+transféré|mensaje\s+original|"
    r"mensaje\s+reenviado|oorspronkelijk\s+bericht|doorgestuurd\s+bericht|"
    r"originalmeddelande|ursprungligt\s+meddelande|opprinnelig\s+melding|"
    r"original\s+meddelelse|oprindelig\s+meddelelse|alkuperäinen\s+viesti|"
    r"messaggio\s+originale|mensagem\s+original)\s*-{2,}",
    re.IGNORECASE,
)

_FROM_LABELS = r"from|von|de|van|från|fra|lähettäjä|da|od|от"
_OTHER_LABELS = (
    r"sent|date|to|cc|subject|gesendet|datum|an|betreff|envoyé|envoye|à|a|objet|"
    r"enviado|fecha|para|asunto|verzonden|aan|onderwerp|skickat|till|ämne|sendt|til|emne|"
    r"lähetetty|päivämäärä|vastaanottaja|aihe|inviato|oggetto|data|kopie|kopia"
)
# Outlook bolds the labels, which survive HTML conversion as "*From:*".
_FROM_LINE = re.compile(rf"^\s*\*?(?:{_FROM_LABELS})\s?:\*?\s*\S", re.IGNORECASE)
_HEADER_LINE = re.compile(rf"^\s*\*?(?:{_OTHER_LABELS})\s?:\*?(?:\s|$)", re.IGNORECASE)
_UNDERSCORE_RULE = re.compile(r"^\s*_{8,}\s*$")

_WORDS = r"\S+(?:[ \t]+\S+){0,3}"  # "my iPhone", "my Samsung Galaxy smartphone"
# Whole-line matches only, so "Sent from my laptop, the logs show..." stays.
_PHONE_SIGNATURE = re.compile(
    rf"^\s*(?:sent\s+from\s+my\s+{_WORDS}|sent\s+from\s+(?:outlook|mail|yahoo\s+mail)\s+for\s+\S+|"
    r"get\s+outlook\s+for\s+(?:ios|android)|"
    rf"von\s+meinem\s+{_WORDS}\s+gesendet|gesendet\s+von\s+meinem\s+{_WORDS}|"
    rf"envoyé\s+de\s+mon\s+{_WORDS}|enviado\s+desde\s+mi\s+{_WORDS}|"
    rf"(?:verzonden|verstuurd)\s+vanaf\s+mijn\s+{_WORDS}|skickat\s+från\s+min\s+{_WORDS}|"
    r"sendt\s+fra\s+min\s+\S+|lähetetty\s+\S+sta)"
    r"(?:\s*<[^>]*>)?\s*$",
    re.IGNORECASE,
)
_QUOTED = re.compile(r"^\s*>")

# Outlook puts From/Sent/To/Subject within a few lines; fewer means prose, not a header block.
_HEADER_WINDOW = 4


def extract_new_text(text: str) -> str:
    """Return the new text of a reply body, or "" when it holds nothing but history."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cut = _first_cut(lines)
    kept = [line.rstrip() for line in lines[:cut] if not _QUOTED.match(line)]
    return "\n".join(kept).strip("\n").strip()


def _first_cut(lines: list[str]) -> int:
    for index, line in enumerate(lines):
        if _starts_history(lines, index, line):
            return index
    return len(lines)


def _starts_history(lines: list[str], index: int, line: str) -> bool:
    if not line.strip():
        return False
    if _BANNER.match(line) or _PHONE_SIGNATURE.match(line):
        return True
    if _is_attribution(lines, index):
        return True
    if _FROM_LINE.match(line) and _header_block_follows(lines, index + 1):
        return True
    if _UNDERSCORE_RULE.match(line):
        following = _next_non_blank(lines, index + 1)
        return following is not None and bool(_FROM_LINE.match(lines[following]))
    return False


def _is_attribution(lines: list[str], index: int) -> bool:
    line = lines[index].lstrip("> ")
    if _ATTRIBUTION.match(line):
        return True
    # Gmail wraps long attribution lines, often right inside the address.
    if index + 1 >= len(lines) or _ends_sentence(line):
        return False
    following = lines[index + 1].lstrip("> ").strip()
    if not following or _ATTRIBUTION.match(following):
        return False  # the next line is the attribution on its own
    return _ATTRIBUTION.match(f"{line.rstrip()} {following}") is not None


def _ends_sentence(line: str) -> bool:
    return line.rstrip().endswith((".", "!", "?"))


def _header_block_follows(lines: list[str], start: int) -> bool:
    window = lines[start : start + _HEADER_WINDOW]
    return any(_HEADER_LINE.match(candidate) for candidate in window)


def _next_non_blank(lines: list[str], start: int) -> int | None:
    for index in range(start, len(lines)):
        if lines[index].strip():
            return index
    return None
