"""The paths that grow past one machine, against real servers on 127.0.0.1:
llama.cpp's OpenAI-compatible server for generation, `chroma run` for the store."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from app.engine import Engine
from app.llm import OpenAILLM, default_model_path
from app.settings import Settings
from conftest import SEED_SOURCE, free_port, run_cli, server

Q = "How much is Amazon investing in OpenAI?"


@pytest.fixture(scope="module")
def llama_server():
    port = free_port()
    args = [sys.executable, "-m", "llama_cpp.server", "--model", str(default_model_path()),
            "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048"]
    with server(args, f"http://127.0.0.1:{port}/v1/models"):
        yield f"http://127.0.0.1:{port}/v1"


def test_openai_backend_answers_through_a_real_server(seed_project, llama_server):
    engine = Engine(Settings(index_dir=seed_project / "index", llm="openai",
                             openai_base_url=llama_server, openai_model="smollm2"))
    pieces: list[str] = []
    a = engine.ask(Q, on_token=pieces.append)
    assert isinstance(engine.llm, OpenAILLM)
    assert pieces and a.timings["tokens"] == len(pieces)  # the draft streamed from the server
    assert "$50 billion" in a.text and a.mode in ("generated", "extractive")
    assert a.citations[0].chunk.source == SEED_SOURCE


def test_a_stream_from_the_server_can_be_stopped_early(llama_server):
    llm = OpenAILLM(llama_server, "smollm2", "", 60)
    ask = [{"role": "user", "content": "Count from one to twenty in words."}]
    stream = llm.stream(ask, 24, 0.0)
    assert [next(stream) for _ in range(2)]
    stream.close()  # ends the HTTP stream; the server goes on serving
    assert "".join(llm.stream(ask, 8, 0.0)).strip()


def test_openai_backend_from_the_cli(seed_project, llama_server):
    r = run_cli("ask", Q, "--llm", "openai", cwd_dir=seed_project,
                env={"RAGCHAT_OPENAI_BASE_URL": llama_server})
    assert r.returncode == 0, r.stderr
    assert "$50 billion" in r.stdout and SEED_SOURCE in r.stdout


def test_chroma_server_path(tmp_path):
    chroma = Path(sys.executable).with_name("chroma")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [str(chroma), "run", "--path", str(tmp_path / "chroma-data"), "--host", "127.0.0.1",
            "--port", str(port)]
    shutil.copytree(Path(__file__).resolve().parents[1] / "seeds", tmp_path / "seeds")
    with server(args, f"{url}/api/v2/heartbeat", cwd_dir=tmp_path):
        settings = Settings(index_dir=tmp_path / "local", chroma_url=url, collection="shared-seeds")
        report = Engine(settings).ingest([Path("seeds")])
        assert report.ok and report.added == [SEED_SOURCE]
        # Nothing of the store is written locally: only the exported query model.
        assert not (tmp_path / "local" / "chroma").exists()
        again = Engine(settings).ingest([Path("seeds")])
        assert again.unchanged == [SEED_SOURCE] and again.chunks == 0

        # A second machine (another local folder) queries the same server.
        other = Settings(index_dir=tmp_path / "elsewhere", chroma_url=url, collection="shared-seeds")
        a = Engine(other).ask(Q)
        assert "$50 billion" in a.text and a.citations[0].chunk.source == SEED_SOURCE
        r = run_cli("--chroma-url", url, "stats", cwd_dir=tmp_path)
        assert "shared-seeds: 1 files" in r.stdout, r.stderr
    r = run_cli("--chroma-url", url, "-c", "shared-seeds", "ask", Q, cwd_dir=tmp_path)
    assert r.returncode == 1 and "Error: " in r.stderr and "Traceback" not in r.stderr
