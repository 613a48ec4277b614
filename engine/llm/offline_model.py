"""The offline model: a deterministic stand-in that ships with the product.

When no OpenAI-compatible endpoint is configured, every agent talks to
:class:`OfflineChatModel`, so each example workflow runs on a fresh machine
with no key. It knows nothing; it works only from the prompt, by fixed rules:

* **Tool calls.** Tools on offer and no tool result since the last user
  message: call each tool once with arguments taken from the user's text
  (an arithmetic expression, a quoted phrase or the request, a path, a fenced
  code block, a number, ...). A tool whose required arguments cannot be found
  is skipped; if none is left, the model answers in text.
* **After tool results.** One sentence per result (``Using calculator:
  (12 + 30) * 2 = 84.``; errors are named as such), then the normal answer.
* **Memory.** A ``<memory>`` ... ``</memory>`` block in a system or user
  message (also inside an untrusted data block, see :mod:`engine.untrusted`):
  the line sharing the most words with the question opens the answer as
  ``From memory: <line>.`` Data blocks are never read as the request.
* **Text.** ``Summarize: <text>`` gives the first sentence or two of the text;
  critique / review prompts get a short critique quoting the material;
  rewrite / revise prompts get the material's opening tidied; anything else
  ``Offline answer: <the request, condensed>.``
* **JSON mode.** An object shaped like the first JSON example in the prompt
  (placeholders such as ``<int>`` filled from a stable hash), else
  ``{"answer": <the text answer>}``.
* **max_tokens.** An answer longer than the request's ``max_tokens`` chunks
  (words) is cut after that many.

The same request always gets the same reply. Text is streamed word by word
through ``on_delta``; the pause between chunks is ``token_delay_s`` (default:
env ``OFFLINE_TOKEN_DELAY_S``, else 0.005 s). Inputs are capped, so a
megabyte prompt costs milliseconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from dataclasses import dataclass, replace
from typing import Any

from engine.llm.base import ChatReply, ChatRequest, DeltaSink, FailureSink, Message, ToolCall, ToolSchema
from engine.untrusted import read_blocks

__all__ = ["OfflineChatModel", "DEFAULT_TOKEN_DELAY_S", "TOKEN_DELAY_ENV"]

TOKEN_DELAY_ENV = "OFFLINE_TOKEN_DELAY_S"
DEFAULT_TOKEN_DELAY_S = 0.005

_TEXT_CAP = 20_000  # characters of one message the rules look at
_SCAN_CAP = 4_000  # characters scanned for expressions, paths, quoted phrases
_WORD_COUNT_CAP = 200_000  # characters counted exactly; the rest is estimated
_QUERY_CAP = 200
_EXPRESSION_CAP = 200
_ANSWER_WORDS = 30
_SUMMARY_WORDS = 40
_TOOL_RESULT_WORDS = 25
_MAX_TOOL_RESULTS = 4
_MAX_MEMORY_LINES = 100

# ---------------------------------------------------------------- small text helpers

_CHUNK_RE = re.compile(r"\s+|\S+\s*")
_WORD_RE = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    [
        "a", "an", "the", "is", "are", "was", "were", "be", "been", "am", "i", "me", "my", "mine", "you", "your",
        "yours", "we", "our", "us", "he", "she", "it", "its", "they", "them", "their", "what", "whats", "who", "whom",
        "which", "when", "where", "why", "how", "do", "does", "did", "done", "of", "to", "in", "on", "at", "for",
        "from", "with", "by", "about", "as", "and", "or", "but", "if", "then", "than", "so", "that", "this", "these",
        "those", "there", "here", "s", "t", "d", "ll", "re", "ve", "m", "not", "no", "yes", "can", "could", "would",
        "should", "will", "shall", "may", "might", "must", "have", "has", "had", "please", "tell", "know", "remember",
        "any", "some"
    ]
)


def _flatten(content: Any) -> str:
    """A message's text: plain strings, or the text parts of a content list."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "\n".join(parts)
    return str(content)


def _squash(text: str) -> str:
    """Whitespace runs collapsed to one space, ends stripped (input capped first)."""
    return " ".join(text[:_TEXT_CAP].split())


def _words_cap(text: str, limit: int) -> str:
    """The first ``limit`` words of ``text`` (at most ``limit * 12`` characters), with an ellipsis if cut."""
    char_limit = limit * 12
    words = text[: char_limit * 4].split()
    joined = " ".join(words[:limit])
    cut = len(words) > limit or len(text) > char_limit * 4
    if len(joined) > char_limit:
        joined, cut = _chars_cap(joined, char_limit), True
    return joined.rstrip(",;:") + "…" if cut else joined


def _chars_cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(",;: ")


def _end_sentence(text: str) -> str:
    text = text.rstrip()
    if not text:
        return text
    if text[-1] in ".!?…":
        return text
    return text.rstrip(",;:") + "."


def _strip_end_punct(text: str) -> str:
    return text.rstrip().rstrip(".!?;:,").rstrip()


