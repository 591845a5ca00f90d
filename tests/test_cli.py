"""The `ragchat` command line with the real local model and the seed index."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from conftest import ROOT, SEED_SOURCE, run_cli

Q = "How much is Amazon investing in OpenAI?"


def test_ask_answers_the_seed_question_with_a_citation(seed_project):
    r = run_cli("ask", Q, cwd_dir=seed_project)
    assert r.returncode == 0, r.stderr
    answer, _, sources = r.stdout.partition("\nSources:\n")
    assert "$50 billion" in answer
    assert sources.startswith(f"[1] {SEED_SOURCE}, chars ")
    assert "Traceback" not in r.stderr


def test_ask_json_carries_the_whole_answer(seed_project):
    r = run_cli("ask", Q, "--json", "--top-k", "3", cwd_dir=seed_project)
    assert r.returncode == 0, r.stderr
    a = json.loads(r.stdout)
    assert a["mode"] in ("generated", "extractive") and a["grounded"] is True
    assert "$50 billion" in a["text"]
    assert a["question"] == a["query"] == Q
    cite = a["citations"][0]
    assert cite["chunk"]["source"] == SEED_SOURCE
    assert all(part in cite["chunk"]["text"] for part in cite["quote"].split(" \u2026 "))
    assert f"[{cite['n']}]" in a["text"]
    assert 0 <= cite["chunk"]["start"] < cite["chunk"]["end"]
    assert set(a["timings"]) >= {"retrieve", "total"}


def test_question_the_article_cannot_answer_is_refused(seed_project):
    r = run_cli("ask", "Who is the CEO of OpenAI?", "--json", cwd_dir=seed_project)
    assert r.returncode == 0, r.stderr
    a = json.loads(r.stdout)
    assert a["mode"] == "refused" and a["text"].startswith("Not found in your documents")
    assert a["citations"] and a["citations"][0]["chunk"]["source"] == SEED_SOURCE


def test_chat_rewrites_a_follow_up_using_the_conversation(seed_project):
    r = run_cli("chat", cwd_dir=seed_project, stdin=f"{Q}\nAnd how much comes later?\n")
    assert r.returncode == 0, r.stderr
    first, _, second = r.stdout.partition("> And how much comes later?")
    assert "$50 billion" in first
    assert f"(searched for: {Q} And how much comes later?)" in second
    assert "$35 billion" in second


def test_stats_lists_the_collection(seed_project):
    r = run_cli("stats", cwd_dir=seed_project)
    assert r.returncode == 0, r.stderr
    assert "ragchat: 1 files" in r.stdout and "all-MiniLM-L6-v2 (384 dimensions)" in r.stdout
    assert SEED_SOURCE in r.stdout


def _one_line_error(r, *needles):
    assert r.returncode != 0, (r.args, r.returncode, r.stdout[-800:], r.stderr[-800:])
    lines = [x for x in r.stderr.strip().splitlines()
             if not x.startswith("ingest: ")]  # a long ingest's progress lines are not errors
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def silent_port():
    """A port that accepts connections and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield s.getsockname()[1]


