"""Escaping model, tool and user text before Streamlit renders it as Markdown.

Streamlit never renders raw HTML without ``unsafe_allow_html`` (which the
dashboard never passes), but Markdown still turns ``![x](http://...)`` into an
image the browser loads and ``[x](javascript:...)`` into a link. Escaping the
Markdown punctuation makes such text show as typed.
"""

from __future__ import annotations

import html
import re

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~<&$])")


def md_escape(text: object) -> str:
    """Text that renders literally inside Markdown (no links, images, HTML or formatting)."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))


def html_escape(text: object) -> str:
    """Text safe inside HTML (for component content that renders HTML)."""
    return html.escape(str(text), quote=True)


def clip(text: object, limit: int = 2000) -> str:
    """At most ``limit`` characters, saying how much was left out."""
    value = str(text)
    return value if len(value) <= limit else value[:limit] + f" … [{len(value) - limit} more characters]"
