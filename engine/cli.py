"""``python -m engine``: run, validate, list, show, resume and rerun workflows from a terminal.

``run``, ``resume`` and ``rerun`` go through the durable :class:`~engine.runtime.Runtime`
(the same store the dashboard reads: ``--db URL``, else ``DATABASE_URL``,
else ``$DATA_DIR/studio.db``) and follow the run's event stream. ``runs``
and ``show`` only read: they open the store alone (a
:class:`~engine.reader.RunReader`, no engine loop, no writer thread). stdout
carries only the run's result as one JSON object; progress, the
offline-model mark and errors go to stderr. Exit codes: 0 completed, 1 failed
or cancelled (or the store cannot be opened), 2 invalid file, inputs, run id
or store URL.
"""

from __future__ import annotations

import argparse
import getpass
import json
import signal
import sys
from collections.abc import Callable, Mapping
from typing import IO, Any, TextIO, assert_never

from engine import InputsInvalid, WorkflowInvalid, check_inputs, dashboard, load_workflow
from engine.attempts import Attempt
from engine.config import ConfigInvalid, Settings
from engine.costs import Usage
from engine.errors import DecisionInvalid, NotWaiting
from engine.evals import cli as eval_cli
from engine.events import Event
from engine.examples import example_files, workflow_file
from engine.fork import ForkInvalid, NotForkable
from engine.queue import QueueModeInvalid, execution_mode, open_runtime
from engine.reader import NodeExecutionRecord, RunReader
from engine.run_times import label
from engine.runtime import NotResumable, RunNotFound, Runtime
from engine.statuses import RUN_ENDED
from engine.store import StoreError, StoreUrlInvalid
from engine.timefmt import format_ts

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2
EXIT_WAITING = 3  # the run waits for a person's decision (python -m engine approve)


def main(argv: list[str] | None = None, prog: str = "python -m engine") -> int:
    parser = _parser(prog)
    args, extra = parser.parse_known_args(argv)
    if args.command == "ui":  # everything after `ui` is streamlit's
        return dashboard.main(extra)
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return int(args.handler(args))


def console() -> int:
    """The ``workflow-studio`` command an install puts on PATH: this CLI under that name."""
    return main(prog="workflow-studio")