LONG = "How much is Amazon investing in OpenAI? " + "really " * 1500
# (where, arguments, environment, what the one line must name); {port}: a silent port,
# {tmp}: a scratch folder. Run from the seed project unless `where` is "empty".
PROBES = [
    ("empty", ["ask", Q], {}, ["no collection 'ragchat'", "ragchat ingest"]),
    ("seed", ["--collection", "other", "ask", Q], {}, ["no collection 'other'"]),
    ("seed", ["--collection", "<b>x</b>", "ask", Q], {}, ["bad setting collection", "<b>x</b>"]),
    ("seed", ["--collection", "ab", "stats"], {}, ["bad setting collection"]),
    ("seed", ["ask", Q], {"RAGCHAT_MODEL_PATH": "{tmp}/missing.gguf"}, ["model file not found"]),
    ("seed", ["ask", Q], {"RAGCHAT_MODEL_PATH": "{tmp}/fake.gguf"}, ["cannot load model", "fake.gguf"]),
    ("seed", ["ask", Q, "--llm", "openai"],
     {"RAGCHAT_OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "RAGCHAT_OPENAI_TIMEOUT": "5"},
     ["cannot reach the model endpoint", "127.0.0.1:9"]),
    ("seed", ["ask", Q, "--llm", "openai"],
     {"RAGCHAT_OPENAI_BASE_URL": "http://127.0.0.1:{port}/v1", "RAGCHAT_OPENAI_TIMEOUT": "2"},
     ["127.0.0.1:{port}"]),
    ("seed", ["--chroma-url", "http://127.0.0.1:{port}", "stats"], {"RAGCHAT_CHROMA_TIMEOUT": "2"},
     ["did not answer within 2 s", "127.0.0.1:{port}"]),
    ("seed", ["--chroma-url", "http://127.0.0.1:9", "stats"], {}, ["cannot reach Chroma server"]),
    ("seed", ["--chroma-url", "ftp://x", "stats"], {}, ["bad setting chroma_url"]),
    ("seed", ["ask", Q], {"RAGCHAT_TOP_K": "lots"}, ["bad setting top_k", "lots"]),
    ("seed", ["ask", Q, "--top-k", "100000"], {}, ["bad setting top_k", "100000"]),
    ("seed", ["ask", Q, "--top-k", "-5"], {}, ["bad setting top_k"]),
    ("seed", ["ask", Q], {"RAGCHAT_TEMPERATURE": "-1"}, ["bad setting temperature"]),
    ("seed", ["ask", Q], {"RAGCHAT_ANSWER_POLICY": "lenient"}, ["bad setting answer_policy"]),
    ("seed", ["ask", Q], {"RAGCHAT_VERIFIER": "nli"}, ["bad setting verifier"]),
    ("seed", ["ask", Q], {"RAGCHAT_MAX_TOKENS": "0"}, ["bad setting max_tokens"]),
    ("seed", ["ingest"], {"RAGCHAT_CHUNK_SIZE": "100000"}, ["bad setting chunk_size"]),
    ("seed", ["ingest"], {"RAGCHAT_MAX_FILE_MB": "0"}, ["bad setting max_file_mb"]),
    ("seed", ["serve"], {"RAGCHAT_PORT": "70000"}, ["bad setting port"]),
    ("seed", ["serve"], {"RAGCHAT_AUTH": "nopassword"}, ["bad setting auth"]),
    ("seed", ["ask", "   "], {}, ["question is empty"]),
    ("seed", ["ask", "\x1b[2J\x1b]0;title\x07"], {}, ["question is empty"]),
    ("seed", ["ask", LONG], {}, ["characters long", "at most 2,000"]),
    ("seed", ["eval", "{tmp}/missing.jsonl"], {}, ["missing.jsonl"]),
]


@pytest.mark.parametrize("where,args,env,needles", PROBES,
                         ids=[f"{i}-{p[1][-1][:20]}" for i, p in enumerate(PROBES)])
def test_every_bad_input_is_one_clear_line(seed_project, tmp_path, silent_port,
                                           where, args, env, needles):
    (tmp_path / "fake.gguf").write_text("this is not a model\n")
    fill = {"port": silent_port, "tmp": tmp_path}
    args = [a.format(**fill) if "{port}" in a or "{tmp}" in a else a for a in args]
    env = {k: v.format(**fill) for k, v in env.items()}
    r = run_cli(*args, cwd_dir=tmp_path if where == "empty" else seed_project, env=env,
                timeout=120)
    assert "Traceback" not in r.stderr, r.stderr[-1500:]
    _one_line_error(r, *(n.format(**fill) for n in needles))


def test_output_printed_while_the_model_loads_is_kept(tmp_path):
    """The engine loads the GGUF in a background thread beside retrieval; what
    the main thread prints meanwhile (an error, a progress bar) must arrive.
    llama-cpp-python's own quiet mode points fds 1 and 2 at /dev/null during a load."""
    script = tmp_path / "load.py"
    script.write_text(
        "import os, sys, threading\n"
        "from app.llm import LocalLLM, default_model_path\n"
        "t = threading.Thread(target=LocalLLM, args=(default_model_path(),))\n"
        "t.start()\n"
        "n = 0\n"
        "while t.is_alive() or n < 50:\n"
        "    os.write(2, b'tick\\n'); n += 1\n"
        "    t.join(0.002)\n"
        "os.write(1, str(n).encode())\n"
    )
    r = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("tick\n") == int(r.stdout) >= 50


def test_escape_sequences_from_documents_names_and_questions_never_reach_the_terminal(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "heron.txt").write_text(
        "The Heron Bridge \x1b[31mopened\x1b[0m in 1932\x1b]0;pwned\x07 and carries 40,000 cars a "
        "day.\x1b[2J It was painted green in 1990.\n")
    (docs / "odd\x1b[2Jname.xlsx").write_bytes(b"PK")
    r = run_cli("ingest", "docs", cwd_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout + r.stderr and "oddname.xlsx" in r.stdout
    # ANSI codes in a question are not read as figures ("0 million") nor shown back
    r = run_cli("ask", "When did the \x1b[1mHeron Bridge\x1b[0m open?", cwd_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "1932" in r.stdout and "\x1b" not in r.stdout + r.stderr and "\x07" not in r.stdout
    r = run_cli("chat", cwd_dir=tmp_path, stdin="When did the \x1b]0;t\x07Heron Bridge open?\n")
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout + r.stderr and "1932" in r.stdout