def _count_words(text: str) -> int:
    if len(text) <= _WORD_COUNT_CAP:
        return len(text.split())
    head = len(text[:_WORD_COUNT_CAP].split())
    return head * len(text) // _WORD_COUNT_CAP


def _content_words(text: str) -> set[str]:
    words = set()
    for word in _WORD_RE.findall(text.lower()):
        if word in _STOPWORDS:
            continue
        if len(word) > 3 and word.endswith("s"):
            word = word[:-1]
        words.add(word)
    return words


def _stable_int(*parts: str) -> int:
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "replace")).digest()
    return int.from_bytes(digest[:8], "big")


def _chunks(text: str) -> list[str]:
    """Word-sized pieces with their trailing whitespace; they join to ``text``."""
    return _CHUNK_RE.findall(text)


# ---------------------------------------------------------------- the conversation, read once


@dataclass(slots=True)
class _ToolResult:
    name: str
    arguments: dict[str, Any]
    content: str
    failed: bool = False  # the call's data block says status="error"


@dataclass(slots=True)
class _Prompt:
    """What the rules need from a request."""

    user: str  # last user message, memory block removed, capped
    system: str  # system messages joined, memory block removed, capped
    memory: list[str]  # lines of the first <memory> block
    tool_results: list[_ToolResult]  # tool messages after the last user message


_MEMORY_OPEN = "<memory>"
_MEMORY_CLOSE = "</memory>"


def _split_memory(text: str) -> tuple[str, list[str] | None]:
    """``text`` without its ``<memory>`` block, and the block's lines (None: no block)."""
    lower_head = text[: _TEXT_CAP * 5].lower()
    start = lower_head.find(_MEMORY_OPEN)
    if start < 0:
        return text, None
    end = lower_head.find(_MEMORY_CLOSE, start)
    if end < 0:
        return text, None
    block = text[start + len(_MEMORY_OPEN) : end][:_TEXT_CAP]
    rest = text[:start] + "\n" + text[end + len(_MEMORY_CLOSE) :]
    lines = []
    for raw in block.splitlines():
        line = re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", raw).strip()
        if line:
            lines.append(_chars_cap(line, 300))
        if len(lines) >= _MAX_MEMORY_LINES:
            break
    return rest, lines


def _read(messages: list[Message]) -> _Prompt:
    last_user = -1
    for index, message in enumerate(messages):
        if message.get("role") == "user":
            last_user = index
    memory: list[str] | None = None
    systems: list[str] = []
    user = ""
    for index, message in enumerate(messages):
        role = message.get("role")
        if role not in ("system", "developer", "user"):
            continue
        text, blocks = read_blocks(_flatten(message.get("content"))[: _TEXT_CAP * 5])
        for block in blocks:  # data, not the request: only a memory block inside is read
            _, lines = _split_memory(block.content)
            if lines is not None and memory is None:
                memory = lines
        text, lines = _split_memory(text)
        if lines is not None and memory is None:
            memory = lines
        if role in ("system", "developer"):
            systems.append(text[:_TEXT_CAP])
        elif index == last_user:
            user = text[:_TEXT_CAP]
    if last_user < 0:
        user = _last_text(messages)
    results = _tool_results(messages[last_user + 1 :])
    return _Prompt(user=user, system="\n".join(systems)[:_TEXT_CAP], memory=memory or [], tool_results=results)


def _last_text(messages: list[Message]) -> str:
    """With no user message: the last message with any text (not a system one)."""
    for message in reversed(messages):
        if message.get("role") not in ("system", "developer") and _flatten(message.get("content")).strip():
            return _flatten(message.get("content"))[:_TEXT_CAP]
    return ""


def _tool_results(messages: list[Message]) -> list[_ToolResult]:
    """The tool results among ``messages``, named by the tool calls the assistant made (by id)."""
    calls: dict[str, tuple[str, dict[str, Any]]] = {}
    results: list[_ToolResult] = []
    for message in messages:
        role = message.get("role")
        if role == "assistant":
            for call in message.get("tool_calls") or ():
                if not isinstance(call, dict):
                    continue
                function = call.get("function") or {}
                name = str(function.get("name") or call.get("name") or "tool")
                arguments = function.get("arguments", call.get("arguments"))
                calls[str(call.get("id"))] = (name, _parse_arguments(arguments))
        elif role == "tool":
            name, arguments = calls.get(str(message.get("tool_call_id")), (str(message.get("name") or "tool"), {}))
            if message.get("name") and name == "tool":
                name = str(message["name"])
            content = _flatten(message.get("content"))[: _TEXT_CAP * 2]
            _, blocks = read_blocks(content)
            if blocks:
                results.append(_ToolResult(name, arguments, blocks[0].content[:_TEXT_CAP], blocks[0].status == "error"))
            else:
                results.append(_ToolResult(name, arguments, content[:_TEXT_CAP]))
    return results


