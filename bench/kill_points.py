"""Benchmark: `kill -9` at many points of an ingest, then ingest again.

Builds a corpus of FILES generated text files, times one full ingest, then for each
of N kill points spread evenly over that time: starts a fresh ingest, sends SIGKILL
at that moment, runs the ingest again to the end, and checks the store with
chromadb and bm25s directly (not with ragchat's code):

- chunk ids unique, and no two chunks with the same file, offset and text;
- every chunk is the text of its file at its offsets (nothing stale, no orphan);
- one content hash per file; every file of the corpus present;
- the BM25 index holds exactly Chroma's ids; no pending mark left.

Also starts two ingests of the same corpus at once into a fresh index and checks the
same. Prints one line per kill point and a summary.

    python bench/kill_points.py [--files 400] [--points 10]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = ("river harbour lantern orchard granite meadow copper violin glacier falcon tapestry "
         "compass saffron beacon quarry thistle marble canyon ember willow").split()


def corpus(folder: Path, files: int) -> None:
    rng = random.Random(11)
    folder.mkdir(parents=True)
    for i in range(files):
        sents = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 16))).capitalize()
                 + f" near mile {rng.randint(1, 9999)}." for _ in range(rng.randint(4, 30))]
        (folder / f"doc{i:04d}.txt").write_text(
            "\n\n".join(" ".join(sents[j:j + 4]) for j in range(0, len(sents), 4)) + "\n")


def start(work: Path, index: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGCHAT_")}
    env["HF_HUB_OFFLINE"] = "1"
    return subprocess.Popen([sys.executable, "-m", "app", "--index-dir", index, "ingest", "docs"],
                            cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def check(work: Path, index: str, files: int) -> tuple[int, list[str]]:
    """(chunks, problems) of the store under work/index."""
    import bm25s
    import chromadb

    problems = []
    root = work / index
    col = chromadb.PersistentClient(path=str(root / "chroma")).get_collection("ragchat")
    got = col.get(include=["documents", "metadatas"])
    ids = got["ids"]
    if len(ids) != len(set(ids)):
        problems.append("duplicate ids")
    keys = [(m["source"], m["start"], d) for d, m in zip(got["documents"], got["metadatas"])]
    if len(keys) != len(set(keys)):
        problems.append(f"{len(keys) - len(set(keys))} duplicate chunks")
    hashes: dict[str, set] = {}
    for d, m in zip(got["documents"], got["metadatas"]):
        path = work / m["source"]
        if not path.is_file():
            problems.append(f"orphan {m['source']}")
        elif path.read_text()[m["start"]:m["end"]] != d:
            problems.append(f"stale chunk of {m['source']}")
        hashes.setdefault(m["source"], set()).add(m["file_hash"])
    if any(len(h) != 1 for h in hashes.values()):
        problems.append("a file with chunks of two versions")
    if len(hashes) != files:
        problems.append(f"{len(hashes)} of {files} files stored")
    current = json.loads((root / "bm25" / "ragchat" / "current.json").read_text())
    bm25 = bm25s.BM25.load(str(root / "bm25" / "ragchat" / current["dir"]), load_corpus=True)
    if sorted(doc["node_id"] for doc in bm25.corpus) != sorted(ids):
        problems.append("BM25 differs from Chroma")
    if (root / "bm25" / "ragchat.pending").exists():
        problems.append("pending mark left")
    return len(ids), problems


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=400)
    ap.add_argument("--points", type=int, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        corpus(work / "docs", args.files)
        t = time.perf_counter()
        p = start(work, "index-full")
        out, err = p.communicate()
        full = time.perf_counter() - t
        chunks, problems = check(work, "index-full", args.files)
        print(f"full ingest: {full:.1f} s, {chunks} chunks, problems: {problems or 'none'}")
        ok = killed_n = 0
        for i in range(args.points):
            at = 0.9 * full * (i + 0.5) / args.points
            index = f"index-{i}"
            p = start(work, index)
            time.sleep(at)
            killed = p.poll() is None
            if killed:
                os.kill(p.pid, signal.SIGKILL)
            p.wait()
            again = start(work, index)
            out, err = again.communicate()
            n, problems = check(work, index, args.files)
            ok += not problems and n == chunks
            killed_n += killed
            print(f"kill at {at:6.1f} s ({'killed' if killed else 'had finished'}): next ingest "
                  f"rc={again.returncode}, {n} chunks, problems: {problems or 'none'} | "
                  f"{out.strip().splitlines()[-1] if out.strip() else err.strip()[-200:]}", flush=True)
        a, b = start(work, "index-twin"), start(work, "index-twin")
        outs = [a.communicate(), b.communicate()]
        n, problems = check(work, "index-twin", args.files)
        waited = sum("waiting for another ingest" in e for _, e in outs)
        print(f"two ingests at once: rc={a.returncode},{b.returncode}, {waited} waited, {n} chunks, "
              f"problems: {problems or 'none'}")
        print(f"consistent after the next ingest: {ok} of {args.points} kill points "
              f"({killed_n} killed mid-ingest, the rest had finished); "
              f"two at once: {'consistent' if not problems and n == chunks else 'NOT consistent'}")


if __name__ == "__main__":
    main()