def _parser(prog: str = "python -m engine") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Run and validate workflow/v1 files.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a workflow and print its result as JSON")
    run.add_argument("file", help="workflow file (.json, .yaml), or a shipped example's name (see 'examples')")
    run.add_argument(
        "--input", action="append", default=[], metavar="NAME=VALUE", help="an input; VALUE is JSON if it parses"
    )
    run.add_argument("--inputs-json", metavar="JSON", help="all inputs as one JSON object")
    run.add_argument("--events", metavar="PATH", help="write every event as a JSON line to PATH, flushed live")
    run.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    run.add_argument("--db", metavar="URL", help="store URL (default: DATABASE_URL, else $DATA_DIR/studio.db)")
    run.set_defaults(handler=_cmd_run)
    validate = sub.add_parser("validate", help="check a workflow and list every problem")
    validate.add_argument("file", help="workflow file, or a shipped example's name")
    validate.set_defaults(handler=_cmd_validate)
    runs = sub.add_parser("runs", help="list recent runs")
    runs.add_argument("--limit", type=int, default=20)
    runs.add_argument("--db", metavar="URL")
    runs.set_defaults(handler=_cmd_runs)
    show = sub.add_parser("show", help="a run's node timeline and result")
    show.add_argument("run_id")
    show.add_argument("--db", metavar="URL")
    show.set_defaults(handler=_cmd_show)
    resume = sub.add_parser("resume", help="continue an interrupted or failed run")
    resume.add_argument("run_id")
    resume.add_argument("--events", metavar="PATH", help="append the resumed run's events as JSON lines to PATH")
    resume.add_argument("--quiet", action="store_true")
    resume.add_argument("--db", metavar="URL")
    resume.set_defaults(handler=_cmd_resume)
    rerun = sub.add_parser(
        "rerun",
        help="rerun a finished run from a node: nodes it does not depend on reuse their outputs",
    )
    rerun.add_argument("run_id")
    rerun.add_argument(
        "--from", dest="node", required=True, metavar="NODE", help="the node to run again, with everything downstream"
    )
    rerun.add_argument(
        "--output",
        action="append",
        default=[],
        metavar="NODE=JSON",
        help="pin a reused node's output to this JSON value (repeatable)",
    )
    rerun.add_argument("--config", metavar="JSON", help="a JSON object of NODE's config keys to change, for this rerun")
    rerun.add_argument("--events", metavar="PATH", help="write the new run's events as JSON lines, flushed live")
    rerun.add_argument("--quiet", action="store_true")
    rerun.add_argument("--db", metavar="URL")
    rerun.set_defaults(handler=_cmd_rerun)
    approve = sub.add_parser("approve", help="decide a waiting approval node; the run goes on from it")
    approve.add_argument("run_id")
    approve.add_argument("node", help="the approval node that waits")
    approve.add_argument("--decision", required=True, metavar="VALUE", help="one of the approval's options")
    approve.add_argument(
        "--field", action="append", default=[], metavar="NAME=JSON", help="an edited field value (repeatable)"
    )
    approve.add_argument("--comment", default="", metavar="TEXT")
    approve.add_argument("--events", metavar="PATH", help="append the run's events as JSON lines to PATH")
    approve.add_argument("--quiet", action="store_true")
    approve.add_argument("--db", metavar="URL")
    approve.set_defaults(handler=_cmd_approve)
    serve = sub.add_parser("serve", help="serve the HTTP API (FastAPI + uvicorn) over the dashboard's store")
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1; any other needs API_TOKEN; names clients use: API_ALLOWED_HOSTS)",
    )
    serve.add_argument("--port", type=int, default=8787, help="port (default 8787)")
    serve.add_argument("--db", metavar="URL", help="store URL (default: DATABASE_URL, else $DATA_DIR/studio.db)")
    serve.set_defaults(handler=_cmd_serve)
    worker = sub.add_parser("worker", help="queue mode: run queued runs (a Procrastinate worker over PostgreSQL)")
    worker.add_argument("--concurrency", type=int, default=4, help="runs at once in this process (default 4)")
    worker.add_argument("--db", metavar="URL", help="PostgreSQL store URL (default: DATABASE_URL)")
    worker.set_defaults(handler=_cmd_worker)
    migrate = sub.add_parser("migrate", help="create or upgrade the store's tables (and, on PostgreSQL, the queue's)")
    migrate.add_argument("--db", metavar="URL", help="store URL (default: DATABASE_URL, else $DATA_DIR/studio.db)")
    migrate.set_defaults(handler=_cmd_migrate)
    eval_cli.add_parsers(sub, _open_runtime)  # eval, eval-resume, eval-compare (engine/evals/cli.py)
    examples = sub.add_parser("examples", help="list the example workflows shipped with the studio")
    examples.set_defaults(handler=_cmd_examples)
    sub.add_parser(
        "ui",
        help="start the dashboard (streamlit run app.py; 127.0.0.1:8501); further arguments go to streamlit",
        add_help=False,
    )
    return parser


def _cmd_examples(_args: argparse.Namespace) -> int:
    for path in example_files():
        print(f"{path.stem}\t{path}")
    return EXIT_OK


def _cmd_serve(args: argparse.Namespace) -> int:
    from engine.api.server import serve  # imported here: the other commands need no web stack

    return serve(args.host, args.port, database_url=args.db)