def _parse_arguments(arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, dict):
        return arguments
    if isinstance(arguments, str) and len(arguments) < _TEXT_CAP:
        try:
            value = json.loads(arguments)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}
    return {}


# ---------------------------------------------------------------- argument extraction

_FUNCTIONS = "sqrt|cbrt|sin|cos|tan|asin|acos|atan|log|log10|log2|ln|exp|abs|round|pow|min|max|floor|ceil|factorial"
_EXPR_SPAN_RE = re.compile(
    r"(?:\d+(?:\.\d+)?|\.\d+|\*\*|//|[-+*/%^(),]|\b(?:" + _FUNCTIONS + r"|pi)\b|[ \t])+",
    re.IGNORECASE,
)
_WORD_OPERATORS = (
    (re.compile(r"\bmultiplied\s+by\b", re.I), "*"),
    (re.compile(r"\bdivided\s+by\b", re.I), "/"),
    (re.compile(r"\bto\s+the\s+power\s+of\b", re.I), "**"),
    (re.compile(r"(?<=\d)\s*(?:\btimes\b|[×x])\s*(?=[\d(])", re.I), " * "),
    (re.compile(r"\bplus\b", re.I), "+"),
    (re.compile(r"(?<=[\d)])\s*\bminus\b", re.I), " -"),
    (re.compile(r"÷"), "/"),
    (re.compile(r"−"), "-"),
    (re.compile(r"\bsquare\s+root\s+of\s+(\d+(?:\.\d+)?)", re.I), r"sqrt(\1)"),
)
_DATE_RE = re.compile(r"\b\d{4}-\d{1,2}-\d{1,2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b")
_THOUSANDS_RE = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_BINARY_RE = re.compile(r"[\d)a-z]\s*(?:\*\*|//|[-+*/%^])\s*[-\d(.a-z]", re.IGNORECASE)
_CALL_RE = re.compile(r"\b(?:" + _FUNCTIONS + r")\s*\(", re.IGNORECASE)


def _balance(expr: str) -> str:
    """Drop unmatched parentheses."""
    out: list[str] = []
    opens: list[int] = []
    for char in expr:
        if char == ")":
            if not opens:
                continue
            opens.pop()
        elif char == "(":
            opens.append(len(out))
        out.append(char)
    for position in reversed(opens):
        del out[position]
    return "".join(out)


def _tidy_expression(span: str) -> str:
    expr = span
    for _ in range(4):
        before = expr
        expr = expr.strip().strip(",")
        expr = re.sub(r"^(?:\*\*|//|[+*/%^)])+", "", expr).strip()
        expr = re.sub(r"(?:\*\*|//|[-+*/%^(,])+$", "", expr).strip()
        expr = _balance(expr)
        if expr == before:
            break
    return expr


def _top_level_parts(expr: str) -> list[str]:
    """``expr`` split at commas outside parentheses."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in expr:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def extract_expression(text: str) -> str | None:
    """The first arithmetic expression in ``text`` (``"What is (12 + 30) * 2?"`` → ``"(12 + 30) * 2"``)."""
    scan = _DATE_RE.sub(" ", text[:_SCAN_CAP])
    scan = _THOUSANDS_RE.sub("", scan)
    for pattern, replacement in _WORD_OPERATORS:
        scan = pattern.sub(replacement, scan)
    for match in _EXPR_SPAN_RE.finditer(scan):
        for part in _top_level_parts(match.group(0)):
            expr = _tidy_expression(part)
            expr = re.sub(r"[ \t]+", " ", expr)
            if len(expr) > _EXPRESSION_CAP:
                expr = _tidy_expression(expr[:_EXPRESSION_CAP])
            if not re.search(r"\d|\bpi\b", expr, re.IGNORECASE):
                continue
            if _BINARY_RE.search(expr) or _CALL_RE.search(expr):
                return expr
    return None


_QUOTED_RES = (
    re.compile(r'"([^"\n]{2,200})"'),
    re.compile(r"“([^”\n]{2,200})”"),
    re.compile(r"(?<![\w'])'([^'\n]{2,200})'(?![\w'])"),
)


def _query_text(text: str) -> str:
    """A quoted phrase from the request if there is one, else the request itself (≤ 200 chars)."""
    scan = _outside_code(text)[:_SCAN_CAP]
    for pattern in _QUOTED_RES:
        match = pattern.search(scan)
        if match and match.group(1).strip():
            return _chars_cap(" ".join(match.group(1).split()), _QUERY_CAP)
    return _chars_cap(_squash(scan), _QUERY_CAP)


_PATH_TOKEN_RE = re.compile(r"[\w./~-]+")
_FILE_RE = re.compile(r"^[\w.~-]*\w\.[A-Za-z][A-Za-z0-9]{0,7}$")
_NOT_PATHS = frozenset({"e.g", "i.e", "etc", "vs", "a.m", "p.m", "u.s", "u.k", "no", "approx"})


def extract_path(text: str) -> str | None:
    """The first path-looking token (``notes/today.md``, ``./data.csv``, ``report.txt``)."""
    for match in _PATH_TOKEN_RE.finditer(text[:_SCAN_CAP]):
        start = match.start()
        if start >= 3 and text[start - 3 : start] == "://":
            continue
        if start and text[start - 1] in ":@":
            continue
        token = match.group(0).rstrip(".,;:!?-")
        if not token or token.lower() in _NOT_PATHS:
            continue
        if "/" in token:
            if re.search(r"[A-Za-z_]", token) and token.strip("/.~"):
                return token
            continue
        if _FILE_RE.match(token) and not re.match(r"^\d", token):
            stem = token.rsplit(".", 1)[0]
            if stem.lower() not in _NOT_PATHS and len(stem) >= 1:
                return token
    return None


def extract_code(text: str) -> str | None:
    """The content of the first ``` fenced block, or None."""
    start = text.find("```")
    if start < 0:
        return None
    newline = text.find("\n", start + 3)
    if newline < 0:
        return None
    end = text.find("```", newline)
    if end < 0:
        return None
    code = text[newline + 1 : end]
    return code[:_TEXT_CAP].strip("\n") or None


