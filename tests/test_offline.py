"""No traffic leaves the machine: ingest, ask, chat and serve run under
`strace -f` (every thread and child), and every connect() or sendto() to an
internet address is a failure, DNS queries included. Loopback and Unix sockets
are fine: the web chat, and the servers a user configures, live there."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import free_port, server

STRACE = shutil.which("strace")
pytestmark = pytest.mark.skipif(STRACE is None, reason="strace is not installed (make test installs it)")
Q = "How much is Amazon investing in OpenAI?"


def traced(log: Path, *args: str) -> list[str]:
    return [STRACE, "-f", "-qq", "--seccomp-bpf", "-e", "trace=connect,sendto,sendmsg",
            "-o", str(log), sys.executable, "-m", "app", *args]


def remote_calls(log: Path) -> list[str]:
    """System calls that address an IPv4/IPv6 host other than loopback."""
    out = []
    for line in log.read_text().splitlines():
        if "AF_INET" not in line:
            continue
        hosts = re.findall(r'inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)"', line)
        for v4, v6 in hosts:
            host = v4 or v6
            if not (host.startswith("127.") or host in ("::1", "::ffff:127.0.0.1", "0.0.0.0", "::")):
                out.append(line)
        if "htons(53)" in line:  # a DNS query, to whatever resolver
            out.append(line)
    return out


def test_ingest_ask_chat_and_serve_send_nothing_off_the_machine(tmp_path):
    from gradio_client import Client

    root = Path(__file__).resolve().parents[1]
    shutil.copytree(root / "seeds", tmp_path / "seeds")
    logs = {name: tmp_path / f"{name}.strace" for name in ("ingest", "ask", "chat", "serve")}
    for name, args, stdin in (("ingest", ["ingest"], None), ("ask", ["ask", Q], None),
                              ("chat", ["chat"], Q + "\nAnd how much later?\n")):
        r = subprocess.run(traced(logs[name], *args), cwd=tmp_path, input=stdin, text=True,
                           capture_output=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
    assert "$50 billion" in r.stdout  # the chat really answered
    port = free_port()
    with server(traced(logs["serve"], "serve", "--port", str(port)),
                f"http://127.0.0.1:{port}/", cwd_dir=tmp_path):
        answer = Client(f"http://127.0.0.1:{port}/", verbose=False).predict(
            question=Q, api_name="/ask")
        assert "$50 billion" in answer["text"]
    assert "127.0.0.1" in logs["serve"].read_text()  # the trace sees the server's own sockets
    for name, log in logs.items():
        assert remote_calls(log) == [], (name, remote_calls(log)[:5])
