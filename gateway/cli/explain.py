"""`explain`: every rule and the decision for one mail, changing nothing."""

from __future__ import annotations

import argparse

from gateway.classify.classifier import Classifier
from gateway.cli import case_views as views
from gateway.cli.common import AddCommand, UserError, open_store, print_json
from gateway.cli.ingest import _read_input
from gateway.config import GatewayConfig
from parsers.mail import parse_mail
from parsers.model import UnparseableMail


def cmd_explain(args: argparse.Namespace, config: GatewayConfig, source: str) -> int:
    raw = _read_input(args.file)
    try:
        mail = parse_mail(raw)
    except UnparseableMail as exc:
        raise UserError(f"{args.file}: cannot be parsed: {exc}") from None
    store = open_store(config)
    with store.session() as session:
        decision = Classifier(config).classify(session, mail, args.mail_from)
        result = decision.as_dict()
        session.rollback()  # explain never changes anything
    if args.json:
        print_json(result)
    else:
        print(views.format_explanation(result, mail.subject))
    return 0


def register(add: AddCommand) -> None:
    p = add(
        "explain",
        cmd_explain,
        "show every rule and the decision for a mail, changing nothing",
        "escalation-gateway explain some.eml --json",
    )
    p.add_argument("file", help="message file, or - for stdin")
    p.add_argument("--from", dest="mail_from", default=None, help="envelope sender, if known")
    p.add_argument("--json", action="store_true")
