from __future__ import annotations

import pytest

from parsers import extract_new_text, html_to_text

OUTLOOK_HEADERS = (
    "From: Support <support@example.com>\n"
    "Sent: Monday, January 8, 2024 10:15 AM\n"
    "To: Bob <bob@example.com>\n"
    "Subject: RE: crash\n\nHello Bob\n"
)

REPLIES = {
    "gmail": (
        "Thanks, that fixed it.\n\nOn Mon, Jan 8, 2024 at 10:15 AM Jane Doe <jane@example.com> "
        "wrote:\n> Please try restarting.\n> Jane\n",
        "Thanks, that fixed it.",
    ),
    "gmail-split-in-address": (
        "Works now.\n\nOn Mon, Jan 8, 2024 at 10:15 AM Jane Doe <\njane@example.com> wrote:\n\n"
        "> Please try.\n",
        "Works now.",
    ),
    "gmail-split-before-address": (
        "Works now.\n\nOn Mon, Jan 8, 2024 at 10:15 AM Jane Doe\n<jane@example.com> wrote:\n\n"
        "> Please try.\n",
        "Works now.",
    ),
    "outlook-original-message": (
        "See attached log.\n\n-----Original Message-----\n" + OUTLOOK_HEADERS,
        "See attached log.",
    ),
    "outlook-header-block": ("Still broken.\n\nBob\n\n" + OUTLOOK_HEADERS, "Still broken.\n\nBob"),
    "outlook-underscore-rule": (
        "Still broken after the update.\n\n________________________________\n\n" + OUTLOOK_HEADERS,
        "Still broken after the update.",
    ),
    "outlook-bold-labels": (
        "Escalate please.\n\n*From:* Support <s@example.com>\n*Sent:* Monday\n*To:* Bob\n",
        "Escalate please.",
    ),
    "apple-quoted-attribution": (
        "Yes please.\n\nSent from my iPhone\n\n> On Jan 8, 2024, at 10:15 AM, Jane Doe "
        "<jane@example.com> wrote:\n> \n> Shall I escalate?\n",
        "Yes please.",
    ),
    "apple-plain-attribution": (
        "Yes please.\n\nOn 8 Jan 2024, at 10:15, Jane Doe <jane@example.com> wrote:\n\n"
        "Shall I escalate?\n",
        "Yes please.",
    ),
    "german-am-schrieb": (
        "Danke, das hat geholfen.\n\nAm 08.01.2024 um 10:15 schrieb Jane Doe <jane@example.com>:\n"
        "> Bitte neu starten.\n",
        "Danke, das hat geholfen.",
    ),
    "german-von-gesendet": (
        "Geht immer noch nicht.\n\nVon: Support <support@example.com>\nGesendet: Montag, "
        "8. Januar 2024 10:15\nAn: Bob <bob@example.com>\nBetreff: AW: Absturz\n\nHallo Bob\n",
        "Geht immer noch nicht.",
    ),
    "german-phone": (
        "Passt.\n\nVon meinem iPhone gesendet\n\n> Am 08.01.2024 um 10:15 schrieb Jane:\n",
        "Passt.",
    ),
    "french-le-a-ecrit": (
        "Merci beaucoup.\n\nLe lun. 8 janv. 2024 \u00e0 10:15, Jane Doe <jane@example.com> a "
        "\u00e9crit :\n> Red\u00e9marrez.\n",
        "Merci beaucoup.",
    ),
    "french-de-envoye": (
        "Toujours en panne.\n\nDe\u00a0: Support <support@example.com>\nEnvoy\u00e9\u00a0: lundi "
        "8 janvier 2024 10:15\n\u00c0\u00a0: Bob\nObjet\u00a0: RE: panne\n\nBonjour\n",
        "Toujours en panne.",
    ),
    "spanish-el-escribio": (
        "Gracias.\n\nEl lun, 8 ene 2024 a las 10:15, Jane Doe (<jane@example.com>) "
        "escribi\u00f3:\n> Reinicie.\n",
        "Gracias.",
    ),
    "spanish-de-enviado": (
        "Sigue fallando.\n\nDe: Support <support@example.com>\nEnviado: lunes, 8 de enero de "
        "2024 10:15\nPara: Bob\nAsunto: RE: fallo\n\nHola\n",
        "Sigue fallando.",
    ),
    "dutch-op-schreef": (
        "Bedankt.\n\nOp ma 8 jan. 2024 om 10:15 schreef Jane Doe <jane@example.com>:\n"
        "> Herstart.\n",
        "Bedankt.",
    ),
    "dutch-van-verzonden": (
        "Werkt nog steeds niet.\n\nVan: Support <support@example.com>\nVerzonden: maandag "
        "8 januari 2024 10:15\nAan: Bob\nOnderwerp: RE: storing\n\nHallo\n",
        "Werkt nog steeds niet.",
    ),
    "swedish-skrev": (
        "Tack.\n\nDen m\u00e5n 8 jan. 2024 kl 10:15 skrev Jane Doe <jane@example.com>:\n"
        "> Starta om.\n",
        "Tack.",
    ),
    "swedish-fran-skickat": (
        "Fungerar inte.\n\nFr\u00e5n: Support <support@example.com>\nSkickat: den 8 januari "
        "2024 10:15\nTill: Bob\n\u00c4mne: SV: fel\n\nHej\n",
        "Fungerar inte.",
    ),
    "norwegian-skrev": (
        "Takk.\n\nman. 8. jan. 2024 kl. 10:15 skrev Jane Doe <jane@example.com>:\n> Start.\n",
        "Takk.",
    ),
    "danish-fra-sendt": (
        "Virker ikke.\n\nFra: Support <support@example.com>\nSendt: 8. januar 2024 10:15\n"
        "Til: Bob\nEmne: SV: fejl\n",
        "Virker ikke.",
    ),
    "finnish-kirjoitti": (
        "Kiitos.\n\nma 8. tammik. 2024 klo 10.15 Jane Doe <jane@example.com> kirjoitti:\n"
        "> K\u00e4ynnist\u00e4 uudelleen.\n",
        "Kiitos.",
    ),
    "only-quotes": ("> old text\n> more\n", ""),
    "android-signature": ("OK do it\n\nSent from my Android\n", "OK do it"),
    "outlook-ios-signature": (
        "On my way\n\nGet Outlook for iOS<https://aka.ms/o0ukef>\n"
        "________________________________\nFrom: X\n",
        "On my way",
    ),
    "interleaved-answers": ("Answer one\n> q1\nAnswer two\n> q2\n", "Answer one\nAnswer two"),
    "crlf": ("Done.\r\n\r\nOn Mon, Jan 8, 2024 at 9:00 AM X <x@y.z> wrote:\r\n> a\r\n", "Done."),
}


