"""The `ragchat` command line with the real local model and the seed index."""

from __future__ import annotations

import json
import subprocess
import sys

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
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_errors_are_one_clear_line(seed_project, tmp_path):
    _one_line_error(run_cli("ask", Q, cwd_dir=tmp_path), "no collection 'ragchat'", "ragchat ingest")
    _one_line_error(run_cli("--collection", "other", "ask", Q, cwd_dir=seed_project),
                    "no collection 'other'")
    _one_line_error(run_cli("ask", Q, cwd_dir=seed_project,
                            env={"RAGCHAT_MODEL_PATH": str(tmp_path / "missing.gguf")}),
                    "model file not found", "missing.gguf")
    _one_line_error(run_cli("ask", Q, "--llm", "openai", cwd_dir=seed_project,
                            env={"RAGCHAT_OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
                                 "RAGCHAT_OPENAI_TIMEOUT": "5"}),
                    "cannot reach the model endpoint", "127.0.0.1:9")
    _one_line_error(run_cli("ask", Q, cwd_dir=seed_project, env={"RAGCHAT_TOP_K": "lots"}),
                    "bad setting top_k")
    _one_line_error(run_cli("ask", "   ", cwd_dir=seed_project), "question is empty")


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