def _cmd_worker(args: argparse.Namespace) -> int:
    import asyncio

    from engine.queue.worker import WorkerSettings, open_worker

    if args.concurrency < 1:
        print("--concurrency must be 1 or more", file=sys.stderr)
        return EXIT_INVALID
    try:
        settings = Settings.from_env()
        worker = open_worker(args.db, WorkerSettings.of(settings.queue, args.concurrency), settings)
    except ConfigInvalid as exc:
        print(exc, file=sys.stderr)
        return EXIT_INVALID
    except (StoreError, QueueModeInvalid) as exc:
        print(f"worker: {exc}", file=sys.stderr)
        return EXIT_FAILED if isinstance(exc, StoreError) and not isinstance(exc, StoreUrlInvalid) else EXIT_INVALID
    asyncio.run(worker.serve())
    return EXIT_OK


def _cmd_migrate(args: argparse.Namespace) -> int:
    from engine.queue import migrate

    try:
        lines = migrate(args.db, settings=Settings.from_env())
    except ConfigInvalid as exc:
        print(exc, file=sys.stderr)
        return EXIT_INVALID
    except (StoreError, QueueModeInvalid) as exc:
        print(f"migrate: {exc}", file=sys.stderr)
        return EXIT_INVALID if isinstance(exc, (StoreUrlInvalid, QueueModeInvalid)) else EXIT_FAILED
    for line in lines:
        print(line, file=sys.stderr)
    return EXIT_OK


def _cmd_validate(args: argparse.Namespace) -> int:
    path = workflow_file(args.file)  # a path, or a shipped example's name
    try:
        workflow = load_workflow(path)
    except WorkflowInvalid as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    print(f"{path}: valid ({len(workflow.nodes)} nodes, {len(workflow.edges)} edges)", file=sys.stderr)
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
    path = workflow_file(args.file)  # a path, or a shipped example's name
    try:
        workflow = load_workflow(path)
    except WorkflowInvalid as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    try:
        inputs = check_inputs(workflow, parse_inputs(args.input, args.inputs_json))
    except (ValueError, InputsInvalid) as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    return _follow(args, lambda runtime: (runtime.submit(workflow, inputs), 0), mode="w")


def _cmd_resume(args: argparse.Namespace) -> int:
    def start(runtime: Runtime) -> tuple[str, int]:
        before = runtime.status(args.run_id)
        return runtime.resume(args.run_id), before.last_seq if before else 0

    return _follow(args, start, mode="a")


def _cmd_approve(args: argparse.Namespace) -> int:
    try:
        fields = parse_json_pairs(args.field, "--field")
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_INVALID

    def start(runtime: Runtime) -> tuple[str, int]:
        before = runtime.status(args.run_id)
        who = f"cli:{getpass.getuser()}"
        runtime.decide(args.run_id, args.node, args.decision, fields=fields, comment=args.comment, decided_by=who)
        return args.run_id, before.last_seq if before else 0

    return _follow(args, start, mode="a")


def parse_json_pairs(pairs: list[str], option: str, name: str = "NAME") -> dict[str, Any]:
    """Each ``NAME=JSON`` of a repeatable option (the value must be JSON: quote a string, '"text"')."""
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"{option} {pair!r} must look like {name}=JSON")
        try:
            values[key] = json.loads(raw)
        except json.JSONDecodeError as exc:
            hint = "write a string as '\"text\"'"
            raise ValueError(f"{option} {key}: the value is not JSON ({exc.msg}); {hint}") from None
    return values


def _cmd_rerun(args: argparse.Namespace) -> int:
    try:
        outputs = parse_json_pairs(args.output, "--output", "NODE")
        config = None
        if args.config is not None:
            try:
                config = json.loads(args.config)
            except json.JSONDecodeError as exc:
                raise ValueError(f"--config is not valid JSON: {exc.msg}") from None
            if not isinstance(config, dict):
                raise ValueError("--config must be a JSON object of the node's config keys")
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_INVALID

    def start(runtime: Runtime) -> tuple[str, int]:
        new_id = runtime.rerun(args.run_id, args.node, outputs=outputs, config=config)
        if not args.quiet:
            print(f"run {new_id} reruns {args.run_id} from node '{args.node}'", file=sys.stderr)
        return new_id, 0

    return _follow(args, start, mode="w")