@pytest.mark.parametrize(("text", "expected"), REPLIES.values(), ids=REPLIES.keys())
def test_quoted_history_is_removed(text: str, expected: str) -> None:
    assert extract_new_text(text) == expected


KEPT_AS_IS = {
    "sign-off": "Hi team,\n\nThe server is down since 9am.\nPlease escalate.\n\nRegards,\nBob",
    "as-i-wrote": "As I wrote:\nthe config is wrong.",
    "from-in-prose": "From: my side everything works.\nThanks",
    "sent-from-laptop-prose": "Sent from my laptop, the logs show errors.\nBob",
    "indented-log": "Trace:\n    at Foo.bar(Foo.java:10)\n    at Main.main(Main.java:3)",
    "bullets": "Steps:\n- restarted\n- cleared cache",
}


@pytest.mark.parametrize("text", KEPT_AS_IS.values(), ids=KEPT_AS_IS.keys())
def test_new_text_without_history_is_untouched(text: str) -> None:
    assert extract_new_text(text) == text


def test_prose_line_with_digits_before_attribution_is_kept() -> None:
    text = "Ticket 123 is still open\nOn Mon, Jan 8, 2024 at 10:15 AM Jane <j@x.com> wrote:\n> hi"
    assert extract_new_text(text) == "Ticket 123 is still open"


def test_html_converted_outlook_reply() -> None:
    html = (
        "<html><body><div>Still failing on <b>all</b> printers.</div><div>Bob</div>"
        '<div style="border-top:solid #E1E1E1 1.0pt"><p><b>From:</b> Support '
        "&lt;support@example.com&gt;<br><b>Sent:</b> Monday, January 8, 2024 10:15 AM<br>"
        "<b>To:</b> Bob<br><b>Subject:</b> RE: Printer</p></div>"
        "<p>Please restart the spooler.</p></body></html>"
    )
    assert extract_new_text(html_to_text(html)) == "Still failing on all printers.\nBob"


def test_empty_input() -> None:
    assert extract_new_text("") == ""
    assert extract_new_text("\n \n") == ""
