"""The local model's threads follow the cores other processes leave free: with
every core held by a busy process, it generates with one thread (llama.cpp's
spinning OpenMP workers on a taken core stall every token)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from app.llm import LocalLLM, cores, default_model_path, free_cores


def _hold(n: int) -> list[subprocess.Popen]:
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    time.sleep(0.5)
    return procs


def test_threads_follow_the_free_cores():
    llm = LocalLLM(default_model_path())
    busy = _hold(cores())
    try:
        assert free_cores() == 1
        text = "".join(llm.stream([{"role": "user", "content": "Say hello."}], 8, 0.0))
        assert llm.threads == 1 and text.strip()
    finally:
        for p in busy:
            p.kill()
            p.wait()
    fixed = LocalLLM(default_model_path(), n_threads=2)
    "".join(fixed.stream([{"role": "user", "content": "Say hello."}], 4, 0.0))
    assert fixed.threads == 2  # a thread count that is set is kept


def test_two_answers_are_generated_at_once_each_in_its_own_context():
    import threading

    llm = LocalLLM(default_model_path(), slots=2)
    inside = threading.Barrier(2, timeout=60)
    out: dict[str, str] = {}

    def one(name: str, prompt: str) -> None:
        pieces = []
        for i, piece in enumerate(llm.stream([{"role": "user", "content": prompt}], 24, 0.0)):
            if i == 0:
                inside.wait()  # both generations are running at the same moment
            pieces.append(piece)
        out[name] = "".join(pieces)

    threads = [threading.Thread(target=one, args=("a", "Name three colours.")),
               threading.Thread(target=one, args=("b", "Count from one to five."))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    alone = "".join(llm.stream([{"role": "user", "content": "Name three colours."}], 24, 0.0))
    import difflib

    # each conversation's answer stays its own (greedy decoding; another thread count may
    # round differently, so "the same as alone" is "nearly the same")
    assert difflib.SequenceMatcher(None, out["a"], alone).ratio() > 0.8, (out["a"], alone)
    assert out["b"] and out["b"] != out["a"]
    assert llm._made == 2


def test_an_answer_quotes_rather_than_queue_when_every_context_stays_busy():
    import threading

    from app.errors import ModelBusy

    llm = LocalLLM(default_model_path(), slots=1, wait=0.3)
    started, release = threading.Event(), threading.Event()

    def hold() -> None:  # one generation keeps the only context between two tokens
        for i, _ in enumerate(llm.stream([{"role": "user", "content": "Count to ten."}], 16, 0.0)):
            if i == 0:
                started.set()
                release.wait(60)

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert started.wait(60)
        began = time.perf_counter()
        try:
            next(iter(llm.stream([{"role": "user", "content": "Say hello."}], 8, 0.0)))
            raise AssertionError("a second generation ran while the only context was busy")
        except ModelBusy as e:
            assert "stayed busy for 0.3 s" in str(e)
        assert 0.25 < time.perf_counter() - began < 5
    finally:
        release.set()
        t.join(60)
    # the context is free again: the next answer gets it
    assert "".join(llm.stream([{"role": "user", "content": "Say hello."}], 8, 0.0)).strip()


def test_a_generation_stopped_early_frees_its_context_for_the_next():
    """An answer that abandons its draft closes the stream: the only context
    goes back at once, and the next generation is what it would have been."""
    # a fixed thread count: llama.cpp's output can differ between one thread and two
    llm = LocalLLM(default_model_path(), n_threads=1, slots=1, wait=0.3)
    ask = [{"role": "user", "content": "Count from one to twenty in words."}]
    full = "".join(llm.stream(ask, 24, 0.0))
    stream = llm.stream(ask, 24, 0.0)
    assert [next(stream) for _ in range(3)]
    stream.close()
    assert "".join(llm.stream(ask, 24, 0.0)) == full  # no ModelBusy, no stale state


def test_a_small_model_runs_from_a_q8_0_copy_made_once(tmp_path, capsys, monkeypatch):
    from app import llm as llm_module
    from app.llm import runnable_copy

    original = default_model_path()
    (tmp_path / "llm").mkdir()
    killed = tmp_path / "llm" / f".{original.stem}-0-0.q8_0.gguf.123.456"  # a copy killed half-way
    killed.write_bytes(b"GGUF half")
    os.utime(killed, (time.time() - 7200, time.time() - 7200))
    copy = runnable_copy(original, tmp_path / "llm")
    assert copy.parent == tmp_path / "llm" and copy.name.endswith(".q8_0.gguf")
    assert not killed.exists()
    made = copy.stat().st_mtime_ns
    assert runnable_copy(original, tmp_path / "llm") == copy  # reused, not made again
    assert copy.stat().st_mtime_ns == made
    assert not [p for p in copy.parent.iterdir() if p.name.startswith(".")]  # no half copy left

    # the copy is the same model: the same greedy answer as the original file
    ask = [{"role": "user", "content": "What is the capital of France? One word."}]
    run = LocalLLM(original, cache_dir=tmp_path / "llm")
    assert run.path == copy and run.name == original.name
    assert "paris" in "".join(run.stream(ask, 6, 0.0)).lower()

    # by default the copy is kept once per user, not per index
    from app.llm import load_llm
    from app.settings import Settings

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert load_llm(Settings(index_dir=tmp_path / "a")).path.parent == tmp_path / "xdg" / "ragchat" / "models"
    assert load_llm(Settings(index_dir=tmp_path / "b", llm_requantize="none")).path == original

    # a large model keeps its own file; a folder that cannot be written is a warning
    llm_module.REQUANTIZE_MAX_BYTES, limit = 1024, llm_module.REQUANTIZE_MAX_BYTES
    try:
        assert runnable_copy(original, tmp_path / "big") == original
    finally:
        llm_module.REQUANTIZE_MAX_BYTES = limit
    fake = tmp_path / "fake.gguf"
    fake.write_text("this is not a model\n")
    assert runnable_copy(fake, tmp_path / "llm") == fake  # left to the load's one-line error
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    assert runnable_copy(original, blocked / "llm") == original
    assert f"running {original.name} as it is" in capsys.readouterr().err


def _changed(model: Path, n: int) -> None:
    """Another valid model file: the same weights under another name in its metadata."""
    import re

    data = model.read_bytes()
    assert re.search(rb"Smollm2 \d{3}M", data[:4096])
    model.write_bytes(re.sub(rb"Smollm2 \d{3}M", f"Smollm2 {n:03d}M".encode(), data, count=1))


def test_a_new_q8_0_copy_removes_the_one_it_supersedes_and_those_unused_for_a_month(tmp_path):
    from app.llm import runnable_copy

    model = tmp_path / "model.gguf"
    shutil.copyfile(default_model_path(), model)
    cache = tmp_path / "llm"
    first = runnable_copy(model, cache)
    month = 31 * 86400
    unused = cache / "other-0a1b2c3d-1-1.q8_0.gguf"
    recent = cache / "recent-0a1b2c3d-1-1.q8_0.gguf"
    for f in (unused, recent):
        f.write_bytes(b"GGUF copy of another model")
        os.utime(f, (time.time() - month, time.time() - month))
    os.utime(recent, (time.time(), time.time() - month))  # run yesterday, made long ago
    os.utime(first, (time.time() - month, first.stat().st_mtime))
    assert runnable_copy(model, cache) == first  # reused: marked as used again
    assert time.time() - first.stat().st_atime < 60
    _changed(model, 136)  # the model file changed
    second = runnable_copy(model, cache)
    assert second != first and second.is_file()
    assert not first.exists() and not unused.exists() and recent.exists()

    # another checkout with the same model file runs the same copy; once it is
    # gone, its copy goes when nothing has run it for an hour
    other = tmp_path / "other" / "model.gguf"
    other.parent.mkdir()
    shutil.copyfile(model, other)
    assert runnable_copy(other, cache) == second
    assert sorted(p.name for p in cache.glob("*.q8_0.gguf")) == sorted([second.name, recent.name])
    _changed(model, 137)  # this one changes again
    third = runnable_copy(model, cache)
    assert third.name != second.name and second.exists()  # the other checkout still runs it
    other.unlink()
    os.utime(second, (time.time() - 7200, second.stat().st_mtime))
    os.utime(model, (time.time(), time.time() + 15))  # touched, the same bytes: the same copy
    assert runnable_copy(model, cache) == third
    assert not second.exists() and third.exists()


def test_the_embedder_stops_spinning_while_a_core_is_held(engine):
    """With every core free the embedder runs its spinning session (faster on
    an idle machine); with a core held by another process, one whose workers
    sleep while they wait. Both give the same vectors."""
    from app import embedding

    e = embedding.OnnxEmbedder(embedding.onnx_path(engine.settings),
                               embedding.model_dir(engine.settings) / "tokenizer.json", 2)
    texts = ["Amazon invests $50 billion in OpenAI.", "The tunnel opened in 1932."]

    def spins(session) -> bool:
        try:
            return session.get_session_options().get_session_config_entry(
                "session.intra_op.allow_spinning") != "0"
        except RuntimeError:  # not set: onnxruntime's default, spinning
            return True

    def embed_until(wanted):
        """Embed until the embedder's own look at the cores picks `wanted`
        (a fresh look each time); the vectors, or None, and how many times
        the test's look just before saw both cores free. Both looks are
        instants, and anything on the machine may run between them."""
        seen_free = 0
        for _ in range(20):
            time.sleep(embedding.BUSY_CHECK_SECONDS + 0.05)
            seen_free += free_cores() == 2
            vectors = e.embed(texts, remember=False)
            if wanted():
                return vectors, seen_free
        return None, seen_free

    busy = _hold(1)
    try:
        time.sleep(embedding.BUSY_CHECK_SECONDS)
        assert free_cores() < 2
        held, _ = embed_until(lambda: e._chosen[1] is not e.session)
        assert held is not None, "a core was held, yet the embedder kept its spinning session"
        assert e._chosen[1] is e._quiet and not spins(e._quiet)
    finally:
        for p in busy:
            p.kill()
            p.wait()
    time.sleep(0.5)
    idle, seen_free = embed_until(lambda: e._chosen[1] is e.session)
    if idle is None:  # the machine is busy with something else: the quiet session is right
        assert seen_free < 10, "the cores looked free, yet the embedder kept its quiet session"
    else:
        assert spins(e.session)
        assert (held * idle).sum(axis=1).min() > 0.9999