def _outside_code(text: str) -> str:
    """``text`` without its ``` fenced blocks."""
    text = text[:_TEXT_CAP]
    parts = text.split("```")
    return " ".join(parts[0::2]) if len(parts) > 2 else text


def _numbers(text: str) -> list[float]:
    values = []
    for match in re.finditer(r"(?<![\w.])-?\d+(?:\.\d+)?", _outside_code(text)[:_SCAN_CAP]):
        try:
            values.append(float(match.group(0)))
        except ValueError:
            continue
        if len(values) >= 50:
            break
    return values


# ---------------------------------------------------------------- tool calls

_EXPRESSION_NAMES = frozenset({"expression", "expr", "formula", "equation", "calculation"})
_PATH_NAMES = frozenset({"path", "file", "filename", "file_name", "filepath", "file_path", "dir", "directory"})
_CODE_NAMES = frozenset({"code", "source", "script", "program", "snippet"})
_QUERY_NAMES = frozenset(
    {"query", "q", "text", "search", "search_query", "question", "prompt", "input", "topic", "keywords",
     "message", "content", "request", "term", "terms"}
)
_SKIP = object()  # a required argument that cannot be found: do not call the tool
_OMIT = object()  # an optional argument with nothing to derive: leave it out


def _schema_type(schema: dict[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind is None:
        for key in ("anyOf", "oneOf", "allOf"):
            options = schema.get(key)
            if isinstance(options, list):
                for option in options:
                    if isinstance(option, dict):
                        inner = _schema_type(option)
                        if inner and inner != "null":
                            return inner
    if kind is None and "properties" in schema:
        return "object"
    return kind if isinstance(kind, str) else None


def _number_in_bounds(text: str, schema: dict[str, Any], integer: bool) -> float | None:
    low = schema.get("minimum")
    high = schema.get("maximum")
    xlow = schema.get("exclusiveMinimum")
    xhigh = schema.get("exclusiveMaximum")
    for value in _numbers(text):
        if integer and value != int(value):
            continue
        if isinstance(low, (int, float)) and value < low:
            continue
        if isinstance(high, (int, float)) and value > high:
            continue
        if isinstance(xlow, (int, float)) and not isinstance(xlow, bool) and value <= xlow:
            continue
        if isinstance(xhigh, (int, float)) and not isinstance(xhigh, bool) and value >= xhigh:
            continue
        return value
    return None


def _fallback_number(schema: dict[str, Any], integer: bool) -> float:
    value: float = 1
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    if isinstance(low, (int, float)) and value <= low:
        value = low + (1 if "minimum" not in schema else 0)
    if isinstance(high, (int, float)) and value >= high:
        value = high - (1 if "maximum" not in schema else 0)
    return value


def _string_argument(key: str, schema: dict[str, Any], required: bool, user: str) -> Any:
    """A string argument: the user's query text (capped at ``maxLength``), or ``_SKIP`` / ``_OMIT``."""
    if not required and key not in _QUERY_NAMES:
        return _OMIT
    text = _query_text(user)
    if not text:
        return _SKIP if required else _OMIT
    max_length = schema.get("maxLength")
    if isinstance(max_length, int) and max_length > 0:
        text = _chars_cap(text, max_length)[:max_length]
    return text


def _number_argument(integer: bool, schema: dict[str, Any], required: bool, user: str) -> Any:
    """A number from the user's text within the schema's bounds, else its default or a fallback (or ``_OMIT``)."""
    found = _number_in_bounds(user, schema, integer)
    if found is None:
        if not required:
            return _OMIT
        default = schema.get("default")
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            found = default
        else:
            found = _fallback_number(schema, integer)
    return int(found) if integer else float(found)


def _argument(tool: ToolSchema, name: str, schema: dict[str, Any], required: bool, user: str) -> Any:
    """One argument's value, or ``_SKIP`` / ``_OMIT``."""
    missing = _SKIP if required else _OMIT
    key = name.lower()
    kind = _schema_type(schema)
    if "const" in schema:
        return schema["const"]
    if key in _EXPRESSION_NAMES or ("calc" in tool.name.lower() and kind in ("string", None)):
        expr = extract_expression(user)
        return expr if expr is not None else missing
    if key in _PATH_NAMES or key.endswith("_path") or key.endswith("_file"):
        path = extract_path(user)
        return path if path is not None else missing
    if key in _CODE_NAMES:
        code = extract_code(user)
        return code if code is not None else missing
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0] if required else _OMIT
    if kind == "string" or kind is None:
        return _string_argument(key, schema, required, user)
    if kind in ("integer", "number"):
        return _number_argument(kind == "integer", schema, required, user)
    if not required:
        return _OMIT
    if kind == "boolean":
        default = schema.get("default")
        return default if isinstance(default, bool) else False
    if kind == "array":
        return []
    if kind == "object":
        return {}
    if kind == "null":
        return None
    return missing


def _tool_arguments(tool: ToolSchema, user: str) -> dict[str, Any] | None:
    """Arguments for ``tool`` taken from the user's text, or None to skip the tool."""
    parameters = tool.parameters if isinstance(tool.parameters, dict) else {}
    properties = parameters.get("properties") or {}
    if not isinstance(properties, dict):
        properties = {}
    required = {str(name) for name in parameters.get("required") or () if isinstance(name, str)}
    arguments: dict[str, Any] = {}
    for name, schema in properties.items():
        value = _argument(tool, str(name), schema if isinstance(schema, dict) else {}, name in required, user)
        if value is _SKIP:
            return None
        if value is not _OMIT:
            arguments[str(name)] = value
    if any(name not in arguments for name in required):
        return None  # a required name without a property schema
    if not arguments and properties:
        return None  # nothing usable taken from the text
    return arguments


def _tool_calls(tools: tuple[ToolSchema, ...], user: str) -> tuple[ToolCall, ...]:
    calls: list[ToolCall] = []
    for tool in tools:
        arguments = _tool_arguments(tool, user)
        if arguments is None:
            continue
        calls.append(
            ToolCall(
                id=f"call_{len(calls)}_{tool.name}",
                name=tool.name,
                arguments=json.dumps(arguments, ensure_ascii=False),
            )
        )
    return tuple(calls)


# ---------------------------------------------------------------- text answers

_SUMMARY_RE = re.compile(r"\bsummari[sz]\w*|\bsummary\b|\btl;?dr\b|\bcondense\b|\bgist\b", re.IGNORECASE)
_CRITIQUE_RE = re.compile(
    r"\bcritiqu\w*|\breview\w*|\bcriticis\w*|\bfeedback\b|\bevaluat\w*|\bassess\w*", re.IGNORECASE
)
_REVISE_RE = re.compile(r"\brevis\w*|\brewrit\w*|\bimprove\b|\bpolish\w*|\bedit\b|\bproofread\w*", re.IGNORECASE)
_TASKS = (("summary", _SUMMARY_RE), ("critique", _CRITIQUE_RE), ("revise", _REVISE_RE))
_SENTENCE_RE = re.compile(r"\S.*?(?:[.!?]+[\"')\]]*(?=\s|$)|$)", re.MULTILINE)
_PERSONA_RE = re.compile(r"^\s*you\s+are\s+((?:an?|the)\s+[\w -]{1,40}?)\s*[.!\n]", re.IGNORECASE)


def _first_task(text: str) -> tuple[str, int] | None:
    """The task whose keyword comes first in ``text``, and where its keyword ends."""
    best: tuple[int, str, int] | None = None
    for task, pattern in _TASKS:
        match = pattern.search(text)
        if match and (best is None or match.start() < best[0]):
            best = (match.start(), task, match.end())
    return (best[1], best[2]) if best else None


def _instruction(user: str, system: str) -> tuple[str | None, str]:
    """The task the prompt asks for and the material it applies to."""
    text = user.strip()
    # The instruction is the request's first line, up to a colon.
    first_line = text.split("\n", 1)[0][:300]
    head = first_line
    colon = first_line.find(":")
    if colon >= 0:
        head = first_line[:colon]
    found = _first_task(head)
    if found:
        task, keyword_end = found
        if colon >= 0 and colon >= keyword_end:
            material = text[colon + 1 :]
        elif "\n" in text:
            material = text.split("\n", 1)[1]
        else:
            material = text[keyword_end:]
            material = re.sub(r"^\s*(?:the\s+following|this|these|that|it)\b[^:]*?:?", "", material, flags=re.I)
        material = material.strip()
        if task in ("critique", "revise") and not material:
            material = text
        return task, material or text
    # An instruction on the last line: material above it.
    if "\n" in text:
        above, last_line = text.rsplit("\n", 1)
        found = _first_task(last_line[:300])
        if found and above.strip():
            return found[0], above.strip()
    # The system prompt asks, the user supplies the material.
    found = _first_task(system[:500])
    if found and text:
        return found[0], text
    return None, text


def _sentences(material: str) -> list[str]:
    sentences = []
    for match in _SENTENCE_RE.finditer(material[:_SCAN_CAP]):
        sentence = " ".join(match.group(0).split())
        if re.search(r"\w", sentence):
            sentences.append(sentence)
        if len(sentences) >= 20:
            break
    return sentences


def _summary(material: str) -> str:
    sentences = _sentences(material)
    if not sentences:
        return "Summary: there is no text to summarize."
    picked = [sentences[0]]
    if len(sentences) > 1 and len((sentences[0] + " " + sentences[1]).split()) <= _SUMMARY_WORDS:
        picked.append(sentences[1])
    return "Summary: " + _end_sentence(_words_cap(" ".join(picked), _SUMMARY_WORDS))


def _critique(material: str) -> str:
    flat = _squash(material)
    if not flat:
        return "Critique: there is no text to review; provide the material to critique."
    words = flat.split()
    sentences = _sentences(material)
    quote = _words_cap(" ".join(words[:8]), 7)
    average = len(words) / max(1, len(sentences))
    parts = [f'Critique: the text opens with "{_strip_end_punct(quote)}" and runs {_count_words(material)} words.']
    parts.append("Strength: it states its point directly.")
    if not re.search(r"\d", flat[:_SCAN_CAP]):
        parts.append("Improve: add concrete evidence or figures.")
    elif average > 25:
        parts.append("Improve: split the long sentences.")
    else:
        parts.append("Improve: close with a clear takeaway.")
    return " ".join(parts)


def _revision(material: str) -> str:
    sentences = [s[0].upper() + s[1:] for s in _sentences(material)[:3]]
    if not sentences:
        return "Revised: there is no draft to revise."
    return "Revised: " + _end_sentence(_words_cap(" ".join(sentences), _SUMMARY_WORDS))


def _persona(system: str) -> str | None:
    if not system or len(system.strip()) > 200:
        return None
    match = _PERSONA_RE.match(system.strip() + "\n")
    if not match:
        return None
    persona = " ".join(match.group(1).split())
    return persona if len(persona.split()) <= 5 else None


def _plain_answer(user: str, system: str) -> str:
    task, material = _instruction(user, system)
    if task == "summary":
        return _summary(material)
    if task == "critique":
        return _critique(material)
    if task == "revise":
        return _revision(material)
    request = _strip_end_punct(_words_cap(_squash(user), _ANSWER_WORDS))
    if not request:
        return "Offline answer: there is no request to answer."
    persona = _persona(system)
    lead = f"Offline answer (as {persona}): " if persona else "Offline answer: "
    return _end_sentence(lead + request)


def _best_memory(lines: list[str], question: str) -> str | None:
    if not lines:
        return None
    asked = _content_words(question)
    best, best_score = lines[0], 0
    for line in lines:
        score = len(asked & _content_words(line))
        if score > best_score:
            best, best_score = line, score
    return best


def _describe_result(result: _ToolResult) -> str:
    content = result.content.strip()
    name = result.name
    error: str | None = None
    value: Any = content
    if result.failed:
        error = content or "unknown error"
    elif re.match(r"^\s*error\b", content, re.IGNORECASE):
        error = re.sub(r"^\s*error\b\s*:?\s*", "", content, flags=re.IGNORECASE) or "unknown error"
    else:
        try:
            value = json.loads(content) if content[:1] in '{["-0123456789tfn' else content
        except ValueError:
            value = content
        if isinstance(value, dict):
            if value.get("error"):
                error = str(value["error"])
            else:
                for key in ("result", "value", "answer", "output", "content", "text", "results", "data"):
                    if key in value:
                        value = value[key]
                        break
    if error is not None:
        error = _strip_end_punct(_words_cap(" ".join(error.split()), _TOOL_RESULT_WORDS))
        return f"The {name} tool returned an error: {error}."
    if isinstance(value, (dict, list)):
        shown = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, bool):
        shown = "true" if value else "false"
    elif value is None:
        shown = "no result"
    else:
        shown = str(value)
    shown = _chars_cap(_words_cap(" ".join(shown.split()), _TOOL_RESULT_WORDS), 240) or "an empty result"
    expression = next(
        (v for k, v in result.arguments.items() if k.lower() in _EXPRESSION_NAMES and isinstance(v, str)), None
    )
    if expression is None and "calc" in name.lower():
        expression = next((v for v in result.arguments.values() if isinstance(v, str)), None)
    if expression:
        return _end_sentence(f"Using {name}: {_chars_cap(expression, 120)} = {shown}")
    return _end_sentence(f"Using {name}: {shown}")


