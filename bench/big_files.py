"""Benchmark: big files ingest in time linear in their size, or are refused up front.

Side by side in one run, each into a fresh index through `ragchat ingest` (a new
process each, wall time from spawn to exit, peak resident memory from wait4):

- the seed article (the per-MB reference, start-up included);
- a text file of SIZE MB with ordinary paragraphs;
- the same text with every line break removed (one line of SIZE MB);
- a 30 MB text file, over the default RAGCHAT_MAX_FILE_MB of 25: refused up front.

The text is generated (sentences of common words and numbers), so chunks differ.

    python bench/big_files.py [--mb 5]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORDS = ("the council approved budget river harbour library museum station bridge school "
         "park road market festival report plan year city town board members vote new old "
         "north south east west project service water power transport housing").split()


def prose(mb: float, seed: int = 0) -> str:
    rng = random.Random(seed)
    out, size, para = [], 0, []
    while size < mb * 1_048_576:
        s = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 20))).capitalize()
        s += f" in {rng.randint(1990, 2030)} for {rng.randint(1, 999)} million."
        para.append(s)
        size += len(s) + 1
        if len(para) == 5:
            out.append(" ".join(para))
            para = []
    return "\n\n".join(out + [" ".join(para)]) + "\n"


def run(path: Path, work: Path) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) and the last output line of one ingest."""
    index = work / f"index-{path.stem}"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with tempfile.TemporaryFile("w+") as out:
        t = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "app", "--index-dir", str(index), "ingest",
                                 str(path)], cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, _, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        out.seek(0)
        lines = [ln for ln in out.read().splitlines() if ln.strip()]
    return wall, usage.ru_maxrss / 1024, lines[-1] if lines else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=5.0, help="size of the big text files")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        seed = ROOT / "seeds" / "amazon-openai-partnership.txt"
        text = prose(args.mb)
        (work / "paragraphs.txt").write_text(text)
        (work / "one_line.txt").write_text(" ".join(text.split()))
        (work / "huge.txt").write_text(prose(30, seed=1))
        rows = []
        for path in (seed, work / "paragraphs.txt", work / "one_line.txt", work / "huge.txt"):
            mb = path.stat().st_size / 1_048_576
            wall, rss, last = run(path, work)
            rows.append((path.name, mb, wall, rss, last))
            print(f"{path.name:32} {mb:7.2f} MB {wall:8.1f} s {wall / mb:9.1f} s/MB "
                  f"peak {rss:7.0f} MB | {last[:110]}", flush=True)
        by = {r[0]: r for r in rows}
        ratio = (by["one_line.txt"][2] / by["one_line.txt"][1]) / (
            by["paragraphs.txt"][2] / by["paragraphs.txt"][1])
        seed_rate = by[seed.name][2] / by[seed.name][1]
        print(f"one line vs paragraphs, time per MB: {ratio:.2f}x; "
              f"one line vs the seed article, time per MB: "
              f"{by['one_line.txt'][2] / by['one_line.txt'][1] / seed_rate:.4f}x")


if __name__ == "__main__":
    main()
