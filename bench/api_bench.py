"""HTTP API benchmark: latency from an event's ``ts`` to its arrival at an SSE client.

Scenario (from the HTTP API issue): a run of 200 short nodes (a chain of 200
``transform`` nodes, as in ``engine_bench.py``, so the run is one burst of
about 400 events), watched by 1 SSE client, then by 100 concurrent SSE
clients. Targets: p95 ≤ 50 ms with one client, ≤ 250 ms with 100.

How: the server is a real ``python -m engine.api`` subprocess (its own
``DATA_DIR``, events committed to SQLite as in production). The workflow
starts with a gate tool (loaded into the server through ``TOOLS_MODULES``)
that waits for a file, so every client is connected before the chain runs;
latency is measured for every event after the gate, per client, as
``arrival time - event ts`` (same machine, same clock). Clients record raw
chunks with their arrival time and parse them afterwards, so the client's
own parsing does not inflate the figure.

Run: ``python bench/api_bench.py [--repeat N] [--nodes 200] [--clients 1,100]``.
Prints one JSON line per scenario; each figure is the best of N repeats
(default 3), as in ``engine_bench.py``, so one-off noise from other
processes on the machine does not decide it; ``p95_ms_all`` lists every repeat.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
TARGETS_MS = {1: 50.0, 100: 250.0}

GATE_MODULE = '''
import asyncio
import os

from tools import tool


@tool(name="api_bench_gate", timeout_s=300, replace=True)
async def api_bench_gate(path: str) -> str:
    """Wait until the file at path exists."""
    while not os.path.exists(path):
        await asyncio.sleep(0.005)
    return "opened"
'''

_FRAME = re.compile(rb'id: (\d+)\nevent: ([a-z.]+)\ndata: \{"seq":\d+,"run_id":"[^"]*","ts":([0-9.eE+-]+),')


def workflow(nodes: int) -> dict[str, Any]:
    chain = [{"id": f"n{i}", "type": "transform", "config": {"expression": f"{i} + 1"}} for i in range(nodes)]
    edges = (
        [("start", "gate"), ("gate", "n0")]
        + [(f"n{i}", f"n{i + 1}") for i in range(nodes - 1)]
        + [(f"n{nodes - 1}", "out")]
    )
    return {
        "format": "workflow/v1",
        "name": f"api bench chain {nodes}",
        "inputs": {"gate": {"type": "string"}},
        "nodes": [
            {"id": "start", "type": "input"},
            {"id": "gate", "type": "tool", "config": {"tool": "api_bench_gate", "args": {"path": "{{ inputs.gate }}"}}},
            *chain,
            {"id": "out", "type": "output", "config": {"value": f"{{{{ nodes.n{nodes - 1}.output }}}}"}},
        ],
        "edges": [{"source": s, "target": t} for s, t in edges],
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    plugins = root / "plugins"
    plugins.mkdir(parents=True)
    (plugins / "api_bench_tools.py").write_text(textwrap.dedent(GATE_MODULE), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "API_"))}
    env.pop("DATABASE_URL", None)
    env.update(
        DATA_DIR=str(root / "data"),
        TOOLS_MODULES="api_bench_tools",
        PYTHONPATH=os.pathsep.join(p for p in (str(plugins), str(REPO), os.environ.get("PYTHONPATH", "")) if p),
        OFFLINE_TOKEN_DELAY_S="0",
    )
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.api", "--port", str(port), "--log-level", "warning"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(root / "server.log").open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited: {(root / 'server.log').read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start")


async def one_client(
    client: httpx.AsyncClient, url: str, at_gate: asyncio.Event, ready: list[int]
) -> list[tuple[float, bytes]]:
    """Raw chunks with their arrival time; tells ``ready`` when the gate's tool.called arrived."""
    chunks: list[tuple[float, bytes]] = []
    seen = b""
    async with client.stream("GET", url, headers={"Accept": "text/event-stream"}) as response:
        response.raise_for_status()
        async for chunk in response.aiter_raw():
            chunks.append((time.time(), chunk))
            if not at_gate.is_set() and seen is not None:
                seen += chunk
                if b"event: tool.called" in seen:
                    ready.append(1)
                    seen = None  # type: ignore[assignment]
    return chunks


