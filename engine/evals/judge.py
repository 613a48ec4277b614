"""``llm_judge``: a rubric judged by the configured model, which answers a score 0..1 and a reason.

The output, the expected value and the inputs go to the model inside untrusted data blocks
(:mod:`engine.untrusted`): the judged text cannot instruct the judge. When the offline model
judges (no endpoint configured), its verdict is a deterministic stand-in and the reason says so.
"""

from __future__ import annotations

import json
import math
from typing import Any

from engine.evals.scorers import Score, text_of
from engine.llm import ChatModel
from engine.llm.base import ChatRequest
from engine.untrusted import untrusted_block

DEFAULT_RUBRIC = "The output answers the question correctly and agrees with the expected value."
OFFLINE_LABEL = "judged by the offline model (a stand-in: configure a model for real judgements)"


async def judge(model: ChatModel, model_name: str, rubric: str, output: Any, expected: Any, inputs: Any) -> Score:
    """One verdict; never raises on a bad reply (it scores 0 with the reason)."""
    prompt = (
        f"Rubric: {rubric or DEFAULT_RUBRIC}\n"
        "Judge the output against the rubric. Reply with JSON only, like "
        '{"score": <number between 0 and 1>, "reason": "<one sentence>"}.\n'
        + untrusted_block("eval:inputs", text_of(inputs)[:4000], "The row's inputs.")
        + "\n"
        + untrusted_block("eval:expected", text_of(expected)[:4000], "The expected output.")
        + "\n"
        + untrusted_block("eval:output", text_of(output)[:8000], "The output to judge.")
    )
    request = ChatRequest(
        messages=[{"role": "system", "content": "You are a strict evaluator."}, {"role": "user", "content": prompt}],
        model=model_name,
        temperature=0,
        response_format="json",
        max_tokens=200,
    )
    try:
        reply = await model.chat(request, lambda _chunk: None)
    except Exception as exc:  # the judge's endpoint failing scores the row 0, visibly
        return Score(0.0, f"the judge failed: {type(exc).__name__}: {str(exc)[:160]}")
    offline = getattr(model, "name", "") == "offline"
    verdict = _parse(reply.content)
    if isinstance(verdict, str):
        return Score(0.0, verdict + (f"; {OFFLINE_LABEL}" if offline else ""))
    value, reason = verdict
    if offline:
        reason = f"{reason} [{OFFLINE_LABEL}]" if reason else OFFLINE_LABEL
    return Score(value, reason)


def _parse(content: str) -> tuple[float, str] | str:
    try:
        data = json.loads(content)
    except (json.JSONDecodeError, TypeError):
        return f"the judge did not answer JSON: {str(content)[:80]!r}"
    if not isinstance(data, dict):
        return "the judge's answer is not a JSON object"
    raw = data.get("score")
    if isinstance(raw, str):
        try:
            raw = float(raw)
        except ValueError:
            raw = None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        return f"the judge gave no numeric score: {str(content)[:80]!r}"
    return min(1.0, max(0.0, float(raw))), str(data.get("reason") or "")[:300]