def _text_answer(prompt: _Prompt) -> str:
    parts = []
    memory = _best_memory(prompt.memory, prompt.user)
    if memory:
        parts.append(_end_sentence("From memory: " + _strip_end_punct(_words_cap(memory, _ANSWER_WORDS))))
    for result in prompt.tool_results[:_MAX_TOOL_RESULTS]:
        parts.append(_describe_result(result))
    if len(prompt.tool_results) > _MAX_TOOL_RESULTS:
        parts.append(f"({len(prompt.tool_results) - _MAX_TOOL_RESULTS} more tool results.)")
    parts.append(_plain_answer(prompt.user, prompt.system))
    return " ".join(parts)


# ---------------------------------------------------------------- JSON mode

_PLACEHOLDER_RE = re.compile(r"(?<![\"\w])<([^<>\n\"]{1,40})>(?![\"\w])")
_ELLIPSIS_VALUE_RE = re.compile(r"(?<=[:\[])\s*(?:\.\.\.|…)\s*(?=[,}\]])|(?<=,)\s*(?:\.\.\.|…)\s*(?=[\]])")
_ELLIPSIS_MORE_RE = re.compile(r",\s*(?:\.\.\.|…)\s*(?=[}\]])")
_PH_PREFIX = "\x00ph:"
_OBJECT_START_RE = re.compile(r'\{\s*"')  # JSON objects start with a quoted key
_JSON_SCAN_BUDGET = 40_000  # characters brace-matched per search
_MAX_OBJECT_CHARS = 4_000
_ANSWER_KEYS = frozenset({"answer", "response", "summary", "result", "text", "output", "reply", "content", "message"})