def latencies(chunks: list[tuple[float, bytes]], gate_seq: int) -> tuple[list[float], list[int]]:
    """Per event after the gate: arrival - ts (ms); and the seqs seen, to check the stream."""
    out: list[float] = []
    seqs: list[int] = []
    buffer = b""
    for arrived, chunk in chunks:
        buffer += chunk
        *complete, buffer = buffer.split(b"\n\n")
        for message in complete:
            match = _FRAME.match(message)
            if match is None:  # a keep-alive comment
                continue
            seq = int(match.group(1))
            seqs.append(seq)
            if seq > gate_seq:
                out.append((arrived - float(match.group(3))) * 1000.0)
    return out, seqs


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def scenario(url: str, nodes: int, clients: int, root: Path, index: int) -> dict[str, Any]:
    gate = root / f"gate-{clients}-{index}"
    limits = httpx.Limits(max_connections=clients + 5, max_keepalive_connections=clients + 5)
    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(120.0), limits=limits) as client:
        response = await client.post("/runs", json={"workflow": workflow(nodes), "inputs": {"gate": str(gate)}})
        response.raise_for_status()
        run_id = response.json()["run_id"]
        stream_url = f"/runs/{run_id}/events"
        at_gate = asyncio.Event()
        ready: list[int] = []
        tasks = [asyncio.create_task(one_client(client, stream_url, at_gate, ready)) for _ in range(clients)]
        deadline = time.monotonic() + 60
        while len(ready) < clients:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {len(ready)} of {clients} clients reached the gate")
            await asyncio.sleep(0.01)
        at_gate.set()
        await asyncio.sleep(0.2)  # let the clients settle before the burst
        gate.touch()
        results = await asyncio.gather(*tasks)
        events = (await client.get(stream_url)).json()
    gate_seq = next(e["seq"] for e in events if e["type"] == "tool.called" and e["node_id"] == "gate")
    values: list[float] = []
    for chunks in results:
        lat, seqs = latencies(chunks, gate_seq)
        if seqs != list(range(1, len(events) + 1)):
            raise SystemExit(f"a client got an incomplete or disordered stream ({len(seqs)} of {len(events)} events)")
        values.extend(lat)
    return {
        "p50_ms": round(percentile(values, 0.50), 2),
        "p95_ms": round(percentile(values, 0.95), 2),
        "max_ms": round(max(values), 2),
        "events_per_client": len(events) - gate_seq,
        "run_ms": round((events[-1]["ts"] - next(e["ts"] for e in events if e["seq"] == gate_seq + 1)) * 1000.0, 1),
    }


async def main_async(args: argparse.Namespace) -> int:
    root = Path(tempfile.mkdtemp(prefix="api-bench-"))
    proc, url = start_server(root)
    failed = False
    try:
        await scenario(url, args.nodes, 1, root, -1)  # warm-up
        for clients in args.clients:
            runs = [await scenario(url, args.nodes, clients, root, i) for i in range(args.repeat)]
            best = min(runs, key=lambda r: r["p95_ms"])
            target = TARGETS_MS.get(clients)
            line = {
                "scenario": "sse_latency",
                "nodes": args.nodes,
                "clients": clients,
                **best,
                "p95_ms_all": [r["p95_ms"] for r in runs],
                "target_p95_ms": target,
                "ok": None if target is None else best["p95_ms"] <= target,
            }
            failed = failed or line["ok"] is False
            print(json.dumps(line), flush=True)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    return 1 if failed and args.strict else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--clients", type=lambda text: [int(x) for x in text.split(",")], default=[1, 100])
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
