"""The local model's threads follow the cores other processes leave free: with
every core held by a busy process, it generates with one thread (llama.cpp's
spinning OpenMP workers on a taken core stall every token)."""

from __future__ import annotations

import subprocess
import sys
import time

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
