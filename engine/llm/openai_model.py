"""The ``ChatModel`` that talks to OpenAI or any OpenAI-compatible endpoint.

Why it exists: agent nodes speak only the ``ChatModel`` protocol, so this is
the one place that knows the official ``openai`` SDK. It streams text deltas,
assembles tool calls from their streamed pieces, owns the single retry policy
(the SDK's own retries are off), and turns SDK exceptions into ``ModelError``
messages that say what to fix. A stream that ends without a ``finish_reason``
(with or without ``[DONE]``, or by a closed connection) is a cut-off answer,
never a complete one: it is retried, and reported through ``on_failure`` so
its streamed text is discarded and its tokens still counted. When the
endpoint sends no usage, counts are estimated and the reply says so. The API key never appears in a message, a log
line or a repr, and neither do the user-info (``user:password@``) or query
string of the base URL: messages name the URL's public form
(:func:`engine.llm.public_url`). A base URL that cannot work (no http(s), a
port that is no number, ...) is refused with a ``ModelError`` before any
request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import openai

from engine.errors import ModelError
from engine.llm import OPENAI_URL, public_url, split_url, url_problems
from engine.llm.base import ChatReply, ChatRequest, DeltaSink, FailedTry, FailureSink, ToolCall

log = logging.getLogger(__name__)

PLACEHOLDER_KEY = "not-needed"  # local servers (Ollama, vLLM, ...) need no key, the SDK wants one
_MAX_RETRY_AFTER_S = 60.0
_MIN_SECRET_CHARS = 3  # shorter pieces of a URL are not replaced wherever they occur (that would garble messages)
_CUT_OFF_HINT = (
    "A llama.cpp server does this to an answer in progress when another request arrives: "
    "start it with --interrupt_requests False (llama-cpp-python) or give it more slots (--parallel), "
    "or run fewer agents at once."
)
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s\"'<>]+")


class _PublicUrlsInLogs(logging.Filter):
    """Shows URLs in the HTTP library's log lines in their public form.

    httpx logs every request's full URL at INFO, which would put the base URL's
    user-info (``user:password@``) and query (``?api-key=...``) into the logs.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a record that cannot be formatted is left to logging's own handling
            return True
        public = _URL_IN_TEXT.sub(lambda match: public_url(match.group()), message)
        if public != message:
            record.msg, record.args = public, ()
        return True


for _name in ("httpx", "httpx2"):  # the SDK's HTTP library (its newer releases use httpx2)
    _logger = logging.getLogger(_name)
    if not any(isinstance(f, _PublicUrlsInLogs) for f in _logger.filters):
        _logger.addFilter(_PublicUrlsInLogs())


@dataclass
class _Failure:
    """One failed attempt, classified."""

    retryable: bool
    description: str
    status: int | None = None
    unreachable: bool = False  # the connection itself failed
    retry_after_s: float | None = None
    cut_off: bool = False  # the answer had begun and ended early


class _Incomplete(Exception):
    """A stream that ended (with or without ``[DONE]``) before any ``finish_reason``."""

    def __init__(self, description: str):
        self.description = description
        super().__init__(description)


class _PartialCall:
    __slots__ = ("id", "name", "arguments")

    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        self.arguments = ""


class _Progress:
    """What one try has received so far: whether the answer began, its text and tool-call pieces."""

    __slots__ = ("model", "opened", "parts", "calls")

    def __init__(self, model: str) -> None:
        self.model = model
        self.opened = False  # the endpoint accepted the request and began the stream
        self.parts: list[str] = []
        self.calls: dict[int, _PartialCall] = {}

    def estimate(self, request: ChatRequest) -> tuple[int, int]:
        """Prompt and completion tokens, estimated at about four characters a token."""
        spoken = "".join(self.parts) + "".join(c.name + c.arguments for c in self.calls.values())
        return _estimate(json.dumps(request.messages, default=str)), _estimate(spoken) if spoken else 0

    def failed_try(self, request: ChatRequest, error: str, retrying: bool) -> FailedTry:
        prompt_tokens, completion_tokens = self.estimate(request)
        return FailedTry(self.model, prompt_tokens, completion_tokens, True, error, retrying)


