"""The API guards' rules as tables: Host parsing and matching, the allowed names, JSON content types, origins."""

from __future__ import annotations

from typing import Any

import pytest

from engine.api.guards import OriginGuard, allowed_hosts, host_allowed, is_json, split_host

SPLIT: list[tuple[str, tuple[str, int | None] | None]] = [
    ("localhost", ("localhost", None)),
    ("LocalHost:8787", ("localhost", 8787)),
    ("127.0.0.1:1", ("127.0.0.1", 1)),
    ("[::1]:8787", ("::1", 8787)),
    ("[::1]", ("::1", None)),
    ("", None),
    ("localhost:http", None),
    ("localhost:99999", None),
    ("user@localhost", None),
    ("localhost/path", None),
    ("localhost?x", None),
]


@pytest.mark.parametrize(("header", "expected"), SPLIT)
def test_split_host(header: str, expected: tuple[str, int | None] | None) -> None:
    assert split_host(header) == expected


MATCH: list[tuple[str, tuple[str, ...], bool]] = [
    ("localhost", ("localhost",), True),
    ("localhost.", ("localhost",), True),
    ("evil.localhost", ("localhost",), False),
    ("box.lan", ("*.lan",), True),
    ("a.b.lan", ("*.lan",), True),
    ("lan", ("*.lan",), False),
    ("evillan", ("*.lan",), False),
    ("anything", ("*",), True),
    ("127.0.0.1", ("localhost", "::1"), False),
]


@pytest.mark.parametrize(("name", "patterns", "expected"), MATCH)
def test_host_allowed(name: str, patterns: tuple[str, ...], expected: bool) -> None:
    assert host_allowed(name, patterns) is expected


ALLOWED: list[tuple[str, list[str], tuple[str, ...]]] = [
    ("127.0.0.1", [], ("localhost", "127.0.0.1", "::1")),
    ("127.0.0.2", [], ("localhost", "127.0.0.1", "::1", "127.0.0.2")),
    ("0.0.0.0", [], ("localhost", "127.0.0.1", "::1")),  # a wildcard is not a name anyone uses
    ("::", ["Studio.Lan.", " ", "[fe80::1]"], ("localhost", "127.0.0.1", "::1", "studio.lan", "fe80::1")),
]


@pytest.mark.parametrize(("bind", "extra", "expected"), ALLOWED)
def test_allowed_hosts(bind: str, extra: list[str], expected: tuple[str, ...]) -> None:
    assert allowed_hosts(bind, extra) == expected


JSON_TYPES: list[tuple[str | None, bool]] = [
    ("application/json", True),
    ("application/json; charset=utf-8", True),
    (" Application/JSON ;x=y", True),
    ("text/plain", False),
    ("application/x-www-form-urlencoded", False),
    ("multipart/form-data; boundary=x", False),
    ("application/jsonp", False),
    ("application/problem+json", False),
    ("", False),
    (None, False),
]


@pytest.mark.parametrize(("content_type", "expected"), JSON_TYPES)
def test_is_json(content_type: str | None, expected: bool) -> None:
    assert is_json(content_type) is expected


def _scope(host: str, scheme: str = "http") -> dict[str, Any]:
    return {"type": "http", "scheme": scheme, "headers": [(b"host", host.encode())]}


# (allowed origins, request Host, request scheme, Origin, allowed?)
ORIGINS: list[tuple[list[str], str, str, str, bool]] = [
    ([], "127.0.0.1:8787", "http", "http://127.0.0.1:8787", True),  # same origin (/docs)
    ([], "127.0.0.1:8787", "ws", "http://127.0.0.1:8787", True),  # a WebSocket from the same origin
    ([], "localhost", "http", "http://localhost:80", True),  # default port spelled out
    ([], "127.0.0.1:8787", "http", "http://localhost:8787", False),  # another name is another origin
    ([], "127.0.0.1:8787", "http", "https://127.0.0.1:8787", False),  # another scheme
    ([], "127.0.0.1:8787", "http", "http://127.0.0.1:8788", False),  # another port
    ([], "127.0.0.1:8787", "http", "null", False),
    ([], "127.0.0.1:8787", "http", "http://evil.example", False),
    (["http://ui.example:8080"], "127.0.0.1:8787", "http", "http://UI.example:8080", True),
    (["http://ui.example:8080/"], "127.0.0.1:8787", "http", "http://ui.example:8080", True),
    (["http://ui.example:8080"], "127.0.0.1:8787", "http", "http://ui.example", False),
    (["*"], "127.0.0.1:8787", "http", "http://evil.example", True),
]


@pytest.mark.parametrize(("origins", "host", "scheme", "origin", "expected"), ORIGINS)
def test_origin_rule(origins: list[str], host: str, scheme: str, origin: str, expected: bool) -> None:
    async def app(*_args: Any) -> None:  # never called here
        raise AssertionError

    assert OriginGuard(app, origins).allowed(_scope(host, scheme), origin) is expected
