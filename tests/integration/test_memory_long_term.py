"""Long-term memory on a real Chroma: a PersistentClient in a temp dir and a real ``chroma run`` server.

``chroma_server`` (session scope) starts ``chroma run --path <tmp> --host
127.0.0.1 --port <free>`` (the Rust CLI in the chromadb wheel) and waits for
its heartbeat; it skips, saying why, only if the server cannot start. The
``memory`` fixture is parametrized over both backends, so every API test
runs on both; each test gets its own collection prefix and SQLite file.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from memory import (
    InvalidMemory,
    LongTermStore,
    MemoryManager,
    MemoryNotFound,
    MemoryStoreError,
    MemoryUnavailable,
    ShortTermStore,
    default_backends,
    list_agents,
    memory_id,
)
from memory.embeddings import MiniLMEmbedder
from memory.long_term import ChromaConnection, collection_name

EMBEDDER = MiniLMEmbedder()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _chroma_cli() -> str | None:
    beside = Path(sys.executable).with_name("chroma")
    return str(beside) if beside.exists() else shutil.which("chroma")


@dataclass
class ChromaServer:
    host: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_chroma(folder: Path) -> ChromaServer:
    """Start ``chroma run`` on a free loopback port; skip (with the reason) when it cannot start."""
    cli = _chroma_cli()
    if cli is None:
        pytest.skip("the `chroma` CLI (from the chromadb wheel) is not installed")
    port = _free_port()
    log = folder / "chroma.log"
    env = {**os.environ, "HOME": str(folder), "NO_COLOR": "1"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [cli, "run", "--path", str(folder / "data"), "--host", "127.0.0.1", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    server = ChromaServer("127.0.0.1", port, process, log)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.skip(f"chroma run exited with {process.returncode}: {log.read_text(errors='replace')[-500:]}")
        try:
            if httpx.get(f"{server.url}/api/v2/heartbeat", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    pytest.skip(f"chroma run did not answer its heartbeat within 20 s: {log.read_text(errors='replace')[-500:]}")


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    server = start_chroma(tmp_path_factory.mktemp("chroma-server"))
    yield server
    server.stop()



@dataclass
class Backend:
    """Makes managers over one long-term store and one short-term store."""

    kind: str
    long_term: LongTermStore
    short_term: ShortTermStore

    def manager(self, agent_id: str) -> MemoryManager:
        return MemoryManager(agent_id, long_term=self.long_term, short_term=self.short_term)


@pytest.fixture(params=["persistent", "server"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "server":
        server: ChromaServer = request.getfixturevalue("chroma_server")
        connection = ChromaConnection(host=server.host, port=server.port)
    else:
        connection = ChromaConnection(path=tmp_path / "chroma")
    prefix = f"t{uuid.uuid4().hex[:10]}"  # a fresh namespace per test on the shared server
    return Backend(
        request.param,
        LongTermStore(connection, EMBEDDER, prefix=prefix),
        ShortTermStore(f"sqlite:///{tmp_path / 'memory.db'}"),
    )


# ----------------------------------------------------------------- the API, on both backends


def test_interaction_provenance_round_trip(backend: Backend) -> None:
    mm = backend.manager("support-bot")
    before = time.time()
    ids = mm.add_interaction(
        "My name is Alice", "Nice to meet you, Alice", run_id="run-1", node_id="chat", workflow="greeter"
    )
    assert ids == [
        memory_id("support-bot", "interaction", "User: My name is Alice\nAssistant: Nice to meet you, Alice")
    ]
    record = mm.get(ids[0])
    assert record is not None
    assert record.text == "User: My name is Alice\nAssistant: Nice to meet you, Alice"
    meta = record.metadata
    assert {k: meta[k] for k in ("agent_id", "run_id", "node_id", "workflow", "kind", "embedder")} == {
        "agent_id": "support-bot",
        "run_id": "run-1",
        "node_id": "chat",
        "workflow": "greeter",
        "kind": "interaction",
        "embedder": "all-MiniLM-L6-v2-onnx-int8",
    }
    assert before <= meta["created_at"] <= time.time()
    assert "truncated" not in meta and "updated_at" not in meta

    turns = mm.conversation_for_run("run-1")
    assert [(t.user, t.assistant, t.run_id, t.node_id, t.agent_id) for t in turns] == [
        ("My name is Alice", "Nice to meet you, Alice", "run-1", "chat", "support-bot")
    ]
    hits = mm.recall("What is my name?")
    assert hits[0].id == ids[0] and hits[0].metadata["run_id"] == "run-1"


def test_saving_twice_makes_no_duplicate(backend: Backend) -> None:
    mm = backend.manager("dedup")
    first = mm.add_interaction("hi", "hello", run_id="r1")
    created = mm.get(first[0]).metadata["created_at"]  # type: ignore[union-attr]
    second = mm.add_interaction("hi", "hello", run_id="r2")
    assert first == second and mm.count() == 1
    assert mm.get(first[0]).metadata["run_id"] == "r1"  # type: ignore[union-attr]  # the first provenance stays
    assert mm.get(first[0]).metadata["created_at"] == created  # type: ignore[union-attr]
    assert len(mm.turns()) == 2  # the conversation did happen twice
    # Same text, other kind or agent: other memories.
    assert mm.add_memory("User: hi\nAssistant: hello", kind="fact") != first[0]
    assert backend.manager("dedup-2").add_interaction("hi", "hello") != first
    assert mm.add_memories(["a fact", "a fact", "another fact"]) == [
        memory_id("dedup", "fact", "a fact"),
        memory_id("dedup", "fact", "a fact"),
        memory_id("dedup", "fact", "another fact"),
    ]
    assert mm.count() == 4
    assert mm.add_interaction("no long-term", "just a turn", save_to_longterm=False) == []
    assert mm.count() == 4 and len(mm.turns()) == 3
    assert len(mm.add_interaction("long-term", "and no turn", save_to_shortterm=False)) == 1
    assert mm.count() == 5 and len(mm.turns()) == 3


def test_recall_scores_and_limits(backend: Backend) -> None:
    mm = backend.manager("scores")
    mm.add_memories(
        [
            "The office wifi password is on the fridge.",
            "Bob's birthday is on the ninth of May.",
            "Our cat Miso is afraid of the vacuum cleaner.",
        ]
    )
    hits = mm.recall("when is Bob's birthday", n_results=10)
    assert len(hits) == 3 and hits[0].text == "Bob's birthday is on the ninth of May."
    assert [h.distance for h in hits] == sorted(h.distance for h in hits)
    for hit in hits:
        assert 0.0 <= hit.score <= 1.0
        assert hit.score == pytest.approx(max(0.0, 1.0 - hit.distance))
    assert hits[0].score > 0.5 > hits[-1].score
    assert len(mm.recall("birthday", n_results=1)) == 1
    assert mm.recall("   ") == [] and mm.recall("birthday", n_results=0) == []
    assert hits[0].to_dict()["metadata"]["kind"] == "fact"


def test_unknown_agents_are_empty_not_errors(backend: Backend) -> None:
    ghost = backend.manager("never-seen")
    assert ghost.recall("anything") == []
    assert ghost.list_memories() == [] and ghost.count() == 0
    assert ghost.get("0" * 64) is None and ghost.delete("0" * 64) is False
    assert ghost.conversation() == [] and ghost.conversation_for_run("r") == [] and ghost.turns() == []
    assert ghost.clear().long_term == 0
    assert backend.long_term.agents() == {}  # reading created nothing


def test_bad_input_is_refused_or_capped(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    mm = backend.manager("inputs")
    for empty in ("", "   \n\t"):
        with pytest.raises(InvalidMemory, match="empty"):
            mm.add_memory(empty)
    with pytest.raises(InvalidMemory, match="kind"):
        mm.add_memory("text", kind="dream")
    with pytest.raises(InvalidMemory):
        mm.add_interaction("", " ")
    with pytest.raises(InvalidMemory):
        backend.manager("  ")
    huge = "word " * 4000  # 20,000 characters
    record = mm.get(mm.add_memory(huge))
    assert record is not None and len(record.text) == 8000
    assert record.metadata["truncated"] is True and record.metadata["original_chars"] == len(huge.strip())
    mm.long_term = dataclasses.replace(mm.long_term, max_chars=500)  # a store configured with MEMORY_MAX_CHARS=500
    small = mm.get(mm.add_memory("other " * 200))
    assert small is not None and len(small.text) == 500 and small.metadata["truncated"] is True
    assert mm.recall("word word")[0].metadata.get("truncated") is True


def test_update_reembeds_and_keeps_provenance(backend: Backend) -> None:
    mm = backend.manager("editor")
    target = mm.add_memory("The team meeting is on Monday at 9.", run_id="r1", node_id="n1", workflow="wf")
    mm.add_memories(["Pizza night is every Friday.", "The printer on floor 2 is broken."])
    assert mm.recall("printer")[0].text == "The printer on floor 2 is broken."

    before = mm.recall("when do we meet as a team on Monday at 9?")[0]
    assert before.id == target

    record = mm.update(target, "The company offsite moved to a castle in Scotland.")
    assert record.id == target and record.text.startswith("The company offsite")
    hits = mm.recall("where will the offsite take place?")
    assert hits[0].id == target and hits[0].text == record.text  # found through its new vector
    old = [h for h in mm.recall("when do we meet as a team on Monday at 9?") if h.id == target]
    assert old and old[0].score < before.score - 0.3  # the old vector is gone
    meta = mm.get(target).metadata  # type: ignore[union-attr]
    assert (meta["run_id"], meta["node_id"], meta["workflow"], meta["kind"]) == ("r1", "n1", "wf", "fact")
    assert meta["updated_at"] >= meta["created_at"]
    with pytest.raises(MemoryNotFound, match="no memory"):
        mm.update("f" * 64, "text")
    with pytest.raises(MemoryNotFound):
        backend.manager("someone-else").update(target, "not yours")
    with pytest.raises(InvalidMemory):
        mm.update(target, "")


def test_delete_and_clear(backend: Backend) -> None:
    mm = backend.manager("forgetful")
    keep, drop = mm.add_memories(["keep me", "drop me"])
    mm.add_interaction("q", "a")
    assert mm.delete(drop) is True and mm.delete(drop) is False
    assert mm.get(drop) is None and mm.get(keep) is not None
    assert drop not in {h.id for h in mm.recall("drop me", n_results=5)}
    other = backend.manager("bystander")
    other.add_memory("not forgotten")

    cleared = mm.clear()
    assert (cleared.long_term, cleared.short_term) == (2, 1)
    assert mm.count() == 0 and mm.recall("keep me") == [] and mm.conversation() == []
    assert other.count() == 1
    mm.add_memory("a fresh start")  # the agent can start again
    assert mm.count() == 1
    assert mm.clear(short_term=False).short_term == 0


def test_list_memories_pages_newest_first(backend: Backend) -> None:
    mm = backend.manager("pager")
    first = [mm.add_memory(f"early memory number {i}") for i in range(5)]
    mm.add_memories([f"bulk memory {i} about topic {i % 7}" for i in range(240)])  # over 200: the t0 path
    last = mm.add_memory("the newest memory")

    page = mm.list_memories(limit=3)
    assert page[0].id == last and len(page) == 3
    everything = []
    offset = 0
    while chunk := mm.list_memories(offset=offset, limit=50):
        everything.extend(chunk)
        offset += 50
    assert len(everything) == 246 == mm.count() and len({r.id for r in everything}) == 246
    stamps = [(r.created_at, r.id) for r in everything]
    assert stamps == sorted(stamps, key=lambda s: (-s[0], s[1]))
    assert [r.id for r in everything[-5:]] == first[::-1]
    assert mm.list_memories(offset=246) == [] and mm.list_memories(limit=0) == []
    with pytest.raises(InvalidMemory):
        mm.list_memories(offset=-1)


def test_list_agents_counts(backend: Backend) -> None:
    a, b, c = (backend.manager(name) for name in ("agent/α one", "agent-b", "turns-only"))
    a.add_memories(["one", "two", "three"])
    a.add_interaction("hello", "hi")  # + 1 memory, + 1 turn
    b.add_memory("only one")
    c.add_interaction("no memory", "kept", save_to_longterm=False)
    summaries = list_agents(long_term=backend.long_term, short_term=backend.short_term)
    assert [(s.agent_id, s.long_term_count, s.short_term_turns) for s in summaries] == [
        ("agent-b", 1, 0),
        ("agent/α one", 4, 1),
        ("turns-only", 0, 1),
    ]
    assert summaries[0].to_dict() == {"agent_id": "agent-b", "long_term_count": 1, "short_term_turns": 0}


def test_one_writer_per_process(backend: Backend) -> None:
    mm = backend.manager("busy")
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(6):
                mm.add_memory(f"worker {worker} wrote note {i}")
                mm.add_interaction("same question", "same answer")  # every thread saves the same interaction
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert mm.count() == 6 * 6 + 1
    assert len(mm.turns(limit=100)) == 36


# ----------------------------------------------------------------- recall quality


def test_recall_quality_with_200_varied_memories(backend: Backend) -> None:
    assert len(CORPUS) == 200 and len(set(CORPUS)) == 200
    mm = backend.manager("quality")
    mm.add_memories(CORPUS)
    misses = []
    for query, expected in PARAPHRASES:
        assert expected in CORPUS
        top3 = [h.text for h in mm.recall(query, n_results=3)]
        if expected not in top3:
            misses.append((query, expected, top3))
    assert misses == []


# ----------------------------------------------------------------- configuration and failures


def test_environment_selects_the_server(
    chroma_server: ChromaServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CHROMA_HOST", chroma_server.host)
    monkeypatch.setenv("CHROMA_PORT", str(chroma_server.port))
    monkeypatch.setenv("MEMORY_COLLECTION", f"env{uuid.uuid4().hex[:8]}")
    mm = MemoryManager("env-agent")
    assert mm.long_term.location == chroma_server.url
    mm.add_memory("stored on the server")
    assert not (Path(os.environ["DATA_DIR"]) / "chroma").exists()
    assert (Path(os.environ["DATA_DIR"]) / "memory.db").exists()  # turns stay in SQL
    assert {s.agent_id: s.long_term_count for s in list_agents()} == {"env-agent": 1}
    assert default_backends() is default_backends()


def test_default_location_is_under_data_dir() -> None:
    mm = MemoryManager("local-agent")
    mm.add_memory("stored in DATA_DIR")
    data_dir = Path(os.environ["DATA_DIR"])
    assert mm.long_term.location == str((data_dir / "chroma").resolve())
    assert (data_dir / "chroma").is_dir() and (data_dir / "memory.db").is_file()
    assert collection_name("memory", "local-agent") in {
        c.name for c in mm.long_term.connection.client().list_collections()
    }


def test_server_not_running_is_unavailable_quickly() -> None:
    port = _free_port()  # nothing listens there
    mm = MemoryManager(
        "offline-agent", long_term=LongTermStore(ChromaConnection(host="127.0.0.1", port=port), EMBEDDER)
    )
    for call in (lambda: mm.recall("x"), lambda: mm.add_memory("x"), lambda: mm.list_memories(), mm.count):
        started = time.monotonic()
        with pytest.raises(MemoryUnavailable) as caught:
            call()
        assert time.monotonic() - started < 3
        assert f"127.0.0.1:{port}" in str(caught.value) and "chroma run" in str(caught.value)
        assert isinstance(caught.value, MemoryStoreError) and caught.value.location == f"http://127.0.0.1:{port}"
    with pytest.raises(MemoryUnavailable):
        list_agents(long_term=mm.long_term, short_term=mm.short_term)


def test_server_going_down_and_coming_back(tmp_path: Path) -> None:
    server = start_chroma(tmp_path)
    try:
        store = LongTermStore(ChromaConnection(host=server.host, port=server.port), EMBEDDER)
        mm = MemoryManager("flaky", long_term=store)
        saved = mm.add_memory("remember the milk")
        assert mm.recall("milk")[0].id == saved
        server.process.kill()  # a crash, not a clean shutdown
        server.process.wait(timeout=10)
        for call in (lambda: mm.recall("milk"), lambda: mm.add_memory("more"), lambda: mm.get(saved)):
            started = time.monotonic()
            with pytest.raises(MemoryUnavailable):
                call()
            assert time.monotonic() - started < 3
        # The same port again, on the same data: the store reconnects by itself.
        restarted = subprocess.Popen(
            [*server.process.args[:-1], str(server.port)],  # type: ignore[index]
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "HOME": str(tmp_path)},
        )
        server.process = restarted
        deadline = time.monotonic() + 20
        while True:
            try:
                assert mm.recall("milk")[0].id == saved
                break
            except MemoryUnavailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        server.stop()


# ----------------------------------------------------------------- the corpus

# 200 memories on varied topics, written by hand (not templated).
CORPUS = [
    "Alice is allergic to peanuts and carries an EpiPen.",
    "The staging server is rebooted every Sunday at 3 am.",
    "My grandmother's lasagna recipe uses nutmeg in the béchamel.",
    "The quarterly tax payment is due on the 15th of April.",
    "Tom prefers window seats on long flights.",
    "Our Wi-Fi router is in the hallway closet behind the coats.",
    "The dog's vaccination booster is scheduled for next Tuesday.",
    "Priya leads the data engineering team in Bangalore.",
    "The kitchen faucet drips when the hot water is turned on.",
    "I parked the car on level 4 of the airport garage, row K.",
    "The book club is reading One Hundred Years of Solitude this month.",
    "Marco's favourite football team is Juventus.",
    "The production database password rotates every 90 days.",
    "Sourdough starter needs feeding twice a day at room temperature.",
    "The marathon in Valencia takes place on the first Sunday of December.",
    "Emma is learning Japanese and practises kanji every morning.",
    "The company offsite will be held at a lake lodge in Finland.",
    "Our landlord agreed to repaint the living room in May.",
    "The printer on the third floor jams with thick paper.",
    "Dad's blood pressure medication is taken with breakfast.",
    "The API rate limit for the partner integration is 100 requests per minute.",
    "Lena plays cello in the city's amateur orchestra.",
    "The spare house key is hidden under the blue flower pot.",
    "Our cat Pepper only eats salmon-flavoured food.",
    "The dentist appointment was moved to Thursday afternoon.",
    "The solar panels produce most energy between 11 am and 2 pm.",
    "Jakob is vegetarian but eats fish occasionally.",
    "The invoice for the Henderson project is still unpaid.",
    "The mountain cabin has no mobile signal; use the landline.",
    "My passport expires in October next year.",
    "The team retrospective happens every second Friday.",
    "Chloe's wedding is in Provence on the 12th of June.",
    "The garden tomatoes need staking before they get too tall.",
    "Our Kubernetes cluster runs in the Frankfurt region.",
    "The car's winter tyres are stored at the garage on Elm Street.",
    "Sam is colour-blind and cannot tell red from green.",
    "The recycling bins are collected every other Wednesday.",
    "The piano was last tuned three years ago.",
    "Hannah's startup sells refurbished laptops to schools.",
    "The basement floods when it rains heavily for two days.",
    "The conference talk on distributed tracing is on day two.",
    "Grandpa served in the navy as a radio operator.",
    "The espresso machine needs descaling once a month.",
    "Our mortgage fixed rate ends in 2027.",
    "Olivia is afraid of flying and prefers trains.",
    "The legacy billing system is written in COBOL.",
    "The hamster escapes if the cage door is not latched.",
    "Ravi's son just started kindergarten.",
    "The office closes early on the day before public holidays.",
    "The hiking boots need new laces before the Alps trip.",
    "The new intern starts on Monday and needs a laptop.",
    "My running shoes have about 600 kilometres on them.",
    "The neighbour's wifi network is called FluffyBunny.",
    "Lucas collects vinyl records from the 1970s.",
    "The fire extinguisher in the garage expired last month.",
    "The client in Osaka prefers meetings early in their morning.",
    "The family reunion will be at Aunt Rosa's farm.",
    "The bathroom tiles are Italian porcelain, model Carrara White.",
    "Nadia is the only one who knows how to restart the mail server.",
    "The gym membership renews automatically in January.",
    "Our flight to Reykjavik departs at 6:40 in the morning.",
    "The blueberry bushes need acidic soil.",
    "The monitoring alerts go to the #ops-alerts Slack channel.",
    "Ben broke his wrist skateboarding last summer.",
    "The water heater was replaced in 2021.",
    "The grant application deadline is the end of March.",
    "Maya's favourite flowers are peonies.",
    "The bike lock combination is the year Grandma was born.",
    "The search index is rebuilt nightly at midnight.",
    "The kids' school uniform needs a new blazer size.",
    "The chess club meets on Tuesday evenings at the library.",
    "The electricity bill doubled after the heat wave.",
    "Felix is allergic to cats, so he never visits us.",
    "The vintage Vespa needs a new carburettor.",
    "The wine cellar stays at 12 degrees year round.",
    "The design review for the mobile app is next Wednesday.",
    "Rosa speaks Portuguese, Spanish and a little Italian.",
    "The shared drive is almost full; old videos should be archived.",
    "Our baby monitor uses channel 3 to avoid interference.",
    "The lawnmower blade is blunt and tears the grass.",
    "The customer churn rate rose to 4 percent last quarter.",
    "Ingrid volunteers at the animal shelter on Saturdays.",
    "The attic insulation was upgraded last autumn.",
    "The Lisbon apartment's door code is changed every month.",
    "Theo wants a dinosaur cake for his fifth birthday.",
    "The CI pipeline takes about twenty minutes to finish.",
    "The old oak tree in the backyard has a fungus problem.",
    "Zoe is training to become a certified scuba diver.",
    "The cleaning service comes every Thursday morning.",
    "The heat pump makes a rattling noise at night.",
    "The board meeting minutes are stored in the legal folder.",
    "Ahmed fasts during Ramadan, so lunch meetings should be avoided.",
    "The guitar strings were replaced with light gauge ones.",
    "The fridge in the office is emptied every Friday at 4 pm.",
    "The TLS certificate for the main website expires in six weeks.",
    "Clara's thesis is about coral reef bleaching.",
    "The roof gutter on the north side is clogged with leaves.",
    "The family doctor retires at the end of the year.",
    "The sales team uses HubSpot for tracking leads.",
    "Our cottage is rented out to tourists in August.",
    "Leo is saving money to buy an electric bike.",
    "The smoke detector in the nursery beeps when the battery is low.",
    "The warehouse in Rotterdam handles European shipments.",
    "Mum likes her tea with milk and no sugar.",
    "The sprint demo is recorded for people in other time zones.",
    "The wooden deck needs oiling every spring.",
    "Ella's ballet recital is on Saturday at 5 pm.",
    "The VPN disconnects if the laptop goes to sleep.",
    "The freezer holds soup portions labelled by date.",
    "Karim is the godfather of our daughter.",
    "The yoga class moved from the gym to the park for summer.",
    "The fuel consumption of the van is about nine litres per hundred kilometres.",
    "The apple tree produced almost no fruit this year.",
    "Our data retention policy keeps logs for 30 days.",
    "Isabel runs a pottery studio downtown.",
    "The car insurance renewal letter arrived yesterday.",
    "The toddler naps from one to three in the afternoon.",
    "The marketing budget for next year was cut by ten percent.",
    "The chimney should be swept before the first fire of winter.",
    "Victor is colourful in meetings but always delivers on time.",
    "The beach house has a broken outdoor shower.",
    "The office plants are watered by whoever arrives first on Monday.",
    "Aunt Mei sends mooncakes every autumn festival.",
    "The Python services are being migrated to version 3.12.",
    "Noah is scared of thunderstorms and hides under the bed.",
    "The shed roof leaks in the left corner.",
    "The translation agency charges per word, not per page.",
    "Grandma's hearing aid batteries are size 312.",
    "The ski rental shop is next to the gondola station.",
    "Our rabbit Biscuit chews through electrical cables.",
    "The team's on-call rotation changes every Monday at noon.",
    "The old laptop's battery lasts only twenty minutes.",
    "Sofia is pregnant and due in early September.",
    "The pool needs chlorine tablets every week in summer.",
    "The museum is free on the first Sunday of the month.",
    "The contract with the cleaning supplier ends in June.",
    "Elliot is studying for the bar exam.",
    "The washing machine shows error E21 when the filter is blocked.",
    "Our neighbour Mrs Patel waters our plants when we travel.",
    "The parking permit for the street must be renewed annually.",
    "The lemon tree has to come indoors before the first frost.",
    "The analytics dashboard refreshes every fifteen minutes.",
    "Jonas bakes bread every Sunday morning.",
    "The wedding anniversary dinner is booked at Le Petit Jardin.",
    "The front door lock sticks when it is cold outside.",
    "The new hire in finance is called Beatrice.",
    "The fish tank filter must be rinsed in tank water, not tap water.",
    "Our savings account pays 3.1 percent interest.",
    "The swimming lessons for the kids are on Wednesday after school.",
    "The office coffee beans come from a roaster in Antwerp.",
    "Ruth keeps bees on the roof of her apartment building.",
    "The spare printer toner is in the supply cabinet.",
    "The city marathon closes the bridge on race day.",
    "Martin cannot eat gluten because of coeliac disease.",
    "The holiday lights are stored in the red boxes in the loft.",
    "The security audit found three outdated libraries.",
    "Lily wants to become a veterinarian.",
    "The storm last week knocked down part of the fence.",
    "The landlord's phone number is on the fridge magnet.",
    "The podcast is recorded on Tuesdays in the small meeting room.",
    "Our boat is moored at pier 7 in the marina.",
    "Uncle Pavel tells the same fishing story every Christmas.",
    "The elevator in our building is serviced on the first Monday of each month.",
    "The soil test showed the vegetable bed lacks nitrogen.",
    "Mia's braces come off in November.",
    "The backup tapes are kept in a safe at the bank.",
    "The tram to the city centre stops running at midnight.",
    "Oscar plays goalkeeper in the under-twelve team.",
    "The microwave in the break room sparks with metal containers.",
    "Our family tree research reached the 18th century.",
    "The trial subscription to the design tool ends on Friday.",
    "Anna's favourite author is Haruki Murakami.",
    "The well water should be tested for nitrates every year.",
    "The product launch was postponed to the spring.",
    "Hugo is learning to ride a bicycle without training wheels.",
    "The hallway light flickers when the dryer is running.",
    "The load balancer health check hits the /healthz endpoint.",
    "Grace takes the early train and leaves work at four.",
    "The barbecue gas bottle is almost empty.",
    "Our street is closed for the summer festival in July.",
    "The paint colour for the bedroom is called Misty Sage.",
    "Diego fixes bicycles as a hobby in his garage.",
    "The company pension contribution matches up to five percent.",
    "The air purifier filter should be changed every six months.",
    "The neighbourhood watch meeting is on the last Thursday of the month.",
    "Freya started a knitting circle at the community centre.",
    "The passport photos must have a white background.",
    "The drone can fly for about twenty-five minutes per battery.",
    "The hotel in Kyoto includes a traditional breakfast.",
    "Our accountant prefers documents as PDF, not photos.",
    "The water meter is read by the utility in March.",
    "Arthur lost his sense of smell after the flu.",
    "The roses by the gate are pruned in late winter.",
    "The staging environment uses a copy of last week's data.",
    "The kids get pocket money every Saturday.",
    "The violin teacher cancelled lessons for the holidays.",
    "The compost heap should be turned every couple of weeks.",
    "Leila translates children's books from Arabic.",
    "The car's check-engine light came on during the trip.",
    "Priyanka's pottery kiln reaches 1,200 degrees.",
]

# Ten paraphrased questions and the memory each must find in the top 3.
PARAPHRASES = [
    ("Which food must Alice avoid because of an allergy?", "Alice is allergic to peanuts and carries an EpiPen."),
    ("Where did I leave the car at the airport?", "I parked the car on level 4 of the airport garage, row K."),
    ("How often does the database password change?", "The production database password rotates every 90 days."),
    ("Where is the extra key to the house?", "The spare house key is hidden under the blue flower pot."),
    ("What kind of food does our cat Pepper eat?", "Our cat Pepper only eats salmon-flavoured food."),
    ("Who can get the mail server running again?", "Nadia is the only one who knows how to restart the mail server."),
    ("What does error code E21 on the washer mean?", "The washing machine shows error E21 when the filter is blocked."),
    ("Which instrument does Lena play?", "Lena plays cello in the city's amateur orchestra."),
    ("Why can't Martin eat bread?", "Martin cannot eat gluten because of coeliac disease."),
    (
        "When does the security certificate of our website run out?",
        "The TLS certificate for the main website expires in six weeks.",
    ),
]
