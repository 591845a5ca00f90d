"""Benchmark: cold `ragchat ask` vs the naive LlamaIndex path, warm answers, memory.

Measured side by side in one run, on an index of seeds/ built in a temporary
folder. Each cold run is a new process (interleaved: naive, ragchat, naive,
...), timed wall-clock from spawn to exit, with its peak resident memory
(ru_maxrss, read in a small launcher process). Warm answers are timed in one process with the engine loaded.

    python bench/cold_start.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "How much is Amazon investing in OpenAI?"
WARM_QUESTIONS = [
    QUESTION,
    "What chips will OpenAI use?",
    "When will the new AWS Availability Zone in Maryland open?",
    "How much is Maryland investing to prepare its workforce?",
    "What is OpenAI Frontier?",
    "How much did OpenAI commit to spend on AWS?",
]


# Spawned from a small Python process: a child forked from this one would carry its
# memory until exec, and ru_maxrss keeps that (bench/scale.py's process holds 100k
# generated chunks, which showed as 1.5 GB "peak" for a 750 MB ask).
_WRAP = (
    "import json, resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "rc = subprocess.call(sys.argv[1:], stderr=subprocess.DEVNULL)\n"
    "wall = time.perf_counter() - t\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "sys.stderr.write(json.dumps([rc, wall, peak]))\n"
)


def timed(args: list[str], cwd: Path, env: dict) -> tuple[float, float, str]:
    """Wall seconds from spawn to exit, peak RSS in MB, and stdout of one process."""
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.run([sys.executable, "-c", _WRAP, *args], cwd=cwd, env=env, stdout=out,
                              stderr=subprocess.PIPE, text=True)
        rc, wall, peak = json.loads(proc.stderr.strip().splitlines()[-1])
        out.seek(0)
        text = out.read()
    if rc != 0:
        raise SystemExit(f"{args} failed with {rc}")
    return wall, peak / 1024, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False",
           "PYTHONPATH": str(ROOT)}
    env = {k: v for k, v in env.items() if not k.startswith("RAGCHAT_")}
    work = Path(tempfile.mkdtemp(prefix="ragchat-bench-"))
    shutil.copytree(ROOT / "seeds", work / "seeds")
    py = sys.executable
    subprocess.run([py, "-m", "app", "ingest"], cwd=work, env=env, check=True,
                   stdout=subprocess.DEVNULL)

    naive_cmd = [py, str(ROOT / "bench" / "naive.py"), "index", "ragchat", QUESTION]
    ours_cmd = [py, "-m", "app", "ask", QUESTION]
    naive, ours = [], []
    for _ in range(args.runs):
        naive.append(timed(naive_cmd, work, env))
        ours.append(timed(ours_cmd, work, env))
    n_wall = statistics.median(w for w, _, _ in naive)
    o_wall = statistics.median(w for w, _, _ in ours)
    print(f"cold, {args.runs} runs each, median wall seconds (peak RSS MB):")
    print(f"  naive LlamaIndex path  {n_wall:6.2f} s  ({max(m for _, m, _ in naive):.0f} MB)")
    print(f"  ragchat ask            {o_wall:6.2f} s  ({max(m for _, m, _ in ours):.0f} MB)")
    print(f"  ratio ragchat / naive  {o_wall / n_wall:6.2f}x")
    print(f"  naive answer:   {naive[0][2].strip()[:160]!r}")
    print(f"  ragchat answer: {ours[0][2].strip().splitlines()[0][:160]!r}")

    sys.path.insert(0, str(ROOT))
    os.chdir(work)
    os.environ.update({"HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"})
    from app.engine import Engine
    from app.settings import Settings

    engine = Engine(Settings(index_dir=work / "index"))
    engine.ask(QUESTION)  # load everything once
    times, modes = [], []
    for _ in range(2):
        for q in WARM_QUESTIONS:
            a = engine.ask(q)
            times.append(a.timings["total"])
            modes.append(a.mode)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    print(f"warm, {len(times)} answers: p50 {statistics.median(times):.2f} s, p95 {p95:.2f} s, "
          f"max {times[-1]:.2f} s; modes "
          + ", ".join(f"{m} {modes.count(m)}" for m in sorted(set(modes))))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