def _follow(args: argparse.Namespace, start: Callable[[Runtime], tuple[str, int]], *, mode: str) -> int:
    """Start (or resume) a run on a runtime, stream its events to the sinks, exit by its status."""
    try:
        events_file = open(args.events, mode, encoding="utf-8") if args.events else None  # noqa: SIM115
    except OSError as exc:
        print(f"--events {args.events}: cannot write there: {exc.strerror}", file=sys.stderr)
        return EXIT_INVALID
    sinks: list[Callable[[Event], None]] = []
    if not args.quiet:
        sinks.append(Progress(sys.stderr).on_event)
    if events_file is not None:
        sinks.append(_jsonl_sink(events_file))
    runtime = _open_runtime(args)
    if isinstance(runtime, int):
        if events_file is not None:
            events_file.close()
        return runtime
    try:
        try:
            run_id, seq = start(runtime)
        except (RunNotFound, NotResumable, NotForkable, ForkInvalid, NotWaiting, DecisionInvalid) as exc:
            print(str(exc), file=sys.stderr)
            return EXIT_INVALID
        usage = _drain(runtime, run_id, seq, sinks)
        info = runtime.wait(run_id)
        waiting = [str(r["node"]) for r in runtime.waiting_approvals(run_id)] if info.status == "waiting" else []
    finally:
        runtime.shutdown()
        if events_file is not None:
            events_file.close()
    if usage.offline:
        print(
            "note: answered by the offline model (set OPENAI_BASE_URL or OPENAI_API_KEY for a real one)",
            file=sys.stderr,
        )
    if usage.estimated or usage.failed_tokens:
        print(f"note: {usage.label()}" + (ESTIMATED_NOTE if usage.estimated else ""), file=sys.stderr)
    if info.status == "waiting":
        how = f"python -m engine approve {run_id} NODE --decision V"
        print(f"run {run_id} waits for a decision at {', '.join(waiting)}: {how}", file=sys.stderr)
        return EXIT_WAITING
    if info.status != "completed":
        print(f"run {run_id} {info.status}: {info.error or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(info.result, ensure_ascii=False))
    return EXIT_OK


ESTIMATED_NOTE = " (the endpoint sent no token usage: about four characters a token)"


def _drain(runtime: Runtime, run_id: str, seq: int, sinks: list[Callable[[Event], None]]) -> Usage:
    """Feed the run's events after ``seq`` to the sinks until its terminal event; Ctrl-C/SIGTERM cancel it.

    Returns the tokens the events count (and whether the offline model answered).
    """
    usage = Usage()
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        while True:
            try:
                events = runtime.events_since(run_id, seq, wait_s=0.5)
            except KeyboardInterrupt:
                runtime.cancel(run_id)
                continue
            for event in events:
                for sink in sinks:
                    sink(event)
                usage.add(event)
                seq = event.seq
            if events and events[-1].terminal:
                return usage
            info = runtime.status(run_id)
            if info is not None and info.finished and info.last_seq <= seq:
                return usage
    finally:
        signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def _open_runtime(args: argparse.Namespace) -> Runtime | int:
    """A runtime over the chosen store (it also marks runs of dead processes interrupted),
    else the exit code after one line on stderr: 2 for a store URL that cannot be used, else 1."""
    try:
        return open_runtime(args.db, settings=Settings.from_env())  # EXECUTION_MODE: here, or for the workers
    except ConfigInvalid as exc:
        print(exc, file=sys.stderr)
        return EXIT_INVALID
    except QueueModeInvalid as exc:
        print(f"queue mode: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except StoreError as exc:
        print(f"store: {exc}", file=sys.stderr)
        return EXIT_INVALID if isinstance(exc, StoreUrlInvalid) else EXIT_FAILED


def _open_reader(args: argparse.Namespace) -> RunReader | int:
    """A reader of the chosen store, after marking runs of dead processes interrupted (as a
    runtime does when it starts), else the exit code after one line on stderr, as ``_open_runtime``."""
    try:
        settings = Settings.from_env()
        # queue mode: the workers' sweep marks dead runs
        return RunReader.open(args.db, mark_interrupted=execution_mode(settings) == "local", settings=settings)
    except ConfigInvalid as exc:
        print(exc, file=sys.stderr)
        return EXIT_INVALID
    except StoreError as exc:
        print(f"store: {exc}", file=sys.stderr)
        return EXIT_INVALID if isinstance(exc, StoreUrlInvalid) else EXIT_FAILED
    except QueueModeInvalid as exc:
        print(f"queue mode: {exc}", file=sys.stderr)
        return EXIT_INVALID


def _cmd_runs(args: argparse.Namespace) -> int:
    reader = _open_reader(args)
    if isinstance(reader, int):
        return reader
    with reader:
        rows = reader.runs(limit=args.limit)
        times = reader.run_times(rows)
    print(f"{'run id':32}  {'status':11}  {'started':19}  {'duration':34}  {'tokens':>8}  workflow")
    for row in rows:
        started = format_ts(row.created_at)
        took = label(times[row.run_id])
        tokens = f"{'~' if row.tokens_estimated else ''}{row.prompt_tokens + row.completion_tokens}"
        print(f"{row.run_id:32}  {row.status:11}  {started:19}  {took:34}  {tokens:>8}  {row.workflow_name}")
    if any(row.tokens_estimated for row in rows):
        print("~ estimated: the endpoint sent no token usage")
    return EXIT_OK


def _cmd_show(args: argparse.Namespace) -> int:
    reader = _open_reader(args)
    if isinstance(reader, int):
        return reader
    with reader:
        row = reader.run(args.run_id)
        if row is None:
            print(str(RunNotFound(args.run_id)), file=sys.stderr)
            return EXIT_INVALID
        nodes = reader.node_executions(args.run_id)
        times = reader.run_times([row])[row.run_id]
        earlier = reader.earlier_attempts(args.run_id) if row.resumed else []
    print(f"run {row.run_id}  {row.workflow_name} (version {row.workflow_version})  {row.status}")
    started = format_ts(row.created_at)
    resumed = f"  (resumed {row.resumed}x)" if row.resumed else ""
    print(f"started {started}  {label(times)}{resumed}")
    if row.forked_from:
        fork = row.forked_from
        extra = ""
        if fork.get("config") is not None:
            extra += f", config edited: {json.dumps(fork['config'], ensure_ascii=False)}"
        if fork.get("outputs"):
            extra += f", pinned outputs: {', '.join(fork['outputs'])}"
        print(f"forked from: run {fork.get('run_id')} at node '{fork.get('node')}'{extra}")
    print(f"inputs: {json.dumps(row.inputs, ensure_ascii=False)}")
    notes = (["estimated"] if row.tokens_estimated else []) + (
        [f"{row.failed_tokens} of them in failed tries"] if row.failed_tokens else []
    )
    shown = f"{row.prompt_tokens} prompt + {row.completion_tokens} completion"
    print(f"tokens: {'~' if row.tokens_estimated else ''}{shown}" + (f" ({'; '.join(notes)})" if notes else ""))
    origin = row.started_at or row.created_at
    executions: list[NodeExecutionRecord | Attempt] = [*nodes, *earlier]
    for node in sorted(executions, key=lambda n: n.started_seq):
        offset = (node.started_at or origin) - origin
        took = f"{node.duration_ms:9.1f} ms" if node.duration_ms is not None else "        - ms"
        name = f"{node.node_id}" + (f" #{node.execution}" if node.execution else "")
        detail = f"  error: {node.error}" if node.error else ""
        if isinstance(node, Attempt):  # a try a resume ran again: kept, marked
            status: str = node.shown_status
            detail = f"  (earlier attempt, before resume {node.period}){detail}"
        else:
            status = "reused" if node.reused else node.status
        print(f"  +{offset:8.3f}s  {name:28} {status:10} {took}{detail}")
    if row.status == "completed":
        print(f"result: {json.dumps(row.result, ensure_ascii=False)}")
    elif row.error:
        print(f"error: {row.error}")
    return EXIT_OK


def _node_line(kind: str, node: str | None, data: Mapping[str, Any]) -> str | None:
    if kind == "node.started":
        if data.get("reused"):
            return None  # "reused NODE" follows at once
        iteration = data.get("iteration", 0)
        return f"  > {node}" + (f" (iteration {iteration})" if iteration else "")
    if data.get("reused"):
        return f"  reused {node}"
    return f"  ok {node}  {data.get('duration_ms', 0):.1f} ms"


def _recalled_line(data: Mapping[str, Any]) -> str:
    hits = data.get("hits") or []
    best = f", best {hits[0].get('score', 0):.2f}" if hits else ""
    turns = data.get("short_term_turns", 0)
    return f"    memory {data.get('agent_id')}: {len(hits)} recalled{best}, {turns} recent turns"


def _llm_line(data: Mapping[str, Any]) -> str:
    mark = " [offline model]" if data.get("model") == "offline" else ""
    tokens = f"{data.get('prompt_tokens')} + {data.get('completion_tokens')} tokens"
    if data.get("estimated"):
        tokens = f"~{tokens} (estimated)"
    if data.get("failed"):
        then = "retrying" if data.get("retrying") else "giving up"
        return f"    llm {data.get('model')}: try failed, {tokens} spent, {then}: {data.get('error')}"
    return f"    llm {data.get('model')}{mark}: {tokens}"


def _jsonl_sink(stream: IO[str]) -> Callable[[Event], None]:
    def write(event: Event) -> None:
        stream.write(json.dumps(event.to_dict(), ensure_ascii=False) + "\n")
        stream.flush()

    return write


def _approval_line(event: Event) -> str:
    """A line for an approval's request or decision, or for a run that waits for one."""
    data, node = event.data, event.node_id
    if event.type == "approval.requested":
        options = "/".join(str(o) for o in data.get("options") or [])
        return f"  WAITING {node}: {str(data.get('message'))[:160]} [{options}]"
    if event.type == "approval.decided":
        return f"  decided {node}: {data.get('decision')} by {data.get('decided_by')}"
    nodes = ", ".join(data.get("nodes") or [])
    return f"run waiting for a decision at {nodes} (python -m engine approve {event.run_id} NODE --decision V)"


class Progress:
    """A line per node on stderr: started, then done with status and duration."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def on_event(self, event: Event) -> None:
        line = self._line(event)
        if line:
            print(line, file=self.stream, flush=True)

    def _line(self, event: Event) -> str | None:
        data, node, kind = event.data, event.node_id, event.type
        match kind:  # every kind named: a new one fails mypy here until it is handled
            case "run.started":
                return f"run {event.run_id} started"
            case "node.started" | "node.completed":
                return _node_line(kind, node, data)
            case "node.failed":
                return f"  FAILED {node}: {data.get('error')}"
            case "node.skipped":
                return f"  skipped {node}"
            case "tool.called":
                return f"    tool {data.get('tool')}({json.dumps(data.get('args'), ensure_ascii=False)[:120]})"
            case "tool.result":
                result = json.dumps(data.get("result"), ensure_ascii=False)
                outcome = f"error: {data['error']}" if "error" in data else result
                return f"    -> {outcome[:160]}  {data.get('duration_ms', 0):.1f} ms"
            case "llm.completed":
                return _llm_line(data)
            case "memory.recalled":
                return _recalled_line(data)
            case "memory.saved":
                return f"    memory {data.get('agent_id')}: saved"
            case "log":
                return f"    {data.get('level')}: {data.get('message')}"
            case "run.completed" | "run.failed" | "run.cancelled":
                return f"run {RUN_ENDED[kind]}"
            case "llm.token":
                return None  # the text arrives whole with the node's output
            case "approval.requested" | "approval.decided" | "run.waiting":
                return _approval_line(event)
            case _:
                assert_never(kind)
