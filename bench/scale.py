"""Large collections: cold ask, warm retrieval, BM25 load, memory at 10k and 100k chunks.

For each size, a fresh index holds the seed article (ingested by `ragchat
ingest`, the real path) and N generated chunks written straight into the same
Chroma collection with ragchat's own metadata: sentences drawn from a
3,000-word vocabulary with figures and names, and random unit vectors for
embeddings (the dense index's cost depends on the count and the dimension, not
on what the vectors mean). Random vectors are seeded, so the bench needs no
cache and builds 100k chunks in minutes. Then, side by side with the seed-only
index:

- cold `ragchat ask` (a new process, wall seconds and peak RSS, median of 3,
  each run's peak printed too), checked for the seed's "$50 billion" among
  the generated chunks;
- warm retrieval p50 / p95 over 40 questions in one process: the search (dense +
  BM25, fused) alone, and with the sentence rerank of its 12 candidates (which
  embeds their sentences: a cost that does not grow with the collection);
- BM25 load time in a new process (`Store.load_bm25`, median of 3);
- the time `ragchat ingest` of one more small file takes (it syncs BM25).

    python bench/scale.py [--sizes 10000,100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cold_start import timed

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "How much is Amazon investing in OpenAI?"
ENV = {**{k: v for k, v in os.environ.items() if not k.startswith("RAGCHAT_")},
       "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False", "PYTHONPATH": str(ROOT)}

WARM = r"""
import sys, time, statistics, json
from pathlib import Path
from app.engine import Engine
from app.settings import Settings
engine = Engine(Settings(index_dir=Path("index")))
qs = json.loads(sys.argv[1])
out = {}
# the search alone (dense + BM25, fused), then with the sentence rerank of its candidates
for name, eng in (("", engine.variant(rerank="none")), ("rerank_", engine)):
    eng.retrieve(qs[0])
    eng.embedder._recent.clear()  # each question's sentences embedded afresh
    times = []
    for q in qs:
        t = time.perf_counter(); eng.retrieve(q); times.append(time.perf_counter() - t)
    times.sort()
    out[name + "p50"], out[name + "p95"] = statistics.median(times), times[round(0.95 * (len(times) - 1))]
