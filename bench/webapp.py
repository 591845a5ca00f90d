"""Helpers for the browser-side scripts: a seed project in a temporary folder
with `ragchat serve` running on 127.0.0.1, and a headless Chromium."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_app(**settings: str):
    """Yield the URL of `ragchat serve` over a fresh index of seeds/, with `settings`
    as RAGCHAT_* variables (llm_slots="1" is RAGCHAT_LLM_SLOTS=1); stop it after."""
    work = Path(tempfile.mkdtemp(prefix="ragchat-web-"))
    shutil.copytree(ROOT / "seeds", work / "seeds")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGCHAT_")}
    env.update(HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    env.update({f"RAGCHAT_{k.upper()}": v for k, v in settings.items()})
    subprocess.run([sys.executable, "-m", "app", "ingest"], cwd=work, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    port = _free_port()
    log = open(work / "serve.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port)],
                            cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()
        shutil.rmtree(work, ignore_errors=True)


def ask_in_page(page, question: str, timeout: float = 60_000, both: bool = False):
    """Ask through the page; return seconds from the click to the first streamed
    draft token (or to the answer, when no draft streamed), and with `both` also
    to the checked answer with its source cards."""
    before = page.locator("#chat [data-testid='bot']").count()
    page.fill("#question textarea", question)
    t = time.perf_counter()
    page.click("#ask")
    page.wait_for_function(
        """([before]) => {
            const bots = document.querySelectorAll("#chat [data-testid='bot']");
            if (bots.length <= before) return false;
            const text = bots[bots.length - 1].innerText;
            return text.includes('\\u258c') || !text.includes('Searching');
        }""", arg=[before], timeout=timeout, polling="raf")
    first = time.perf_counter() - t
    page.wait_for_function(
        """([question]) => {
            const q = document.querySelector('#sources .rc-query');
            return q && q.innerText.includes(question);
        }""", arg=[question], timeout=timeout, polling="raf")
    return (first, time.perf_counter() - t) if both else first
