"""Benchmark: cold and warm answers on an idle machine and with cores held by
other processes, for the local model's thread policies, side by side in one run.

Conditions: idle; one core held; two cores held (each "held" core is a busy-loop
process this bench starts and stops itself). Policies:

- `fixed`: RAGCHAT_N_THREADS set to every core (what ragchat did before);
- `follow`: the default, the model's threads follow the cores free when each
  answer starts (`app.llm.free_cores`);
- `fixed+passive`: every core, with OMP_WAIT_POLICY=PASSIVE (OpenMP workers sleep
  instead of spinning while they wait).

Cold: `ragchat ask` in a new process, wall time from spawn to exit (median of
--runs). Warm: one process loads the engine, answers once, then times each of the
twelve warm questions (median). Ratios are against the same policy idle.

A policy written `NAME@DIR` runs the ragchat checked out in DIR (a git worktree
of another commit) under policy NAME, so two builds are compared in one run:

    python bench/contention.py [--runs 2] [--policies fixed,follow,fixed+passive]
    python bench/contention.py --policies follow,follow@../before --held 0,1
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
# Twelve different questions: the median of four moved 1.51x-1.76x between runs of
# the same build; a question asked twice would find its prompt in llama.cpp's cache.
WARM = ["What chips will OpenAI use?", "How much did OpenAI commit to spend on AWS?",
        "When will the new AWS Availability Zone in Maryland open?",
        "How much is Maryland investing to prepare its workforce?",
        "How large is Amazon's initial investment in OpenAI?",
        "Whose market dominance do the Trainium chips challenge?",
        "What is being created within Amazon Bedrock?", "What is OpenAI Frontier?",
        "Who is the governor of Maryland?", "What was the value of OpenAI's previous deal with AWS?",
        "Which rivals does the partnership help Amazon compete against?",
        "What body has Maryland established to guide AI adoption?"]
WARM_SCRIPT = """
import json, sys, time
from app.engine import Engine
from app.settings import load_settings
engine = Engine(load_settings())
engine.ask(sys.argv[1])
out = []
for q in sys.argv[2:]:
    t = time.perf_counter()
    engine.ask(q)
    out.append(time.perf_counter() - t)
print(json.dumps(out))
"""


def policy_env(name: str, cores: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGCHAT_")}
    env["HF_HUB_OFFLINE"] = "1"
    name, _, checkout = name.partition("@")
    if checkout:  # another build's package first on the path
        env["PYTHONPATH"] = str(Path(checkout).resolve())
    env.pop("OMP_WAIT_POLICY", None)
    if name.startswith("fixed"):
        env["RAGCHAT_N_THREADS"] = str(cores)
    if name.endswith("+passive"):
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    return env


def hold(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def release(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.kill()
        p.wait()


def cold(work: Path, env: dict) -> float:
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "app", "ask", QUESTION], cwd=work, env=env,
                       capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        raise SystemExit(r.stderr[-2000:])
    return time.perf_counter() - t


def warm(work: Path, env: dict) -> float:
    r = subprocess.run([sys.executable, "-c", WARM_SCRIPT, QUESTION, *WARM], cwd=work, env=env,
                       capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        raise SystemExit(r.stderr[-2000:])
    return statistics.median(json.loads(r.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--policies", default="fixed,follow,fixed+passive")
    ap.add_argument("--held", default="0,1,2", help="numbers of cores held, comma-separated")
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0))
    policies = args.policies.split(",")
    held_counts = [int(h) for h in args.held.split(",")]
    print(f"{cores} cores; policies {policies}; held {held_counts}; {args.runs} cold runs each")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copytree(ROOT / "seeds", work / "seeds")
        subprocess.run([sys.executable, "-m", "app", "ingest"], cwd=work,
                       env=policy_env("follow", cores), check=True, capture_output=True)
        results: dict[tuple[str, int], tuple[float, float]] = {}
        for held in held_counts:
            busy = hold(held)
            try:
                time.sleep(1)
                for name in policies:  # interleaved within each condition
                    env = policy_env(name, cores)
                    c = statistics.median(cold(work, env) for _ in range(args.runs))
                    w = warm(work, env)
                    results[(name, held)] = (c, w)
                    print(f"held {held}  {name:14} cold {c:7.2f} s   warm p50 {w:6.2f} s", flush=True)
            finally:
                release(busy)
        print("\nratios against the same policy idle (cold / warm):")
        for name in policies:
            idle = results.get((name, 0))
            if not idle:
                continue
            parts = [f"held {h}: {results[(name, h)][0] / idle[0]:.2f}x / "
                     f"{results[(name, h)][1] / idle[1]:.2f}x" for h in held_counts if h]
            print(f"  {name:14} " + "   ".join(parts))
        if ("fixed", 0) in results and ("follow", 0) in results:
            print(f"idle, follow vs fixed: cold {results[('follow', 0)][0] / results[('fixed', 0)][0]:.2f}x,"
                  f" warm {results[('follow', 0)][1] / results[('fixed', 0)][1]:.2f}x")


if __name__ == "__main__":
    main()
