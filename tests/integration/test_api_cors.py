"""CORS together with the API token, against a real uvicorn server (``python -m engine.api``).

Browsers never send credentials (nor an ``Authorization`` header) on a CORS
preflight, so CORS must answer preflights before the token check, and must
add its headers to the token check's 401 too, so a page can read why it was
refused. Every request that is not a preflight still needs the token.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.integration.test_api import Server, start_server

TOKEN = "cors-token-0123456789"
ALLOWED = "http://ui.example"
OTHER = "http://evil.example"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WRONG = {"Authorization": f"Bearer {TOKEN}x"}
TEXT = {"Content-Type": "text/plain"}


def preflight(origin: str, method: str = "GET", headers: str = "authorization,content-type") -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers}


@pytest.fixture(scope="module")
def cors_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(
        tmp_path_factory.mktemp("cors"),
        host="127.0.0.2",
        API_TOKEN=TOKEN,
        API_CORS_ORIGINS=f"{ALLOWED}, http://other-ui.example",
        OFFLINE_TOKEN_DELAY_S="0",
    )
    yield server
    assert server.stop() == 0, server.log.read_text()[-3000:]
    assert "Traceback" not in server.log.read_text(errors="replace"), server.log.read_text()[-3000:]


# (case, method, path, request headers, expected status, expected Access-Control-Allow-Origin or None)
CASES: list[tuple[str, str, str, dict[str, str], int, str | None]] = [
    ("preflight GET from the allowed origin", "OPTIONS", "/runs", preflight(ALLOWED), 200, ALLOWED),
    ("preflight POST from the allowed origin", "OPTIONS", "/runs", preflight(ALLOWED, "POST"), 200, ALLOWED),
    ("preflight for a run's events", "OPTIONS", "/runs/abc/events", preflight(ALLOWED), 200, ALLOWED),
    ("preflight for /openapi.json", "OPTIONS", "/openapi.json", preflight(ALLOWED), 200, ALLOWED),
    ("preflight from a non-allowed origin", "OPTIONS", "/runs", preflight(OTHER), 403, None),
    ("GET without the token, allowed origin", "GET", "/runs", {"Origin": ALLOWED}, 401, ALLOWED),
    ("GET with a wrong token, allowed origin", "GET", "/runs", {"Origin": ALLOWED, **WRONG}, 401, ALLOWED),
    ("POST without the token, allowed origin", "POST", "/runs", {"Origin": ALLOWED}, 401, ALLOWED),
    ("openapi without the token, allowed origin", "GET", "/openapi.json", {"Origin": ALLOWED}, 401, ALLOWED),
    ("GET with the token, allowed origin", "GET", "/runs", {"Origin": ALLOWED, **AUTH}, 200, ALLOWED),
    ("GET with the token, non-allowed origin", "GET", "/runs", {"Origin": OTHER, **AUTH}, 200, None),
    ("GET without the token, non-allowed origin", "GET", "/runs", {"Origin": OTHER}, 401, None),
    ("GET without the token, no origin", "GET", "/runs", {}, 401, None),
    ("OPTIONS that is not a preflight needs the token", "OPTIONS", "/runs", {"Origin": ALLOWED}, 401, ALLOWED),
    ("health is open, with CORS headers", "GET", "/health", {"Origin": ALLOWED}, 200, ALLOWED),
    ("POST with the token from a non-allowed origin", "POST", "/workflows", {"Origin": OTHER, **AUTH}, 403, None),
    ("POST with the token, allowed origin, text", "POST", "/runs", {"Origin": ALLOWED, **AUTH, **TEXT}, 415, ALLOWED),
]


@pytest.mark.parametrize(
    ("method", "path", "headers", "status", "allow_origin"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_cors_and_the_token(
    cors_api: Server, method: str, path: str, headers: dict[str, str], status: int, allow_origin: str | None
) -> None:
    body = b"{}" if method == "POST" else None
    response = httpx.request(method, f"{cors_api.url}{path}", headers=headers, content=body, timeout=10)
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers.get("access-control-allow-origin") == allow_origin, dict(response.headers)
    if status == 401:
        assert "token" in response.json()["detail"]
    if method == "OPTIONS" and status == 200:
        allowed_headers = response.headers.get("access-control-allow-headers", "").lower()
        assert "authorization" in allowed_headers, dict(response.headers)
        assert headers["Access-Control-Request-Method"] in response.headers.get("access-control-allow-methods", "")


def test_a_preflighted_request_with_the_token_reaches_the_api(cors_api: Server) -> None:
    """What a browser does: preflight without credentials, then the real request with the token."""
    check = httpx.options(f"{cors_api.url}/workflows", headers=preflight(ALLOWED), timeout=10)
    assert check.status_code == 200 and check.headers["access-control-allow-origin"] == ALLOWED
    response = httpx.get(f"{cors_api.url}/workflows", headers={"Origin": ALLOWED, **AUTH}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert isinstance(response.json(), list)
