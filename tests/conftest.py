"""Shared fixtures. Every test runs in its own temporary working directory with
no RAGCHAT_* variables from the person running the tests; the real seed index
is built once per session in a temporary folder and shared read-only."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "seeds" / "amazon-openai-partnership.txt"
SEED_SOURCE = "seeds/amazon-openai-partnership.txt"


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    for key in list(os.environ):
        if key.startswith("RAGCHAT_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("ANONYMIZED_TELEMETRY", "False")
    monkeypatch.chdir(tmp_path)


@contextlib.contextmanager
def cwd(path: Path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


@pytest.fixture(scope="session")
def seed_project(tmp_path_factory) -> Path:
    """A folder like a user's checkout: seeds/ copied in, index built under index/."""
    from app.engine import Engine
    from app.settings import Settings

    root = tmp_path_factory.mktemp("project")
    shutil.copytree(ROOT / "seeds", root / "seeds")
    with cwd(root):
        report = Engine(Settings(index_dir=root / "index")).ingest([Path("seeds")])
    assert report.ok and report.added == [SEED_SOURCE]
    return root


@pytest.fixture(scope="session")
def engine(seed_project):
    from app.engine import Engine
    from app.settings import Settings

    return Engine(Settings(index_dir=seed_project / "index"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer in {timeout} s: {log.read_text()[-2000:]}")


@contextlib.contextmanager
def server(args: list[str], ready_url: str, cwd_dir: Path | None = None, env=None):
    """Start a server on 127.0.0.1, wait until `ready_url` answers, stop it after.
    Its output goes to a file: a pipe nobody reads would fill and stall it."""
    with tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False) as log:
        proc = subprocess.Popen(args, cwd=cwd_dir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
    try:
        wait_http(ready_url, proc, Path(log.name))
        yield proc
    finally:  # the whole process group: a wrapper (strace) and what it started
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        Path(log.name).unlink(missing_ok=True)


def run_cli(*args: str, cwd_dir: Path, env: dict | None = None, stdin: str | None = None,
            timeout: float = 180) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RAGCHAT_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=cwd_dir, env=full_env,
                          input=stdin, capture_output=True, text=True, timeout=timeout)
