"""Examples for nested commands' --help (top-level commands get theirs when added)."""

from __future__ import annotations

import argparse

# Examples for the nested commands (the top-level ones get theirs where they are added).
EXAMPLES = {
    "cases list": "escalation-gateway cases list --state open --json",
    "cases show": "escalation-gateway cases show ESC-000042",
    "cases note": 'escalation-gateway cases note ESC-000042 "Fix deployed to staging"',
    "cases set-state": "escalation-gateway cases set-state ESC-000042 investigating",
    "quarantine list": "escalation-gateway quarantine list --json",
    "quarantine replay": "escalation-gateway quarantine replay 17 18  |  ... replay --all",
}


def add_examples(parser: argparse.ArgumentParser, root: str | None = None) -> None:
    """Give every nested command's --help an example, without touching each definition."""
    root = root or parser.prog
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for name, child in action.choices.items():
            path = child.prog.removeprefix(root).strip()
            example = EXAMPLES.get(path)
            if example and not child.epilog:
                child.epilog = f"example: {example}"
            if not child.description:
                child.description = next(
                    (c.help for c in action._choices_actions if c.dest == name), None
                )
            add_examples(child, root)