print(json.dumps(out))
"""

BM25_LOAD = r"""
import time, json
from pathlib import Path
from app import embedding
from app.settings import Settings
from app.store import Store
s = Settings(index_dir=Path("index"))
store = Store(s)
col = store.open(embedding.embedder_name(s))
t = time.perf_counter(); bm = store.load_bm25(col); load = time.perf_counter() - t
print(json.dumps({"load": load}))
"""


def vocabulary(rng: random.Random, n: int = 3000) -> list[str]:
    letters = "abcdefghijklmnoprstuvwy"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(3, 10))) for _ in range(n)]


def chunk_text(rng: random.Random, words: list[str]) -> str:
    out = []
    for _ in range(rng.randint(4, 8)):
        s = " ".join(rng.choice(words) for _ in range(rng.randint(8, 18)))
        out.append(f"{s.capitalize()} for {rng.randint(2, 900)} million in {rng.randint(1990, 2040)}.")
    return " ".join(out)


def fill(index: Path, n: int, seed: int = 11) -> float:
    """Write `n` generated chunks into the collection; seconds taken."""
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from app import embedding
    from app.settings import Settings
    from app.store import Store

    s = Settings(index_dir=index)
    store = Store(s)
    col = store.open(embedding.embedder_name(s))
    rng, vecs = random.Random(seed), np.random.default_rng(seed)
    words = vocabulary(rng)
    t = time.perf_counter()
    batch = min(5000, store.max_batch_size())

    for b in range(0, n, batch):
        ids, docs, metas = [], [], []
        for i in range(b, min(n, b + batch)):
            text = chunk_text(rng, words)
            source = f"generated/file{i // 20:05d}.txt"
            start = (i % 20) * 1000
            ids.append(hashlib.sha256(f"{source}\0{start}".encode()).hexdigest()[:32])
            docs.append(text)
            metas.append({"source": source, "title": f"file{i // 20}", "start": start,
                          "end": start + len(text), "file_hash": f"gen{i // 20}",
                          "content_hash": hashlib.sha256(text.encode()).hexdigest()[:16],
                          "section": ""})
        v = vecs.standard_normal((len(ids), 384)).astype("float32")
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        col.add(ids=ids, documents=docs, metadatas=metas, embeddings=v)
    with store.writing():
        store.sync_bm25(col)
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--runs", type=int, default=3)
    a = parser.parse_args()
    py = sys.executable
    rng = random.Random(5)
    words = vocabulary(random.Random(11))
    questions = [QUESTION, "What chips will OpenAI use?", "What is OpenAI Frontier?"] + [
        f"How much did the {rng.choice(words)} {rng.choice(words)} cost?" for _ in range(37)]
    work = Path(tempfile.mkdtemp(prefix="ragchat-scale-"))
    rows = []
    try:
        for size in [0] + [int(x) for x in a.sizes.split(",")]:
            project = work / f"n{size}"
            shutil.copytree(ROOT / "seeds", project / "seeds")
            subprocess.run([py, "-m", "app", "ingest"], cwd=project, env=ENV, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            build = fill(project / "index", size) if size else 0.0
            cold, rss, correct = [], [], 0
            for _ in range(a.runs):
                wall, mb, out = timed([py, "-m", "app", "ask", QUESTION], project, ENV)
                cold.append(wall)
                rss.append(mb)
                correct += "$50 billion" in out
            warm = json.loads(subprocess.run([py, "-c", WARM, json.dumps(questions)], cwd=project,
                                             env=ENV, capture_output=True, text=True,
                                             check=True).stdout.strip().splitlines()[-1])
            loads = [json.loads(subprocess.run([py, "-c", BM25_LOAD], cwd=project, env=ENV,
                                               capture_output=True, text=True, check=True
                                               ).stdout.strip().splitlines()[-1])["load"]
                     for _ in range(a.runs)]
            (project / "extra").mkdir()
            (project / "extra" / "note.md").write_text("# Note\n\nThe Falcon budget is 7 euros.\n")
            t = time.perf_counter()
            subprocess.run([py, "-m", "app", "ingest", "extra"], cwd=project, env=ENV, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            one_more = time.perf_counter() - t
            row = dict(size=size + 3, build=build, cold=statistics.median(cold), rss=max(rss),
                       correct=correct, p50=warm["p50"], p95=warm["p95"],
                       rr50=warm["rerank_p50"], rr95=warm["rerank_p95"],
                       bm25=statistics.median(loads), ingest1=one_more)
            rows.append(row)
            row["rss"] = statistics.median(rss)
            print(f"{row['size']:>7} chunks: cold ask {row['cold']:5.2f} s (peak {row['rss']:5.0f} MB,"
                  f" runs {'/'.join(f'{m:.0f}' for m in rss)} MB,"
                  f" {correct}/{a.runs} with $50 billion) | warm retrieval p50 "
                  f"{row['p50'] * 1000:6.1f} ms p95 {row['p95'] * 1000:6.1f} ms, with the "
                  f"rerank p50 {row['rr50'] * 1000:6.1f} ms p95 {row['rr95'] * 1000:6.1f} ms | BM25 load "
                  f"{row['bm25']:5.2f} s | ingest one more file {one_more:5.1f} s | generated "
                  f"and written in {build:5.1f} s", flush=True)
            shutil.rmtree(project, ignore_errors=True)
        base = rows[0]
        for row in rows[1:]:
            print(f"{row['size']} chunks against the seed index: cold ask "
                  f"{row['cold'] / base['cold']:.2f}x, warm retrieval p50 "
                  f"{row['p50'] / base['p50']:.2f}x (with the rerank "
                  f"{row['rr50'] / base['rr50']:.2f}x), peak memory {row['rss'] / base['rss']:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
