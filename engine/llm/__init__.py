"""Choosing the chat model: an OpenAI-compatible endpoint when one is configured, else the offline model.

Also the one place that knows how to show a base URL (:func:`public_url`: no
user-info or query, which may hold passwords or keys) and what makes one
unusable (:func:`url_problems`), for the pages and the model's error messages.
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, NamedTuple

from engine.llm.base import ChatModel, ChatReply, ChatRequest, ToolCall, ToolSchema

if TYPE_CHECKING:
    from engine.config import LlmSettings

OPENAI_URL = "https://api.openai.com/v1"


def _llm_settings(settings: LlmSettings | None) -> LlmSettings:
    """``settings``, else the environment's (the default for direct use; engine.config reads it)."""
    if settings is not None:
        return settings
    from engine.config import Settings  # here: engine.config imports this package (through engine.settings)

    return Settings.from_env().llm


def endpoint_configured(settings: LlmSettings | None = None) -> bool:
    """True when ``OPENAI_API_KEY`` or ``OPENAI_BASE_URL`` is set (and not empty)."""
    return _llm_settings(settings).configured


def endpoint_url(settings: LlmSettings | None = None) -> str:
    """The base URL agents use when an endpoint is configured: ``OPENAI_BASE_URL``, else the OpenAI API."""
    return _llm_settings(settings).base_url or OPENAI_URL


class EndpointStatus(NamedTuple):
    """What the pages say about the endpoint in effect: whether one is configured, its URL as it may be
    shown (:func:`public_url`), and what makes it unusable (:func:`url_problems`; empty when fine)."""

    configured: bool
    shown_url: str
    problems: list[str]


def endpoint_status(settings: LlmSettings | None = None) -> EndpointStatus:
    settings = _llm_settings(settings)
    url = endpoint_url(settings)
    return EndpointStatus(settings.configured, public_url(url), url_problems(url) if settings.configured else [])


def default_chat_model(settings: LlmSettings | None = None) -> ChatModel:
    """The model agents use unless one is passed in (docs/models.md): the endpoint of ``settings`` when one is
    configured, else the offline model."""
    settings = _llm_settings(settings)
    if settings.configured:
        from engine.llm.openai_model import OpenAIChatModel

        return OpenAIChatModel(
            api_key=settings.api_key or None, base_url=settings.base_url or None, default_model=settings.model or None
        )
    from engine.llm.offline_model import OfflineChatModel

    return OfflineChatModel(token_delay_s=settings.offline_token_delay_s)


# ----------------------------------------------------------------- base URLs

# RFC 3986, appendix B: matches any string, so splitting never fails (unlike urlsplit on "http://[::1/v1").
_URL_PARTS = re.compile(
    r"^(?:([A-Za-z][A-Za-z0-9+.\-]*):)?(?://([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?$", re.DOTALL
)
_REG_NAME = re.compile(r"[A-Za-z0-9._~%!$&'()*+,;=\-\u0080-\U0010ffff]+")
_PORT = re.compile(r"[0-9]{1,5}")
HIDDEN_URL = "(URL not shown: it has an '@' after the host)"


class UrlParts(NamedTuple):
    """A URL split without judging it; ``userinfo`` and ``query`` are what may hold secrets."""

    scheme: str | None
    authority: str | None  # None: no "//"
    userinfo: str | None  # before the last "@" of the authority; None: no "@"
    hostport: str
    path: str
    query: str | None
    fragment: str | None

    @property
    def ambiguous(self) -> bool:
        """An "@" after the authority: maybe a password holding an unencoded "/", "?" or "#", so nothing is
        safe to show."""
        return "@" in self.path + (self.query or "") + (self.fragment or "")


def split_url(url: str) -> UrlParts:
    """The parts of ``url`` (stripped of surrounding whitespace); never raises."""
    match = _URL_PARTS.match(url.strip())
    assert match is not None  # every group is optional
    scheme, authority, path, query, fragment = match.groups()
    userinfo, hostport = None, authority or ""
    if authority is not None and "@" in authority:
        userinfo, _, hostport = authority.rpartition("@")
    return UrlParts(scheme, authority, userinfo, hostport, path, query, fragment)


def public_url(url: str) -> str:
    """A base URL fit to show: no user name, password, query or fragment; never raises.

    A malformed URL (a port that is no number, say) is shown as it is, less
    those parts; :func:`url_problems` says what is wrong with it. A URL with an
    "@" after the host is not shown at all (:data:`HIDDEN_URL`): that "@" may
    end a password holding an unencoded "/", and then no part is safe to show.
    """
    parts = split_url(url)
    if parts.ambiguous:
        return HIDDEN_URL
    if parts.authority is None:  # "localhost:11434/v1", "not a url": no "//", no user-info
        return (f"{parts.scheme}:" if parts.scheme else "") + parts.path
    return f"{parts.scheme}://{parts.hostport}{parts.path}" if parts.scheme else f"//{parts.hostport}{parts.path}"


def url_problems(url: str) -> list[str]:
    """What keeps ``url`` from being a usable http(s) base URL, in words; empty when it is fine.

    The problems never quote the URL's parts (a misplaced password could be
    taken for a host or a port), so they are safe to show as they are.
    """
    text = url.strip()
    if not text:
        return ["it is empty"]
    problems: list[str] = []
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in text):
        problems.append("it contains spaces or control characters")
    parts = split_url(text)
    if (parts.scheme or "").lower() not in ("http", "https") or parts.authority is None:
        problems.append("it must start with http:// or https://")
    if parts.ambiguous:
        problems.append(
            "it has an '@' after the host: in a user name or password write '@', '/', '?' and '#' "
            "as %40, %2F, %3F and %23; in a path write '@' as %40"
        )
        return problems
    if parts.authority is None:
        return problems
    host, port = _host_and_port(parts.hostport)
    if not host:
        problems.append("it names no host (for example http://127.0.0.1:11434/v1)")
    elif host.startswith("["):
        if not _is_ipv6(host):
            problems.append("the host is not a valid IPv6 address in brackets (for example http://[::1]:11434/v1)")
    elif not _REG_NAME.fullmatch(host):
        problems.append("the host has characters a host name cannot have")
    if port is not None and port != "" and not (_PORT.fullmatch(port) and 1 <= int(port) <= 65535):
        problems.append("the port must be a number from 1 to 65535")
    return problems


def _host_and_port(hostport: str) -> tuple[str, str | None]:
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            return hostport, None  # no closing bracket: _is_ipv6 says so
        host, rest = hostport[: end + 1], hostport[end + 1 :]
        if rest and not rest.startswith(":"):
            return host + rest, None  # "[::1]x": not an address either
        return host, rest[1:] if rest else None
    host, colon, port = hostport.partition(":")
    return host, port if colon else None


def _is_ipv6(host: str) -> bool:
    if not (host.startswith("[") and host.endswith("]")):
        return False
    try:
        ipaddress.IPv6Address(host[1:-1].split("%", 1)[0])
    except ValueError:
        return False
    return True


__all__ = [
    "OPENAI_URL",
    "ChatModel",
    "ChatReply",
    "ChatRequest",
    "EndpointStatus",
    "ToolCall",
    "ToolSchema",
    "default_chat_model",
    "endpoint_configured",
    "endpoint_status",
    "endpoint_url",
    "public_url",
    "split_url",
    "url_problems",
]