class OpenAIChatModel:
    """A ``ChatModel`` over ``openai.AsyncOpenAI`` (chat completions, streamed).

    Arguments left out (None) come from the environment's settings (``engine.config``:
    ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``OPENAI_MODEL``); "" means none. With a base URL but no key,
    a placeholder key is sent.
    ``timeout_s`` bounds connecting and each wait for the next streamed chunk.
    """

    name = "openai"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        default_model: str | None = None,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        timeout_s: float = 120,
    ) -> None:
        if api_key is None or base_url is None or default_model is None:
            from engine.config import Settings  # the default for direct use: the environment's settings

            env = Settings.from_env().llm
            api_key = env.api_key if api_key is None else api_key
            base_url = env.base_url if base_url is None else base_url
            default_model = env.model if default_model is None else default_model
        self._api_key = api_key or None
        custom_url = base_url or None
        self._custom_url = custom_url is not None
        self.base_url = (custom_url or OPENAI_URL).rstrip("/")  # as given: may hold a password or key, never shown
        self.public_url = public_url(self.base_url)  # what messages, logs and the repr name
        self.default_model = default_model or None
        self.max_retries = max(0, max_retries)
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s

    def __repr__(self) -> str:
        key = "set" if self._api_key else "unset"
        return f"OpenAIChatModel(base_url={self.public_url!r}, default_model={self.default_model!r}, api_key={key})"

    async def check(self, *, timeout_s: float = 10.0) -> list[str]:
        """Ask the endpoint for its models (the Settings page's "test connection").

        Returns:
            The model ids the endpoint lists.

        Raises:
            ModelError: the base URL is not a usable URL, the endpoint cannot be reached or it
                refuses the key; the message says which.
        """
        client = self._client(openai.Timeout(timeout_s, connect=min(timeout_s, 5.0)))
        async with client:
            try:
                page = await client.models.list()
            except openai.OpenAIError as err:
                failure = self._classify(err)
                if failure.status == 404:  # no models list here: the URL, not a model, is wrong
                    message = (
                        f"the endpoint at {self.public_url} has no models list (HTTP 404): check OPENAI_BASE_URL "
                        f"(OpenAI-compatible servers usually end in /v1) ({failure.description})"
                    )
                else:
                    message = self._final_message(failure, "(listing models)")
                raise ModelError(self._redact(message)) from None
            return sorted(model.id for model in page.data)

    async def chat(
        self, request: ChatRequest, on_delta: DeltaSink, on_failure: FailureSink | None = None
    ) -> ChatReply:
        model = request.model or self.default_model
        if not model:
            raise ModelError("no model name given: set the node's model, settings.model or OPENAI_MODEL")
        if self._api_key is None and not self._custom_url:
            raise ModelError(
                "no API key for the OpenAI API: set OPENAI_API_KEY "
                "(or set OPENAI_BASE_URL to a local server that needs none)"
            )
        client = self._client(openai.Timeout(self.timeout_s, connect=min(self.timeout_s, 10.0)))
        async with client:
            attempt = cut_offs = 0
            while True:
                attempt += 1
                progress = _Progress(model)
                try:
                    return await self._attempt(client, request, model, on_delta, progress)
                except openai.OpenAIError as err:
                    failure = self._classify(err)
                    if progress.opened and failure.unreachable:  # the answer had begun: it was cut off
                        closed = f"the connection closed mid-answer ({failure.description})"
                        failure = _Failure(True, f"the server cut the answer off: {closed}", cut_off=True)
                except _Incomplete as cut:
                    failure = _Failure(True, cut.description, cut_off=True)
                cut_offs += failure.cut_off
                retrying = failure.retryable and attempt <= self.max_retries
                if progress.opened and on_failure is not None:
                    on_failure(progress.failed_try(request, self._redact(failure.description), retrying))
                if not failure.retryable:
                    raise ModelError(self._redact(self._final_message(failure, model))) from None
                if not retrying:
                    message = self._exhausted_message(failure, attempt, cut_offs)
                    raise ModelError(self._redact(message), retryable=True) from None
                delay = self.backoff_s * 2 ** (attempt - 1)
                if failure.retry_after_s is not None:
                    delay = max(delay, min(failure.retry_after_s, _MAX_RETRY_AFTER_S))
                log.warning(
                    "%s (attempt %d of %d); retrying in %.2f s",
                    self._redact(failure.description),
                    attempt,
                    self.max_retries + 1,
                    delay,
                )
                await asyncio.sleep(delay)

    def _client(self, timeout: openai.Timeout) -> openai.AsyncOpenAI:
        """The SDK client for one call; a base URL that cannot work is a ``ModelError`` (not retryable)."""
        problems = url_problems(self.base_url)
        if problems:
            raise ModelError(
                f"the base URL {self.public_url} is not a usable URL: {'; '.join(problems)}. "
                "Fix OPENAI_BASE_URL (on the Settings page or in the environment), "
                "for example http://127.0.0.1:11434/v1"
            )
        try:
            return openai.AsyncOpenAI(
                api_key=self._api_key or PLACEHOLDER_KEY,
                base_url=self.base_url,
                max_retries=0,  # one retry policy: ours
                timeout=timeout,
            )
        except Exception as err:  # noqa: BLE001 - the SDK parses the URL here (httpx's InvalidURL is no OpenAIError)
            raise ModelError(
                self._redact(
                    f"the base URL {self.public_url} cannot be used ({type(err).__name__}: {err}): "
                    "fix OPENAI_BASE_URL (on the Settings page or in the environment)"
                )
            ) from None

    async def _attempt(
        self, client: openai.AsyncOpenAI, request: ChatRequest, model: str, sink: DeltaSink, progress: _Progress
    ) -> ChatReply:
        """One streamed request; SDK exceptions propagate to the retry loop, and so does
        :class:`_Incomplete` when the stream ends without a ``finish_reason``."""
        kwargs: dict[str, Any] = {
            "model": model,
            "messages": list(request.messages),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.tools:
            kwargs["tools"] = [t.to_openai() for t in request.tools]
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        if request.response_format == "json":
            kwargs["response_format"] = {"type": "json_object"}
        if request.max_tokens is not None:
            kwargs["max_tokens"] = request.max_tokens

        parts = progress.parts
        calls = progress.calls
        finish_reason: str | None = None
        usage: Any = None
        stream = await client.chat.completions.create(**kwargs)
        progress.opened = True
        async with stream:
            async for chunk in stream:
                progress.model = chunk.model or progress.model
                usage = chunk.usage or usage
                for choice in chunk.choices:
                    if choice.index != 0:
                        continue
                    finish_reason = choice.finish_reason or finish_reason
                    delta = choice.delta
                    text = (delta.content or "") + (delta.refusal or "")
                    if text:
                        parts.append(text)
                        sink(text)
                    for piece in delta.tool_calls or ():
                        call = calls.setdefault(piece.index, _PartialCall())
                        call.id = piece.id or call.id
                        if piece.function is not None:
                            call.name += piece.function.name or ""
                            call.arguments += piece.function.arguments or ""
        if finish_reason is None:
            got = sum(map(len, parts))
            raise _Incomplete(
                "the server cut the answer off: the stream ended without a finish_reason "
                f"after {got} character{'s' if got != 1 else ''}"
            )

        content = "".join(parts)
        tool_calls = tuple(
            ToolCall(id=c.id or f"call_{uuid.uuid4().hex[:24]}", name=c.name, arguments=c.arguments or "{}")
            for _, c in sorted(calls.items())
        )
        if usage is not None:
            prompt_tokens, completion_tokens, estimated = usage.prompt_tokens, usage.completion_tokens, False
        else:  # the endpoint sent none: estimate (about four characters a token)
            prompt_tokens, completion_tokens = progress.estimate(request)
            estimated = True
        return ChatReply(
            content=content,
            tool_calls=tool_calls,
            model=progress.model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            extra={"finish_reason": finish_reason},
            usage_estimated=estimated,
        )

    def _classify(self, err: openai.OpenAIError) -> _Failure:
        if isinstance(err, openai.APITimeoutError):
            return _Failure(True, f"no answer within {self.timeout_s:g} s (timeout_s)")
        if isinstance(err, openai.APIConnectionError):
            cause = err.__cause__
            detail = f"{type(cause).__name__}: {cause}" if cause is not None else err.message
            return _Failure(True, f"connection to {self.public_url} failed ({detail})", unreachable=True)
        if isinstance(err, openai.APIStatusError):
            status = err.status_code
            retry_after = _retry_after(err.response.headers.get("retry-after"))
            return _Failure(status in (408, 429) or status >= 500, err.message, status, retry_after_s=retry_after)
        if isinstance(err, openai.APIError):  # an error event inside the stream
            return _Failure(True, f"the endpoint reported an error mid-stream: {err.message}")
        return _Failure(False, f"{type(err).__name__}: {err}")

    def _final_message(self, failure: _Failure, model: str) -> str:
        if failure.status == 401:
            return f"the endpoint rejected the API key (HTTP 401): check OPENAI_API_KEY ({failure.description})"
        if failure.status == 404:
            return (
                f"model '{model}' not found at {self.public_url} (HTTP 404): check the node's model, "
                f"settings.model or OPENAI_MODEL, and OPENAI_BASE_URL ({failure.description})"
            )
        if failure.status is not None:
            return (
                f"the endpoint at {self.public_url} refused the request (HTTP {failure.status}): {failure.description}"
            )
        return f"the request to {self.public_url} failed: {failure.description}"

    def _exhausted_message(self, failure: _Failure, attempts: int, cut_offs: int = 0) -> str:
        if failure.cut_off:
            among = f" in {_attempts(attempts)}" if cut_offs != attempts else ""
            return (
                f"the server at {self.public_url} cut the answer off {_attempts(cut_offs, 'time')}{among} "
                f"(the stream ended without a finish_reason, so the text is incomplete). {_CUT_OFF_HINT} "
                f"Last: {failure.description}"
            )
        if failure.unreachable:
            return (
                f"could not reach {self.public_url} after {_attempts(attempts)}: check that the server is running "
                f"and OPENAI_BASE_URL is right. Last error: {failure.description}"
            )
        return f"gave up on {self.public_url} after {_attempts(attempts)}. Last error: {failure.description}"

    def _redact(self, text: str) -> str:
        """``text`` without the API key or the secrets of the base URL (its user-info and query)."""
        if self._api_key:
            text = text.replace(self._api_key, "***")
        text = text.replace(self.base_url, self.public_url)
        for secret in self._url_secrets():
            text = text.replace(secret, "***")
        return text

    def _url_secrets(self) -> list[str]:
        """The base URL's user-info and query: whole, and the password and each value alone (also decoded).

        A URL with an "@" after its host never gets this far: ``_client`` refuses it first.
        """
        parts = split_url(self.base_url)
        pieces: list[str] = []
        if parts.userinfo is not None:
            password = parts.userinfo.partition(":")[2]
            pieces += [parts.userinfo + "@", parts.userinfo, password, unquote(password)]
        if parts.query:
            values = [field.partition("=")[2] for field in parts.query.split("&")]
            pieces += [parts.query, *values, *map(unquote, values)]
        found = {p for p in pieces if len(p) >= _MIN_SECRET_CHARS or (p.endswith("@") and len(p) > 1)}
        return sorted(found, key=len, reverse=True)  # longest first: a piece inside another goes with it


def _attempts(n: int, noun: str = "attempt") -> str:
    if noun == "time":
        return "once" if n == 1 else ("twice" if n == 2 else f"{n} times")
    return f"{n} {noun}{'s' if n != 1 else ''}"


def _estimate(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
