"""Crashes and concurrent writers: real ingest subprocesses killed with SIGKILL at
several points, exceptions at the two riskiest moments, and two ingests started
together. After each, the next ingest must leave a consistent store: Chroma,
the BM25 index and the record of files agree, no chunk is duplicated, every
chunk comes from its file's current text, and only current text is served."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app import store as store_module
from app.engine import Engine
from app.settings import Settings
from app.store import Store

EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"
WORDS = ("river harbour lantern orchard granite meadow copper violin glacier falcon "
         "tapestry compass saffron beacon quarry thistle marble canyon ember willow").split()


def _prose(rng: random.Random, sentences: int) -> str:
    out = []
    for _ in range(sentences):
        words = [rng.choice(WORDS) for _ in range(rng.randint(8, 16))]
        out.append(" ".join(words).capitalize() + f" near mile {rng.randint(1, 9999)}.")
    return "\n\n".join(" ".join(out[i:i + 4]) for i in range(0, len(out), 4)) + "\n"


def _corpus(folder: Path, files: int, sentences: int = 12, seed: int = 7) -> None:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        (folder / f"doc{i:03d}.txt").write_text(_prose(rng, sentences))


def _ingest_process(*paths: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGCHAT_")}
    return subprocess.Popen([sys.executable, "-m", "app", "--index-dir", "idx", "ingest", *paths],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _kill_when(proc: subprocess.Popen, ready, then: float = 0.0, timeout: float = 240) -> None:
    end = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"ingest ended before the kill point: {proc.stderr.read()}"
        assert time.monotonic() < end, "the kill point never came"
        time.sleep(0.01)
    time.sleep(then)
    assert proc.poll() is None, "ingest ended before the kill point"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def _pending() -> bool:
    return Path("idx/bm25/ragchat.pending").exists()


def assert_consistent(index: Path = Path("idx")) -> int:
    """The invariants, checked with chromadb and bm25s directly."""
    import bm25s
    import chromadb

    col = chromadb.PersistentClient(path=str((index / "chroma").resolve())).get_collection("ragchat")
    got = col.get(include=["documents", "metadatas"])
    ids = got["ids"]
    assert len(ids) == len(set(ids))
    keys = [(m["source"], m.get("page"), m["start"], d) for d, m in zip(got["documents"], got["metadatas"])]
    assert len(keys) == len(set(keys)), "a chunk is stored twice"
    hashes: dict[str, set] = {}
    for text, meta in zip(got["documents"], got["metadatas"]):
        path = Path(meta["source"])
        assert path.is_file(), f"orphan chunk of {path}"
        body = path.read_text()
        assert body[meta["start"]:meta["end"]] == text, f"stale chunk of {path}"
        hashes.setdefault(meta["source"], set()).add(meta["file_hash"])
    assert all(len(h) == 1 for h in hashes.values()), hashes
    current = json.loads((index / "bm25" / "ragchat" / "current.json").read_text())
    bm25 = bm25s.BM25.load(str(index / "bm25" / "ragchat" / current["dir"]), load_corpus=True)
    assert sorted(doc["node_id"] for doc in bm25.corpus) == sorted(ids), "BM25 and Chroma differ"
    assert not (index / "bm25" / "ragchat.pending").exists()
    return len(ids)


def _served(question: str) -> list[str]:
    return [h.chunk.text for h in Engine(Settings(index_dir=Path("idx"))).retrieve(question, 4)]


ORION = "The Orion budget is {} million dollars, approved by the council in March.\n"


@contextlib.contextmanager
def _ingest_paused(monkeypatch, first: str, then: str):
    """orion.txt ingested as `first`, rewritten as `then` and ingested again in a
    thread that is held between writing the new chunks and deleting the old
    ones, for as long as the with-block runs."""
    import threading

    import chromadb.api.models.Collection as chroma_collection

    Path("orion.txt").write_text(first)
    Engine(Settings(index_dir=Path("idx"))).ingest([Path("orion.txt")])
    Path("orion.txt").write_text(then)
    paused, go = threading.Event(), threading.Event()
    real_delete = chroma_collection.Collection.delete

    def slow_delete(self, *a, **k):
        paused.set()
        go.wait(60)
        return real_delete(self, *a, **k)

    monkeypatch.setattr(chroma_collection.Collection, "delete", slow_delete)
    writer = threading.Thread(target=Engine(Settings(index_dir=Path("idx"))).ingest,
                              args=([Path("orion.txt")],))
    writer.start()
    try:
        assert paused.wait(120)
        yield
    finally:
        go.set()
        writer.join(120)


def test_while_an_ingest_writes_the_whole_collection_look_up_sees_the_state_before_it(
        monkeypatch):
    """The look-up behind "the documents never mention" (a term BM25 cannot
    search, "7", is looked for in Chroma's text) sees the state before a paused
    ingest as retrieval does: not the chunks it wrote and has not yet indexed."""
    def found() -> list[str]:
        retriever = Engine(Settings(index_dir=Path("idx"))).retriever
        return [h.chunk.text for h in retriever.containing(["7"], "Where is the office?", 4)]

    with _ingest_paused(monkeypatch, ORION.format(11),
                        ORION.format(99) + "Its office is on pier 7.\n"):
        assert Engine(Settings(index_dir=Path("idx"))).store.ingest_running()
        assert found() == []
    assert any("pier 7" in t for t in found())


def test_kill_during_a_big_write_serves_current_text_and_the_next_ingest_heals():
    """The stale-index sequence: a changed file, then a big file killed midway."""
    docs = Path("docs")
    docs.mkdir()
    (docs / "orion.txt").write_text(ORION.format(11))
    r = subprocess.run([sys.executable, "-m", "app", "--index-dir", "idx", "ingest", "docs"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    (docs / "orion.txt").write_text(ORION.format(99))
    # big enough that its chunks take several times the 6 s below to embed and write
    # (1,500 sentences were all written within those 6 s in one CI run: a race)
    (docs / "zz_big.txt").write_text(_prose(random.Random(1), 5000))
    proc = _ingest_process("docs")
    # orion.txt comes first; kill once the big file's chunks are being written
    _kill_when(proc, lambda: _pending() and Path("idx/chroma").exists(), then=6.0)
    assert _pending()

    served = _served("What is the Orion budget?")  # heals the keyword index first
    assert any("99 million" in t for t in served)
    assert not any("11 million" in t for t in served)

    (docs / "zz_big.txt").unlink()
    r = subprocess.run([sys.executable, "-m", "app", "--index-dir", "idx", "ingest", "docs"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert assert_consistent() == 1
    assert not any("11 million" in t for t in _served("What is the Orion budget?"))


@pytest.mark.parametrize("delay", [0.0, 2.0])
def test_kill_at_the_first_write_or_during_writes_then_ingest_again(delay):
    _corpus(Path("docs"), 120)
    proc = _ingest_process("docs")
    _kill_when(proc, _pending, then=delay)
    r = subprocess.run([sys.executable, "-m", "app", "--index-dir", "idx", "ingest", "docs"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "0 failed" in r.stdout
    n = assert_consistent()
    assert n >= 120


def test_crash_between_writing_a_changed_file_and_deleting_its_old_chunks(monkeypatch):
    import chromadb.api.models.Collection as chroma_collection

    Path("orion.txt").write_text(ORION.format(11) + "It was raised twice since.\n")
    Engine(Settings(index_dir=Path("idx"))).ingest([Path("orion.txt")])
    Path("orion.txt").write_text(ORION.format(99))

    def crash(self, *a, **k):
        raise KeyboardInterrupt  # as if killed after the new chunks were written

    with monkeypatch.context() as m:
        m.setattr(chroma_collection.Collection, "delete", crash)
        with pytest.raises(KeyboardInterrupt):
            Engine(Settings(index_dir=Path("idx"))).ingest([Path("orion.txt")])
    # the next question heals: the old text the file no longer holds is gone
    served = _served("What is the Orion budget?")
    assert any("99 million" in t for t in served) and not any("11 million" in t for t in served)
    Engine(Settings(index_dir=Path("idx"))).ingest([Path("orion.txt")])
    assert assert_consistent() == 1
    assert not any("11 million" in t for t in _served("What is the Orion budget?"))


def test_crash_while_a_changed_file_is_written_leaves_its_old_version_whole(monkeypatch):
    from app import ingest as ingest_module

    Path("orion.txt").write_text(ORION.format(11))
    Engine(Settings(index_dir=Path("idx"))).ingest([Path("orion.txt")])
    Path("orion.txt").write_text(ORION.format(99) + _prose(random.Random(5), 400))
    monkeypatch.setattr(ingest_module, "WRITE_BATCH", 8)
    real_add = None

    def crash_after_first_batch(self, nodes, **kw):
        nonlocal real_add
        if real_add == "done":
            raise KeyboardInterrupt  # as if killed with part of the new chunks written
        real_add = "done"
        return original(self, nodes, **kw)

    from llama_index.vector_stores.chroma import ChromaVectorStore

    original = ChromaVectorStore.add
    with monkeypatch.context() as m:
        m.setattr(ChromaVectorStore, "add", crash_after_first_batch)
        with pytest.raises(KeyboardInterrupt):
            Engine(Settings(index_dir=Path("idx"))).ingest([Path("orion.txt")])
    # the next question serves the old version whole, not a mix
    served = _served("What is the Orion budget?")
    assert any("11 million" in t for t in served) and not any("99 million" in t for t in served)
    report = Engine(Settings(index_dir=Path("idx"))).ingest([Path("orion.txt")])
    assert report.updated == ["orion.txt"]  # the new version is written again, whole
    assert assert_consistent() > 8


def test_crash_while_new_files_are_written_in_shared_batches(monkeypatch):
    """Small new files share write batches; a crash after the first batch leaves
    some files whole and one part-written: the next ingest drops the part and
    writes every file whole (no question asked in between to heal it)."""
    from llama_index.vector_stores.chroma import ChromaVectorStore

    from app import ingest as ingest_module

    _corpus(Path("docs"), 6, sentences=30)
    clean = Engine(Settings(index_dir=Path("clean"))).ingest([Path("docs")])
    monkeypatch.setattr(ingest_module, "WRITE_BATCH", 5)
    original, writes = ChromaVectorStore.add, []

    def crash_after_first_batch(self, nodes, **kw):
        if writes:
            raise KeyboardInterrupt  # as if killed with the first batch written
        writes.append([n.metadata["source"] for n in nodes])
        return original(self, nodes, **kw)

    with monkeypatch.context() as m:
        m.setattr(ChromaVectorStore, "add", crash_after_first_batch)
        with pytest.raises(KeyboardInterrupt):
            Engine(Settings(index_dir=Path("idx"))).ingest([Path("docs")])
    assert len(writes[0]) == 5 and len(set(writes[0])) >= 2  # one batch across files
    assert _pending()
    report = Engine(Settings(index_dir=Path("idx"))).ingest([Path("docs")])
    assert len(report.added) + len(report.unchanged) == 6 and report.ok
    assert assert_consistent() == clean.total_chunks


def test_crash_while_writing_the_keyword_index(monkeypatch):
    _corpus(Path("docs"), 5)
    engine = Engine(Settings(index_dir=Path("idx")))
    engine.ingest([Path("docs")])
    first = assert_consistent()
    (Path("docs") / "extra.txt").write_text(ORION.format(42))
    real = store_module._fsync_dir

    def crash(path):
        if Path(path).name.endswith(".tmp"):
            raise KeyboardInterrupt  # the new version is half written
        real(path)

    with monkeypatch.context() as m:
        m.setattr(store_module, "_fsync_dir", crash)
        with pytest.raises(KeyboardInterrupt):
            engine.ingest([Path("docs")])
    # a query now heals the index from Chroma and sees the new file
    assert any("42 million" in t for t in _served("What is the Orion budget?"))
    engine.ingest([Path("docs")])
    assert assert_consistent() == first + 1
    assert not list(Path("idx/bm25/ragchat").glob(".*.tmp")), "a half-written version is left"


def test_two_ingests_at_once_wait_for_each_other_and_store_no_duplicates():
    _corpus(Path("docs"), 100, sentences=4)
    first, second = _ingest_process("docs"), _ingest_process("docs")
    outs = [p.communicate(timeout=400) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], "\n".join(err for _, err in outs)
    assert sum("waiting for another ingest" in err for _, err in outs) == 1
    summaries = sorted(out for out, _ in outs)
    assert summaries[0].startswith("0 added") and "100 unchanged" in summaries[0]
    assert summaries[1].startswith("100 added")
    assert assert_consistent() >= 100


OPEN_NEW_INDEXES = """
import sys, time
from pathlib import Path
from app.settings import Settings
from app.store import chroma_client
start = float(sys.argv[1])
while time.time() < start:
    time.sleep(0.001)
for i in range(20):
    chroma_client(Settings(index_dir=Path("many") / str(i))).heartbeat()
"""


def test_two_processes_opening_a_new_index_at_once_both_open_it():
    """Two processes that open the same new embedded index at the same moment
    race to create its SQLite tables; the loser's "database is locked" or
    "table ... already exists" must not reach the user. Twenty new indexes,
    opened in step by two processes (about one open in ten lost the race
    before the retry)."""
    start = str(time.time() + 3)  # both past their imports by then
    procs = [subprocess.Popen([sys.executable, "-c", OPEN_NEW_INDEXES, start],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(err for _, err in outs)


def test_a_long_single_line_file_is_split_in_linear_time_and_a_too_big_one_refused():
    rng = random.Random(3)
    line = " ".join(_prose(rng, 4000).split())  # about 400 kB, no line break at all
    Path("one_line.txt").write_text(line)
    Path("big.txt").write_text(line + " " + line)
    limit = round(len(line.encode()) * 1.5 / 1048576, 3)
    report = Engine(Settings(index_dir=Path("idx"), max_file_mb=limit)).ingest(
        [Path("one_line.txt"), Path("big.txt")])
    assert report.added == ["one_line.txt"]
    size = Path("big.txt").stat().st_size / 1048576
    assert report.failed["big.txt"] == (
        f"big.txt: {size:.1f} MB is over the {limit:g} MB limit (RAGCHAT_MAX_FILE_MB)")
    assert assert_consistent() > 300  # more chunks than one write batch, all written


def test_a_folder_with_a_malformed_docx_and_a_too_big_file_lands_every_good_file(tmp_path):
    import zipfile

    docs = Path("docs")
    _corpus(docs, 3)
    with zipfile.ZipFile(docs / "broken.docx", "w") as z:  # a real zip, its XML cut short
        z.writestr("[Content_Types].xml", "<?xml version='1.0'?><Types></Types>")
        z.writestr("word/document.xml", "<?xml version='1.0'?><w:document><w:body><w:p>")
    (docs / "big.txt").write_text("word " * 100_000)  # 0.5 MB
    r = subprocess.run([sys.executable, "-m", "app", "--index-dir", "idx", "ingest", "docs"],
                       capture_output=True, text=True, timeout=300,
                       env={**os.environ, "RAGCHAT_MAX_FILE_MB": "0.25"})
    assert r.returncode == 1 and "Traceback" not in r.stderr
    errors = [e for e in r.stderr.strip().splitlines() if not e.startswith("ingest: ")]  # progress
    assert len(errors) == 2 and all(e.startswith("Error: docs/") for e in errors), errors
    assert any("broken.docx" in e for e in errors) and any("0.25 MB limit" in e for e in errors)
    assert r.stdout.startswith("3 added")
    assert assert_consistent() >= 3


def test_questions_are_answered_while_an_ingest_runs():
    """`ask` in new processes during a long ingest: every one answers, none fails."""
    _corpus(Path("docs"), 150)
    Path("docs/orion.txt").write_text(ORION.format(42))
    r = subprocess.run([sys.executable, "-m", "app", "--index-dir", "idx", "ingest",
                        "docs/orion.txt"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    proc = _ingest_process("docs")
    runs = []
    while proc.poll() is None and len(runs) < 12:
        runs.append(subprocess.run(
            [sys.executable, "-m", "app", "--index-dir", "idx", "ask", "What is the Orion budget?"],
            capture_output=True, text=True, timeout=300))
    proc.communicate(timeout=400)
    assert proc.returncode == 0
    assert len(runs) >= 2
    for run in runs:
        assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr[-1500:]
        assert "42 million" in run.stdout
    assert_consistent()


def test_while_an_ingest_writes_questions_see_the_state_before_it(monkeypatch):
    """An ingest paused between writing a changed file's new chunks and deleting
    its old ones: a question sees the old text only, never both; after it, the new."""
    with _ingest_paused(monkeypatch, ORION.format(11), ORION.format(99)):
        during = _served("What is the Orion budget?")
        assert any("11 million" in t for t in during)
        assert not any("99 million" in t for t in during)
    after = _served("What is the Orion budget?")
    assert any("99 million" in t for t in after) and not any("11 million" in t for t in after)
    assert assert_consistent() == 1