def _matching_brace(text: str, start: int) -> int:
    """Index of the ``}`` closing the ``{`` at ``start`` (quotes respected), or -1."""
    depth = 0
    in_string = False
    escaped = False
    limit = min(len(text), start + _MAX_OBJECT_CHARS)
    for index in range(start, limit):
        char = text[index]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index
    return -1


def _parse_example(candidate: str) -> dict[str, Any] | None:
    try:
        value = json.loads(candidate)
    except ValueError:
        marked = _PLACEHOLDER_RE.sub(lambda m: json.dumps(_PH_PREFIX + m.group(1).strip()), candidate)
        marked = _ELLIPSIS_MORE_RE.sub("", marked)
        ellipsis = json.dumps(_PH_PREFIX + "...")
        marked = _ELLIPSIS_VALUE_RE.sub(lambda _m: ellipsis, marked)
        try:
            value = json.loads(marked)
        except ValueError:
            return None
    return value if isinstance(value, dict) and value else None


def find_json_example(text: str) -> dict[str, Any] | None:
    """The first ``{...}`` in ``text`` that parses as a non-empty JSON object (placeholders allowed)."""
    found = _locate_json_example(text)
    return found[0] if found else None


def _locate_json_example(text: str) -> tuple[dict[str, Any], int, int] | None:
    """The first JSON example in ``text`` and its span."""
    text = text[:_TEXT_CAP]
    budget = _JSON_SCAN_BUDGET
    for match in _OBJECT_START_RE.finditer(text):
        start = match.start()
        end = _matching_brace(text, start)
        budget -= (end - start) if end > start else min(_MAX_OBJECT_CHARS, len(text) - start)
        if end > start:
            example = _parse_example(text[start : end + 1])
            if example is not None:
                return example, start, end + 1
        if budget <= 0:
            break
    return None


