"""Jinja2 rendering of outgoing mail: a plain-text body and an HTML alternative."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

import templates

PACKAGED_TEMPLATES = Path(templates.__file__).parent


@dataclass(frozen=True)
class RenderedBody:
    text: str
    html: str | None


class Renderer:
    def __init__(self, override_dir: str = "") -> None:
        # An admin's folder is searched first, so they can replace one template at a time.
        search = [override_dir] if override_dir else []
        loader = jinja2.FileSystemLoader([*search, str(PACKAGED_TEMPLATES)])
        self._text = jinja2.Environment(
            loader=loader,
            autoescape=False,
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            trim_blocks=True,
        )
        self._html = jinja2.Environment(
            loader=loader, autoescape=True, undefined=jinja2.StrictUndefined
        )

    def render(self, name: str, context: dict[str, Any]) -> RenderedBody:
        text = self._text.get_template(f"{name}.txt.j2").render(context)
        try:
            html_template = self._html.get_template(f"{name}.html.j2")
        except jinja2.TemplateNotFound:
            return RenderedBody(text, None)
        return RenderedBody(text, html_template.render(context))

    def check(self) -> int:
        """Compile every template (shipped and overridden) so a typo fails at start.

        Returns how many were checked; raises jinja2.TemplateError naming the file.
        """
        names = self._text.list_templates(filter_func=lambda n: n.endswith(".j2"))
        for name in names:
            environment = self._html if name.endswith(".html.j2") else self._text
            environment.get_template(name)
        return len(names)
