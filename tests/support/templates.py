"""An admin's template override that breaks for some mails only."""

from __future__ import annotations

from pathlib import Path


def acknowledgement_failing_on(word: str, folder: Path) -> str:
    """Write an acknowledgement template that fails when the subject contains `word`.

    Returns the folder, for `template_dir`. The failure is a real Jinja2 error (an
    undefined name under StrictUndefined), as a typo in an admin's template would be.
    """
    (folder / "acknowledgement.txt.j2").write_text(
        f"{{% if {word!r} in case.subject %}}{{{{ no_such_value }}}}{{% endif %}}Hello\\n"
    )
    return str(folder)