def _placeholder(value: Any) -> str | None:
    """The placeholder's text if ``value`` is one (``"<int>"``, ``"..."``), else None."""
    if not isinstance(value, str):
        return None
    if value.startswith(_PH_PREFIX):
        return value[len(_PH_PREFIX) :]
    stripped = value.strip()
    if stripped in ("...", "…", ""):
        return "..."
    match = re.fullmatch(r"<([^<>]{1,40})>", stripped)
    return match.group(1).strip() if match else None


def _fill_placeholder(hint: str, key: str, seed: str, answer: str, phrase: str) -> Any:
    """A deterministic value for a placeholder such as ``<int>``, ``<1-10>``, ``<positive|negative>``."""
    lowered = hint.lower().strip()
    number = _stable_int(seed, key, hint)
    rng = re.fullmatch(r"[^\d-]*(-?\d+(?:\.\d+)?)\s*(?:-|–|\.\.|to)\s*(-?\d+(?:\.\d+)?)[^\d]*", lowered)
    if rng:
        low, high = float(rng.group(1)), float(rng.group(2))
        if high < low:
            low, high = high, low
        if "." in rng.group(1) or "." in rng.group(2) or "float" in lowered:
            return round(low + (number % 1001) / 1000 * (high - low), 2)
        return int(low) + number % (int(high) - int(low) + 1)
    options = [o.strip() for o in re.split(r"\s*[|/]\s*|\s+or\s+", hint.strip()) if o.strip()]
    if len(options) > 1 and all(len(o.split()) <= 3 for o in options):
        if {o.lower() for o in options} == {"true", "false"}:
            return number % 2 == 0
        return options[number % len(options)]
    if re.search(r"\b(?:int|integer|count|age|year)\b", lowered):
        return 1 + number % 10
    if re.search(r"\b(?:number|float|double|score|rating|probability|confidence)\b", lowered):
        return round((number % 1001) / 1000, 2)
    if re.search(r"\b(?:bool|boolean)\b", lowered):
        return number % 2 == 0
    if re.search(r"\b(?:list|array)\b", lowered):
        return [phrase]
    return answer if key.lower() in _ANSWER_KEYS else phrase


