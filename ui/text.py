"""Escaping model, tool and user text before Streamlit renders it as Markdown.

Streamlit never renders raw HTML without ``unsafe_allow_html`` (which the
dashboard never passes), but Markdown still turns ``![x](http://...)`` into an
image the browser loads and ``[x](javascript:...)`` into a link. Escaping the
Markdown punctuation makes such text show as typed. A URL is the exception:
Markdown turns a bare ``http://...`` into a link *before* it reads escapes, so
an escaped URL would show its backslashes (``http://127\\.0\\.0\\.1``); URLs
are put in code spans instead, which show them as typed and link nothing.
"""

from __future__ import annotations

import html
import re

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~<&$])")
# What Markdown would make a link of: scheme://... or www....; trailing punctuation stays outside.
_URL = re.compile(r"(?<![\w`])(?:[A-Za-z][A-Za-z0-9+.\-]*://|www\.)[^\s`<>]*[^\s`<>.,;:!?'\")\]}]")


def md_escape(text: object) -> str:
    """Text that renders literally inside Markdown (no links, images, HTML or formatting); URLs in it
    are shown as code spans (as typed, never a link)."""
    value = str(text)
    parts: list[str] = []
    last = 0
    for match in _URL.finditer(value):
        parts.append(_MD_SPECIAL.sub(r"\\\1", value[last : match.start()]))
        parts.append(f"`{match.group()}`")
        last = match.end()
    parts.append(_MD_SPECIAL.sub(r"\\\1", value[last:]))
    return "".join(parts)


def html_escape(text: object) -> str:
    """Text safe inside HTML (for component content that renders HTML)."""
    return html.escape(str(text), quote=True)


def clip(text: object, limit: int = 2000) -> str:
    """At most ``limit`` characters, saying how much was left out."""
    value = str(text)
    return value if len(value) <= limit else value[:limit] + f" … [{len(value) - limit} more characters]"
