"""OpenAIChatModel against the fake server, through the real openai client over a socket."""

from __future__ import annotations

import json
import logging
import socket
import time

import openai
import pytest

from engine.errors import ModelError
from engine.llm.base import ChatModel, ChatRequest, FailedTry, ToolSchema
from engine.llm.openai_model import PLACEHOLDER_KEY, OpenAIChatModel
from tests.fake_openai import FakeOpenAIServer, TextReply

KEY = "sk-test-SECRET-0123456789abcdef"
HI = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello to the world."}]


def make(srv: FakeOpenAIServer, **options: object) -> OpenAIChatModel:
    settings: dict = {"api_key": KEY, "base_url": srv.base_url, "backoff_s": 0.01, "timeout_s": 5}
    settings.update(options)
    return OpenAIChatModel(**settings)


def ask(model: str = "gpt-test", **options: object) -> ChatRequest:
    return ChatRequest(messages=HI, model=model, **options)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------ happy paths


async def test_streams_text_in_several_deltas(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.enqueue_text("Hello there, wide and wonderful world!")
    deltas: list[str] = []
    reply = await make(fake_openai).chat(ask(), deltas.append)
    assert len(deltas) >= 3
    assert "".join(deltas) == reply.content == "Hello there, wide and wonderful world!"
    assert reply.tool_calls == ()
    assert reply.model == "gpt-test"
    assert reply.prompt_tokens > 0 and reply.completion_tokens > 0
    assert reply.extra == {"finish_reason": "stop"}


async def test_is_a_chat_model() -> None:
    model = OpenAIChatModel(base_url="http://127.0.0.1:1/v1")
    assert isinstance(model, ChatModel) and model.name == "openai"


async def test_sends_model_messages_tools_temperature_and_json_format(fake_openai: FakeOpenAIServer) -> None:
    tool = ToolSchema("search", "Search the web.", {"type": "object", "properties": {"q": {"type": "string"}}})
    await make(fake_openai).chat(
        ask("gpt-special", tools=(tool,), temperature=0.2, response_format="json"), lambda _: None
    )
    body = fake_openai.last_request
    assert body["model"] == "gpt-special"
    assert body["messages"] == HI
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["tools"] == [tool.to_openai()]
    assert body["temperature"] == 0.2
    assert body["response_format"] == {"type": "json_object"}
    assert fake_openai.authorizations == [f"Bearer {KEY}"]


async def test_leaves_out_what_was_not_asked_for(fake_openai: FakeOpenAIServer) -> None:
    await make(fake_openai).chat(ask(), lambda _: None)
    body = fake_openai.last_request
    assert "tools" not in body and "temperature" not in body and "response_format" not in body


async def test_assembles_tool_calls_from_split_deltas(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.enqueue_tool_calls(
        [("search", {"q": "cats and dogs", "limit": 5}), ("calc", {"expr": "6*7"})], arg_pieces=4
    )
    deltas: list[str] = []
    reply = await make(fake_openai).chat(ask(), deltas.append)
    assert deltas == [] and reply.content == ""
    assert [c.name for c in reply.tool_calls] == ["search", "calc"]
    assert json.loads(reply.tool_calls[0].arguments) == {"q": "cats and dogs", "limit": 5}
    assert json.loads(reply.tool_calls[1].arguments) == {"expr": "6*7"}
    assert all(c.id for c in reply.tool_calls) and len({c.id for c in reply.tool_calls}) == 2
    assert reply.extra["finish_reason"] == "tool_calls"
    assert reply.completion_tokens > 0
    message = reply.as_message()
    assert message["content"] is None and message["tool_calls"][1]["function"]["name"] == "calc"


async def test_text_before_tool_calls_is_streamed(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.enqueue_tool_calls([("search", {"q": "x"})], content="Let me look that up.")
    deltas: list[str] = []
    reply = await make(fake_openai).chat(ask(), deltas.append)
    assert "".join(deltas) == reply.content == "Let me look that up."
    assert reply.tool_calls[0].name == "search"


async def test_reports_the_model_the_endpoint_names(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.enqueue(TextReply("ok", model="gpt-test-2024-08-06"))
    reply = await make(fake_openai).chat(ask(), lambda _: None)
    assert reply.model == "gpt-test-2024-08-06"


async def test_estimates_usage_when_the_endpoint_sends_none(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.enqueue(TextReply("A reply of some forty characters or so..", usage=False))
    reply = await make(fake_openai).chat(ask(), lambda _: None)
    assert reply.prompt_tokens > 5 and reply.completion_tokens == 10
    assert reply.usage_estimated is True


async def test_usage_the_endpoint_sends_is_exact(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.enqueue_text("counted by the server")
    reply = await make(fake_openai).chat(ask(), lambda _: None)
    assert reply.usage_estimated is False


async def test_max_tokens_is_sent_when_given(fake_openai: FakeOpenAIServer) -> None:
    await make(fake_openai).chat(ask(max_tokens=64), lambda _: None)
    await make(fake_openai).chat(ask(), lambda _: None)
    assert fake_openai.requests[0]["max_tokens"] == 64
    assert "max_tokens" not in fake_openai.requests[1]


async def test_an_error_in_on_delta_propagates_unretried(fake_openai: FakeOpenAIServer) -> None:
    def boom(_: str) -> None:
        raise RuntimeError("sink broke")

    with pytest.raises(RuntimeError, match="sink broke"):
        await make(fake_openai).chat(ask(), boom)
    assert len(fake_openai.requests) == 1


# ------------------------------------------------------------ retries


async def test_429_then_success_is_retried(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.enqueue_error(429)
    fake_openai.enqueue_text("second time lucky")
    deltas: list[str] = []
    reply = await make(fake_openai).chat(ask(), deltas.append)
    assert reply.content == "".join(deltas) == "second time lucky"
    assert len(fake_openai.requests) == 2


async def test_retry_after_is_honoured(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.enqueue_error(429, retry_after=0.3)
    start = time.monotonic()
    await make(fake_openai).chat(ask(), lambda _: None)
    assert time.monotonic() - start >= 0.3
    assert len(fake_openai.requests) == 2


async def test_500_until_retries_run_out(fake_openai: FakeOpenAIServer) -> None:
    for _ in range(3):
        fake_openai.enqueue_error(500)
    with pytest.raises(ModelError) as caught:
        await make(fake_openai, max_retries=2).chat(ask(), lambda _: None)
    message = str(caught.value)
    assert "3 attempts" in message and "500" in message and fake_openai.base_url in message
    assert caught.value.retryable is True
    assert len(fake_openai.requests) == 3


async def test_slow_reply_times_out_and_is_retried(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.enqueue(TextReply("too late", delay_s=1.0))
    fake_openai.enqueue_text("in time")
    reply = await make(fake_openai, timeout_s=0.25).chat(ask(), lambda _: None)
    assert reply.content == "in time"
    assert len(fake_openai.requests) == 2


async def test_slow_replies_until_retries_run_out(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.enqueue(TextReply("late", delay_s=1.0), TextReply("late", delay_s=1.0))
    with pytest.raises(ModelError, match=r"2 attempts.*no answer within 0.25 s"):
        await make(fake_openai, timeout_s=0.25, max_retries=1).chat(ask(), lambda _: None)


CUT_OFFS = {
    "no finish_reason, no [DONE]": {"finish": False, "done": False},
    "[DONE] but no finish_reason": {"finish": False},
    "connection closed mid-stream": {"break_after": 2},
}


@pytest.mark.parametrize("cut", list(CUT_OFFS.values()), ids=list(CUT_OFFS))
async def test_a_cut_off_answer_is_retried_and_its_try_reported(fake_openai: FakeOpenAIServer, cut: dict) -> None:
    fake_openai.enqueue(TextReply("one two three four five", **cut), TextReply("the whole answer"))
    deltas: list[str] = []
    failed: list[FailedTry] = []
    reply = await make(fake_openai).chat(ask(), deltas.append, failed.append)
    assert reply.content == "the whole answer" and reply.extra["finish_reason"] == "stop"
    assert len(fake_openai.requests) == 2
    (first,) = failed
    assert first.retrying is True and first.usage_estimated is True
    assert first.prompt_tokens > 0 and first.completion_tokens > 0
    assert first.model == "gpt-test"
    assert "".join(deltas).endswith("the whole answer")  # after the void text of the failed try


@pytest.mark.parametrize("cut", list(CUT_OFFS.values()), ids=list(CUT_OFFS))
async def test_an_answer_cut_off_every_time_fails_saying_so(fake_openai: FakeOpenAIServer, cut: dict) -> None:
    for _ in range(3):
        fake_openai.enqueue(TextReply("one two three four five", **cut))
    failed: list[FailedTry] = []
    with pytest.raises(ModelError) as caught:
        await make(fake_openai, max_retries=2).chat(ask(), lambda _: None, failed.append)
    message = str(caught.value)
    assert "cut the answer off 3 times" in message
    assert "--interrupt_requests False" in message and "slots" in message
    assert caught.value.retryable is True
    assert len(fake_openai.requests) == 3
    assert [f.retrying for f in failed] == [True, True, False]


async def test_an_empty_stream_without_finish_reason_is_no_answer(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.enqueue(TextReply("", finish=False), TextReply("", finish=False))
    with pytest.raises(ModelError, match="cut the answer off twice"):
        await make(fake_openai, max_retries=1).chat(ask(), lambda _: None)


async def test_a_stalled_stream_is_retried_and_reported(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.enqueue(TextReply("one two three", chunk_delay_s=1.0), TextReply("quick"))
    failed: list[FailedTry] = []
    reply = await make(fake_openai, timeout_s=0.25).chat(ask(), lambda _: None, failed.append)
    assert reply.content == "quick"
    assert len(failed) == 1 and "0.25 s" in failed[0].error


async def test_a_failure_before_the_answer_began_is_not_a_failed_try(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.enqueue_error(500)
    failed: list[FailedTry] = []
    await make(fake_openai).chat(ask(), lambda _: None, failed.append)
    assert failed == []


# ------------------------------------------------------------ final failures


async def test_401_names_the_key_setting_but_never_the_key(
    fake_openai: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_openai.require_key = "sk-the-right-one"
    model = make(fake_openai)
    with pytest.raises(ModelError) as caught:
        await model.chat(ask(), lambda _: None)
    message = str(caught.value)
    assert "API key" in message and "OPENAI_API_KEY" in message and "401" in message
    assert KEY not in message and KEY not in repr(caught.value) and KEY not in repr(model)
    assert KEY not in caplog.text
    assert caught.value.retryable is False
    assert len(fake_openai.requests) == 1  # not retried


async def test_key_echoed_by_the_endpoint_is_redacted(
    fake_openai: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_openai.enqueue_error(429, f"slow down, {KEY}")
    fake_openai.enqueue_error(401, f"Incorrect API key provided: {KEY}")
    with pytest.raises(ModelError) as caught:
        await make(fake_openai).chat(ask(), lambda _: None)
    assert KEY not in str(caught.value) and "***" in str(caught.value)
    assert "slow down" in caplog.text and KEY not in caplog.text


async def test_404_names_the_model_and_url(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.models = ["gpt-real"]
    with pytest.raises(ModelError) as caught:
        await make(fake_openai).chat(ask("gpt-imaginary"), lambda _: None)
    message = str(caught.value)
    assert "'gpt-imaginary'" in message and fake_openai.base_url in message and "OPENAI_MODEL" in message
    assert len(fake_openai.requests) == 1


async def test_other_4xx_fails_at_once(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.enqueue_error(400, "Invalid value for 'temperature'.")
    with pytest.raises(ModelError, match=r"HTTP 400.*temperature"):
        await make(fake_openai).chat(ask(temperature=9.0), lambda _: None)
    assert len(fake_openai.requests) == 1


async def test_connection_refused_names_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(ModelError) as caught:
        await OpenAIChatModel(base_url=url, max_retries=1, backoff_s=0.01).chat(ask(), lambda _: None)
    message = str(caught.value)
    assert f"could not reach {url}" in message and "2 attempts" in message


async def test_no_model_anywhere() -> None:
    with pytest.raises(ModelError, match="OPENAI_MODEL"):
        await OpenAIChatModel(base_url="http://127.0.0.1:1/v1").chat(ask(""), lambda _: None)


async def test_no_key_for_the_real_api() -> None:
    with pytest.raises(ModelError, match="OPENAI_API_KEY"):
        await OpenAIChatModel().chat(ask(), lambda _: None)


# ------------------------------------------------------------ environment


async def test_environment_is_honoured(fake_openai: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv("OPENAI_MODEL", "gpt-from-env")
    model = OpenAIChatModel()
    reply = await model.chat(ask(""), lambda _: None)
    assert fake_openai.authorizations == ["Bearer sk-from-env"]
    assert fake_openai.last_request["model"] == "gpt-from-env" == reply.model
    assert "sk-from-env" not in repr(model)


async def test_arguments_beat_the_environment(fake_openai: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv("OPENAI_MODEL", "gpt-from-env")
    await make(fake_openai, default_model="gpt-arg").chat(ask(""), lambda _: None)
    assert fake_openai.authorizations == [f"Bearer {KEY}"]
    assert fake_openai.last_request["model"] == "gpt-arg"


async def test_base_url_without_key_sends_a_placeholder(
    fake_openai: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    reply = await OpenAIChatModel().chat(ask("llama3"), lambda _: None)
    assert reply.content == "echo: Say hello to the world."
    assert fake_openai.authorizations == [f"Bearer {PLACEHOLDER_KEY}"]


# ------------------------------------------------------------ the fake server itself


async def test_fake_server_speaks_plain_json_and_lists_models() -> None:
    with FakeOpenAIServer(models=["m1", "m2"]) as srv:
        srv.enqueue_tool_calls([("search", {"q": "x"})])
        async with openai.AsyncOpenAI(api_key="k", base_url=srv.base_url, max_retries=0) as client:
            listed = await client.models.list()
            assert [m.id for m in listed.data] == ["m1", "m2"]
            completion = await client.chat.completions.create(model="m1", messages=HI)
            call = completion.choices[0].message.tool_calls[0]
            assert call.function.name == "search" and json.loads(call.function.arguments) == {"q": "x"}
            assert completion.usage is not None and completion.usage.prompt_tokens > 0
            completion = await client.chat.completions.create(model="m2", messages=HI)
            assert completion.choices[0].message.content == "echo: Say hello to the world."


# ------------------------------------------------------------ the base URL: validated, never shown with its secrets

SECRET_PARTS = ("alice", "pw-SECRET-1", "QKEY-SECRET-2", "api-key=")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://alice:pw-SECRET-1@127.0.0.1:abc/v1?api-key=QKEY-SECRET-2", "the port must be a number"),
        ("127.0.0.1:11434/v1", "it must start with http:// or https://"),
        ("http://[::1/v1", "the host is not a valid IPv6 address"),
    ],
)
async def test_an_unusable_base_url_is_a_model_error_before_any_request(url: str, problem: str) -> None:
    model = OpenAIChatModel(base_url=url, api_key=KEY)
    with pytest.raises(ModelError) as checked:
        await model.check()
    with pytest.raises(ModelError) as chatted:
        await model.chat(ask(), lambda _: None)
    for caught in (checked, chatted):
        message = str(caught.value)
        assert "is not a usable URL" in message and problem in message and "OPENAI_BASE_URL" in message
        assert caught.value.retryable is False
        assert not any(secret in message for secret in SECRET_PARTS)
    assert not any(secret in repr(model) for secret in SECRET_PARTS)


async def test_a_url_the_client_cannot_parse_is_a_model_error() -> None:
    """The SDK parses the URL when the client is made (httpx's InvalidURL is no OpenAIError): still a ModelError."""
    model = OpenAIChatModel(base_url="http://alice:pw-SECRET-1@ü..example/v1?api-key=QKEY-SECRET-2")
    with pytest.raises(ModelError) as caught:
        await model.check()
    message = str(caught.value)
    assert "http://ü..example/v1 cannot be used" in message and "OPENAI_BASE_URL" in message
    assert not any(secret in message for secret in SECRET_PARTS)
    with pytest.raises(ModelError):
        await model.chat(ask(), lambda _: None)


async def test_messages_and_logs_name_the_public_url_never_its_credentials(
    fake_openai: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The fake server's 404 quotes the path it got, which carries the URL's query: that is redacted too.

    The HTTP library logs each request's full URL at INFO: that line shows the public form.
    """
    caplog.set_level(logging.DEBUG)
    url = fake_openai.base_url.replace("http://", "http://alice:pw-SECRET-1@") + "?api-key=QKEY-SECRET-2"
    model = OpenAIChatModel(base_url=url, api_key=KEY)
    with pytest.raises(ModelError) as caught:
        await model.check()
    message = str(caught.value)
    assert f"the endpoint at {fake_openai.base_url} has no models list (HTTP 404)" in message
    assert "Unknown path" in message and "OPENAI_BASE_URL" in message
    assert not any(secret in message for secret in SECRET_PARTS)
    assert "HTTP Request: GET http://127.0.0.1:" in caplog.text, "the HTTP library's request line is still logged"

    with_password = fake_openai.base_url.replace("http://", "http://alice:pw-SECRET-1@")
    model = OpenAIChatModel(base_url=with_password, api_key=KEY, backoff_s=0.01, max_retries=1)
    fake_openai.enqueue_error(503, "busy at pw-SECRET-1")
    fake_openai.enqueue_error(503, "busy")
    with pytest.raises(ModelError) as caught:
        await model.chat(ask(), lambda _: None)
    assert f"gave up on {fake_openai.base_url} after 2 attempts" in str(caught.value)
    assert "busy at ***" in caplog.text, "the retry warning is redacted"
    assert not any(secret in str(caught.value) or secret in caplog.text for secret in SECRET_PARTS)
    assert not any(secret in repr(model) for secret in SECRET_PARTS)


async def test_connection_refused_names_the_url_without_credentials() -> None:
    url = f"http://alice:pw-SECRET-1@127.0.0.1:{free_port()}/v1?api-key=QKEY-SECRET-2"
    with pytest.raises(ModelError) as caught:
        await OpenAIChatModel(base_url=url, max_retries=0).chat(ask(), lambda _: None)
    message = str(caught.value)
    assert "could not reach http://127.0.0.1:" in message and "/v1 after 1 attempt" in message
    assert not any(secret in message for secret in SECRET_PARTS)


async def test_the_message_counts_the_cut_offs_among_the_attempts(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.enqueue_error(503)
    fake_openai.enqueue(TextReply("one two", finish=False))
    with pytest.raises(ModelError, match="cut the answer off once in 2 attempts"):
        await make(fake_openai, max_retries=1).chat(ask(), lambda _: None)
