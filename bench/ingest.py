"""Ingest throughput against a bare encoder loop over the same chunks, in one run.

For each corpus (the Datasette docs, the Blockchain Solana PDF, and N small
generated files), each into a fresh index in a new process:

1. `ragchat ingest` (wall time of the process, and the ingest's own time from
   its summary line: the part after start-up);
2. in another new process, the bare encoder: the exported MiniLM in
   onnxruntime (what ingest uses) embedding exactly the chunk texts that ingest
   stored, in batches of 256, with nothing else; for reference also
   sentence-transformers on torch (`model.encode`, its default batch of 32).

Ratios are chunks/s of ingest over chunks/s of the bare ONNX loop. The ONNX
export, once per index, is made beforehand and copied into each fresh index;
its cost is printed on its own. `--held 1` runs everything again with one core
held by a busy-loop process the bench starts and stops.

    python bench/ingest.py [--small-files 2000] [--held 0,1] [--corpora docs,pdf,small]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
ENV = {**{k: v for k, v in os.environ.items() if not k.startswith("RAGCHAT_")},
       "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}

ENCODE = r"""
import sys, time, json
from pathlib import Path
from app import embedding
from app.settings import Settings
from app.store import Store, embed_text, headed_node
s = Settings(index_dir=Path(sys.argv[1]))
col = Store(s).open(embedding.embedder_name(s))
got = col.get(include=["documents", "metadatas"])
# what ingest embedded: each stored chunk under its headings
texts = [embed_text(headed_node(i, d, m)) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"])]
t = time.perf_counter()
model = embedding.OnnxEmbedder(embedding.onnx_path(s), embedding.model_dir(s) / "tokenizer.json")
load = time.perf_counter() - t
t = time.perf_counter()
for i in range(0, len(texts), 256):
    model.embed(texts[i:i + 256], remember=False)
onnx = time.perf_counter() - t
st = None
if sys.argv[2] == "1":
    from sentence_transformers import SentenceTransformer
    m = SentenceTransformer(str(embedding.model_dir(s)), device="cpu")
    t = time.perf_counter()
    m.encode(texts, normalize_embeddings=True)
    st = time.perf_counter() - t
print(json.dumps({"chunks": len(texts), "onnx": onnx, "onnx_load": load, "st": st}))
"""


def small_files(folder: Path, n: int) -> Path:
    """`n` short notes, one or two chunks each, of varied generated text."""
    import random

    rng = random.Random(7)
    words = ("budget council project launch river bridge library museum school park "
             "station harbour market festival garden clinic tower tunnel stadium").split()
    folder.mkdir(parents=True)
    for i in range(n):
        body = " ".join(
            f"The {rng.choice(words)} {rng.choice(words)} of district {i % 97} costs "
            f"{rng.randint(2, 900)} million euros and opens in {rng.randint(2026, 2040)}."
            for _ in range(rng.randint(2, 12)))
        (folder / f"note-{i:05d}.md").write_text(f"# Note {i}\n\n{body}\n")
    return folder


def run(args: list[str], cwd: Path) -> tuple[float, str]:
    t = time.perf_counter()
    out = subprocess.run(args, cwd=cwd, env=ENV, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if out.returncode not in (0, 1):
        raise SystemExit(f"{args} failed: {out.stderr[-2000:]}")
    return wall, out.stdout


def main() -> None:
    import json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small-files", type=int, default=2000)
    parser.add_argument("--held", default="0")
    parser.add_argument("--corpora", default="docs,pdf,small")
    parser.add_argument("--no-st", action="store_true", help="skip the sentence-transformers loop")
    a = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ragchat-ingest-"))
    try:
        corpora = {"docs": DATASETS / "datasette_docs", "pdf": DATASETS / "blockchain_solana",
                   "small": small_files(work / "small", a.small_files)}
        warm = work / "warm"
        shutil.copytree(ROOT / "seeds", warm / "seeds")
        wall, out = run([sys.executable, "-m", "app", "ingest"], warm)
        print(f"one-time ONNX export with the first ingest (seed article): {wall:.1f} s wall",
              flush=True)
        exported = warm / "index" / ".embedder"
        for held in [int(h) for h in a.held.split(",")]:
            busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                    for _ in range(held)]
            try:
                for name in a.corpora.split(","):
                    project = work / f"{name}-held{held}"
                    project.mkdir()
                    shutil.copytree(exported, project / "index" / ".embedder")
                    wall, out = run([sys.executable, "-m", "app", "ingest",
                                     str(corpora[name])], project)
                    summary = [x for x in out.splitlines() if " added, " in x][-1]
                    own = float(re.search(r"; ([\d.]+) s", summary).group(1))
                    files = sum(int(n) for n in re.findall(r"(\d+) (?:added|updated|unchanged)",
                                                           summary))
                    _, enc = run([sys.executable, "-c", ENCODE, str(project / "index"),
                                  "0" if a.no_st else "1"], project)
                    e = json.loads(enc.strip().splitlines()[-1])
                    n = e["chunks"]
                    onnx_rate = n / e["onnx"]
                    line = (f"held {held}  {name:<5} {files:>5} files {n:>6} chunks | ingest "
                            f"{wall:6.1f} s wall, {own:6.1f} s own = {n / own:5.1f} chunks/s | "
                            f"bare ONNX {e['onnx']:6.1f} s = {onnx_rate:5.1f} chunks/s | "
                            f"ratio own {n / own / onnx_rate:.2f}x, wall "
                            f"{n / wall / onnx_rate:.2f}x")
                    if e["st"]:
                        line += (f" | sentence-transformers {n / e['st']:5.1f} chunks/s "
                                 f"(ingest/ST own {n / own / (n / e['st']):.2f}x)")
                    print(line, flush=True)
            finally:
                for p in busy:
                    p.kill()
                    p.wait()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
