"""Live event streams for the HTTP API: one watcher per run, many subscribers.

Why this module exists: ``Runtime.events_since(..., wait_s=...)`` blocks a
thread on a ``threading.Condition``. Calling it once per client (through
``asyncio.to_thread``) would tie up one worker thread per connected client,
and the default executor has only a handful, so 100 SSE clients would queue
behind each other. Instead each watched run gets one :class:`Feed`: a daemon
thread that blocks in ``events_since`` (woken by the runtime the moment an
event is appended), encodes each event once (JSON text and its SSE frame) and
hands the batch to the server's event loop with ``call_soon_threadsafe``.
Subscribers (SSE responses, WebSockets) live on the loop, keep their own
cursor (the last ``seq`` they sent) and read the feed's frame list from
there, so every client of a run sees the same frames, each ``seq`` once and
in order, whatever ``after`` it started from.

When a feed's run is over: the run is no longer running (nor queued for a
worker, in queue mode) *and* every event up
to its ``last_seq`` has been published. A resumed run's log can hold an
earlier ``run.failed`` followed by more events; a terminal event alone never
closes a stream while the run is running again. An ``interrupted`` run (its
process died, no terminal event) also counts as over, so clients are not left
waiting on a run nobody executes; they may reconnect after a resume.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.events import Event

if TYPE_CHECKING:
    from engine.runtime import Runtime

log = logging.getLogger("engine.api")

KEEPALIVE = b": keep-alive\n\n"


@dataclass(frozen=True, slots=True)
class Frame:
    """One event, encoded once for every transport."""

    seq: int
    type: str
    json: str  # the event's JSON (one WebSocket text message)
    sse: bytes  # the whole SSE message: id, event, data, blank line


def encode(event: Event) -> Frame:
    text = json.dumps(event.to_dict(), ensure_ascii=False, separators=(",", ":"), default=str)
    sse = f"id: {event.seq}\nevent: {event.type}\ndata: {text}\n\n".encode()
    return Frame(event.seq, event.type, text, sse)


class Subscription:
    """One client's position in a run's stream; lives on the server's event loop."""

    def __init__(self, hub: StreamHub, feed: Feed, after: int):
        self.hub = hub
        self.feed = feed
        self.cursor = after
        self.gone = False  # the client disconnected
        self.wake = asyncio.Event()

    def disconnect(self) -> None:
        self.gone = True
        self.wake.set()

    async def batches(self, keepalive_s: float) -> AsyncIterator[list[Frame] | None]:
        """Frames after the cursor, batch by batch, until the run is over.

        Yields ``None`` when ``keepalive_s`` passed with nothing to send.
        """
        while not self.gone:
            frames = self.feed.frames_after(self.cursor)
            if frames:
                self.cursor = frames[-1].seq
                yield frames
                continue
            if self.feed.done or self.hub.closed:
                return
            self.wake.clear()  # no await since the check above: no wake-up can be lost
            try:
                await asyncio.wait_for(self.wake.wait(), keepalive_s)
            except TimeoutError:
                if not self.gone:
                    yield None

    def close(self) -> None:
        self.hub.unsubscribe(self)


class Feed:
    """One run's events as the API has seen them, filled by one watcher thread."""

    def __init__(self, hub: StreamHub, run_id: str, loop: asyncio.AbstractEventLoop):
        self.hub = hub
        self.run_id = run_id
        self.loop = loop
        # Read and written on the loop only:
        self.frames: list[Frame] = []
        self.seqs: list[int] = []
        self.done = False
        # Guarded by hub.lock:
        self.subs: set[Subscription] = set()
        self.retired = False
        self.thread = threading.Thread(target=self._watch, name=f"api-feed-{run_id[:12]}", daemon=True)

    def frames_after(self, seq: int) -> list[Frame]:
        if not self.seqs or self.seqs[-1] <= seq:
            return []
        return self.frames[bisect.bisect_right(self.seqs, seq) :]

    def _publish(self, frames: list[Frame], done: bool) -> None:  # on the loop
        for frame in frames:
            if not self.seqs or frame.seq > self.seqs[-1]:
                self.frames.append(frame)
                self.seqs.append(frame.seq)
        self.done = self.done or done
        for sub in list(self.subs):
            sub.wake.set()

    def _watch(self) -> None:  # the watcher thread
        hub, runtime = self.hub, self.hub.runtime
        last = 0
        idle_since: float | None = None
        while not hub.closed:
            with hub.lock:
                if self.subs:
                    idle_since = None
                elif idle_since is None:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since > hub.linger_s:
                    self._retire_locked()
                    return
            started = time.monotonic()
            try:
                events = runtime.events_since(self.run_id, last, wait_s=hub.poll_s)
                events = [e for e in events if e.seq > last]
                if events and events[0].seq != last + 1:
                    log.warning("run %s: events jump from seq %d to %d", self.run_id, last, events[0].seq)
                upto = events[-1].seq if events else last
                done = False
                if not events or events[-1].terminal:  # only then can the run have ended
                    info = runtime.status(self.run_id)
                    done = info is None or (info.finished and info.last_seq <= upto)
                frames = [encode(e) for e in events]
            except Exception:
                if hub.closed:
                    return
                log.exception("run %s: reading events failed; retrying", self.run_id)
                hub.stop.wait(hub.poll_s)
                continue
            last = upto
            if frames or done:
                try:
                    self.loop.call_soon_threadsafe(self._publish, frames, done)
                except RuntimeError:  # the server's loop is closed
                    return
            if done:
                with hub.lock:
                    self._retire_locked()
                return
            if not events and time.monotonic() - started < hub.poll_s / 2:
                # events_since did not block: the run is not live in this runtime
                # (another process runs it, e.g. the dashboard), so poll the store.
                hub.stop.wait(hub.store_poll_s)

    def _retire_locked(self) -> None:
        self.retired = True
        if self.hub.feeds.get(self.run_id) is self:
            del self.hub.feeds[self.run_id]


class StreamHub:
    """Feeds by run id; :meth:`subscribe` and :meth:`unsubscribe` are called on the event loop.

    Args:
        runtime: where events come from.
        poll_s: how long a watcher blocks in ``events_since`` per call.
        store_poll_s: polling interval for runs another process executes.
        linger_s: how long a feed with no subscriber keeps watching.
    """

    def __init__(self, runtime: Runtime, *, poll_s: float = 0.5, store_poll_s: float = 0.2, linger_s: float = 5.0):
        self.runtime = runtime
        self.poll_s = poll_s
        self.store_poll_s = store_poll_s
        self.linger_s = linger_s
        self.lock = threading.Lock()
        self.feeds: dict[str, Feed] = {}
        self.closed = False
        self.stop = threading.Event()

    def subscribe(self, run_id: str, after: int) -> Subscription:
        loop = asyncio.get_running_loop()
        start = None
        with self.lock:
            feed = self.feeds.get(run_id)
            if feed is None or feed.retired or feed.loop is not loop:
                feed = start = Feed(self, run_id, loop)
                self.feeds[run_id] = feed
            sub = Subscription(self, feed, after)
            feed.subs.add(sub)
        if start is not None:
            start.thread.start()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self.lock:
            sub.feed.subs.discard(sub)

    def close(self) -> None:
        """Stop every watcher and end every stream (server shutdown)."""
        self.closed = True
        self.stop.set()
        with self.lock:
            subs = [sub for feed in self.feeds.values() for sub in feed.subs]
        for sub in subs:
            with contextlib.suppress(RuntimeError):
                sub.feed.loop.call_soon_threadsafe(sub.wake.set)
