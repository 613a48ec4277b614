"""``python -m engine``: run and validate workflows from a terminal.

stdout carries only the run's result as one JSON object; progress, the
offline-model mark and errors go to stderr. Exit codes: 0 completed, 1 failed
or cancelled, 2 invalid file or inputs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any, Callable, TextIO

from engine import InputsInvalid, WorkflowInvalid, check_inputs, load_workflow
from engine.events import Event
from engine.executor import RunResult, execute
from engine.llm import default_chat_model

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    return int(args.handler(args))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine", description="Run and validate workflow/v1 files.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a workflow and print its result as JSON")
    run.add_argument("file", help="workflow file (.json, .yaml)")
    run.add_argument("--input", action="append", default=[], metavar="NAME=VALUE", help="an input; VALUE is JSON if it parses")
    run.add_argument("--inputs-json", metavar="JSON", help="all inputs as one JSON object")
    run.add_argument("--events", metavar="PATH", help="write every event as a JSON line to PATH, flushed live")
    run.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    run.set_defaults(handler=_cmd_run)
    validate = sub.add_parser("validate", help="check a workflow and list every problem")
    validate.add_argument("file")
    validate.set_defaults(handler=_cmd_validate)
    return parser


def _cmd_validate(args: argparse.Namespace) -> int:
    try:
        workflow = load_workflow(Path(args.file))
    except WorkflowInvalid as exc:
        print(f"{args.file}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    print(f"{args.file}: valid ({len(workflow.nodes)} nodes, {len(workflow.edges)} edges)", file=sys.stderr)
    return EXIT_OK


def parse_inputs(pairs: list[str], inputs_json: str | None) -> dict[str, Any]:
    """``--inputs-json`` then each ``NAME=VALUE`` (JSON when it parses, else a string)."""
    values: dict[str, Any] = {}
    if inputs_json:
        try:
            loaded = json.loads(inputs_json)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--inputs-json is not valid JSON: {exc.msg}") from None
        if not isinstance(loaded, dict):
            raise ValueError("--inputs-json must be a JSON object")
        values.update(loaded)
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"--input {pair!r} must look like NAME=VALUE")
        try:
            values[name] = json.loads(raw)
        except json.JSONDecodeError:
            values[name] = raw
    return values


def _cmd_run(args: argparse.Namespace) -> int:
    try:
        workflow = load_workflow(Path(args.file))
    except WorkflowInvalid as exc:
        print(f"{args.file}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    try:
        inputs = check_inputs(workflow, parse_inputs(args.input, args.inputs_json))
    except (ValueError, InputsInvalid) as exc:
        print(f"{args.file}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    llm = default_chat_model()
    sinks: list[Callable[[Event], None]] = []
    if not args.quiet:
        sinks.append(Progress(sys.stderr).on_event)
    try:
        events_file = open(args.events, "w", encoding="utf-8") if args.events else None  # noqa: SIM115
    except OSError as exc:
        print(f"--events {args.events}: cannot write there: {exc.strerror}", file=sys.stderr)
        return EXIT_INVALID
    if events_file is not None:
        sinks.append(_jsonl_sink(events_file))
    try:
        result = asyncio.run(_run_with_signals(workflow, inputs, llm, sinks))
    finally:
        if events_file is not None:
            events_file.close()
    if any(e.type == "llm.completed" and e.data.get("model") == "offline" for e in result.events):
        print("note: answered by the offline model (set OPENAI_BASE_URL or OPENAI_API_KEY for a real one)", file=sys.stderr)
    if result.status != "completed":
        print(f"run {result.status}: {result.error or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(result.result, ensure_ascii=False))
    return EXIT_OK


async def _run_with_signals(workflow: Any, inputs: dict[str, Any], llm: Any, sinks: list[Callable[[Event], None]]) -> RunResult:
    """Run, cancelling cleanly on SIGINT/SIGTERM so the run ends ``cancelled``."""

    def fan_out(event: Event) -> None:
        for sink in sinks:
            sink(event)

    task = asyncio.create_task(execute(workflow, inputs, llm=llm, on_event=fan_out))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await task
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _jsonl_sink(stream: TextIO) -> Callable[[Event], None]:
    def write(event: Event) -> None:
        stream.write(json.dumps(event.to_dict(), ensure_ascii=False) + "\n")
        stream.flush()

    return write


class Progress:
    """A line per node on stderr: started, then done with status and duration."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def on_event(self, event: Event) -> None:
        line = self._line(event)
        if line:
            print(line, file=self.stream, flush=True)

    def _line(self, event: Event) -> str | None:
        data, node = event.data, event.node_id
        match event.type:
            case "run.started":
                return f"run {event.run_id} started"
            case "node.started":
                iteration = data.get("iteration", 0)
                return f"  > {node}" + (f" (iteration {iteration})" if iteration else "")
            case "node.completed":
                return f"  ok {node}  {data.get('duration_ms', 0):.1f} ms"
            case "node.failed":
                return f"  FAILED {node}: {data.get('error')}"
            case "node.skipped":
                return f"  skipped {node}"
            case "tool.called":
                return f"    tool {data.get('tool')}({json.dumps(data.get('args'), ensure_ascii=False)[:120]})"
            case "tool.result":
                outcome = f"error: {data['error']}" if "error" in data else json.dumps(data.get("result"), ensure_ascii=False)
                return f"    -> {outcome[:160]}  {data.get('duration_ms', 0):.1f} ms"
            case "llm.completed":
                mark = " [offline model]" if data.get("model") == "offline" else ""
                return f"    llm {data.get('model')}{mark}: {data.get('prompt_tokens')} + {data.get('completion_tokens')} tokens"
            case "log":
                return f"    {data.get('level')}: {data.get('message')}"
            case "run.completed" | "run.failed" | "run.cancelled":
                return f"run {event.type.split('.')[1]}"
            case _:
                return None
