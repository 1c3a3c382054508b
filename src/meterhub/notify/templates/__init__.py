"""Message texts as Jinja templates, one file per (kind, channel): ``bill_email.txt``,
``bill_sms.txt``, ``receipt_*``, ``low_balance_*``. An e-mail template's first line is
``Subject: ...``; SMS templates are the text itself (keep them under 160 characters)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

HERE = Path(__file__).parent
_environment = Environment(
    loader=FileSystemLoader(HERE),
    undefined=StrictUndefined,  # a missing value is an error, never an empty gap in a bill
    autoescape=False,
    keep_trailing_newline=False,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(kind: str, channel: str, **values: Any) -> tuple[str, str]:
    """(subject, body) of the ``kind`` message for ``channel``; subject is '' for SMS."""
    text = _environment.get_template(f"{kind}_{channel}.txt").render(**values).strip()
    first, _, rest = text.partition("\n")
    if first.startswith("Subject:"):
        return first.removeprefix("Subject:").strip(), rest.strip() + "\n"
    return "", text