def _fill(value: Any, key: str, seed: str, answer: str, phrase: str) -> Any:
    hint = _placeholder(value)
    if hint is not None:
        return _fill_placeholder(hint, key, seed, answer, phrase)
    if isinstance(value, dict):
        return {str(k): _fill(v, str(k), seed, answer, phrase) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(item, key, seed, answer, phrase) for item in value]
    return value


def _json_answer(prompt: _Prompt, messages: list[Message]) -> str:
    example: dict[str, Any] | None = None
    located = _locate_json_example(prompt.user)
    if located is not None:
        # The example is format, not request: answer the rest of the message.
        example, start, end = located
        prompt = replace(prompt, user=(prompt.user[:start] + " " + prompt.user[end:]).strip())
    else:
        example = find_json_example(prompt.system)
        if example is None:
            for message in messages:
                if message.get("role") in ("user", "system", "developer"):
                    example = find_json_example(_flatten(message.get("content")))
                    if example is not None:
                        break
    answer = _text_answer(prompt)
    if example is None:
        return json.dumps({"answer": answer}, ensure_ascii=False)
    seed = _squash(prompt.user)[:_SCAN_CAP]
    phrase = _short_phrase(prompt.user)
    return json.dumps(_fill(example, "", seed, answer, phrase), ensure_ascii=False)


def _short_phrase(text: str) -> str:
    """A quoted phrase from ``text``, else its first sentence, in at most 8 words."""
    scan = text[:_SCAN_CAP]
    for pattern in _QUOTED_RES:
        match = pattern.search(scan)
        if match and match.group(1).strip():
            return _strip_end_punct(_words_cap(match.group(1), 8))
    sentences = _sentences(scan)
    first = sentences[0] if sentences else ""
    return _strip_end_punct(_words_cap(first, 8)) or "offline"


# ---------------------------------------------------------------- the model


class OfflineChatModel:
    """A deterministic model that needs no endpoint; see the module docstring for its rules.

    Args:
        token_delay_s: pause between streamed chunks; None: ``OFFLINE_TOKEN_DELAY_S`` of the environment's
            settings (``engine.config``; default 0.005 s), read here once.
    """

    name = "offline"

    def __init__(self, *, token_delay_s: float | None = None):
        if token_delay_s is None:
            from engine.config import Settings  # the default for direct use: the environment's settings

            token_delay_s = Settings.from_env().llm.offline_token_delay_s
        self._token_delay_s = max(0.0, float(token_delay_s))

    @property
    def token_delay_s(self) -> float:
        """The pause between chunks, in seconds."""
        return self._token_delay_s

    async def chat(
        self, request: ChatRequest, on_delta: DeltaSink, on_failure: FailureSink | None = None
    ) -> ChatReply:
        """Answer one round; see the module docstring for the rules.

        Its counts are exact (it counts its own words), and it never fails a try,
        so ``on_failure`` is never called. ``max_tokens`` cuts the answer after that many chunks.
        """
        messages = list(request.messages)
        prompt = _read(messages)
        prompt_tokens = max(1, sum(_count_words(_flatten(m.get("content"))) for m in messages))

        if request.tools and not prompt.tool_results:
            calls = _tool_calls(tuple(request.tools), prompt.user)
            if calls:
                spoken = sum(len(_chunks(c.name + " " + c.arguments)) for c in calls)
                return ChatReply(
                    content="",
                    tool_calls=calls,
                    model=self.name,
                    prompt_tokens=prompt_tokens,
                    completion_tokens=max(1, spoken),
                    extra={"offline_rule": "tool_calls"},
                )

        content = _json_answer(prompt, messages) if request.response_format == "json" else _text_answer(prompt)

        delay = self.token_delay_s
        chunks = _chunks(content)
        cut = request.max_tokens is not None and len(chunks) > request.max_tokens
        if cut:
            chunks = chunks[: request.max_tokens]
            content = "".join(chunks)
        for index, chunk in enumerate(chunks):
            if index:
                await asyncio.sleep(delay)
            on_delta(chunk)
        return ChatReply(
            content=content,
            model=self.name,
            prompt_tokens=prompt_tokens,
            completion_tokens=len(chunks),
            extra={
                "offline_rule": "json" if request.response_format == "json" else "text",
                "finish_reason": "length" if cut else "stop",
            },
        )
