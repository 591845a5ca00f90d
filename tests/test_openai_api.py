"""ragchat's OpenAI-compatible API, driven by the official `openai` client
against a real `ragchat serve` on 127.0.0.1 (the real models, the real
embedded Chroma), and the request checks as plain logic."""

from __future__ import annotations

import json
import os
import shutil
import sys

import pytest

from app.openai_api import ApiError, collection_of, overrides_of, user_turns
from conftest import SEED_SOURCE, free_port, server

Q = "How much is Amazon investing in OpenAI?"
KEY = "sk-test-7f3a"


@pytest.fixture(scope="module")
def api(seed_project, tmp_path_factory):
    """`ragchat serve` with an API key, over a copy of the seed project that also
    holds a second collection ('notes') with one fact the seed does not have."""
    from app.engine import Engine
    from app.settings import Settings

    root = tmp_path_factory.mktemp("api")
    shutil.copytree(seed_project / "seeds", root / "seeds")
    shutil.copytree(seed_project / "index", root / "index")
    (root / "notes").mkdir()
    (root / "notes" / "falcon.md").write_text(
        "# Project Falcon\n\nThe Riverside council approved a launch budget of 73 million "
        "euros for Project Falcon.\n")
    Engine(Settings(index_dir=root / "index", collection="notes")).ingest([root / "notes"])
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RAGCHAT_")},
           "RAGCHAT_API_KEY": KEY}
    args = [sys.executable, "-m", "app", "serve", "--port", str(port)]
    with server(args, f"http://127.0.0.1:{port}/health", cwd_dir=root, env=env):
        yield f"http://127.0.0.1:{port}/v1"


def client(base: str, key: str = KEY):
    import openai

    return openai.OpenAI(base_url=base, api_key=key, max_retries=0, timeout=300)


def test_a_plain_completion_is_the_checked_answer_with_its_sources(api):
    r = client(api).chat.completions.create(
        model="ragchat", messages=[{"role": "system", "content": "Be brief."},
                                   {"role": "user", "content": Q}])
    text = r.choices[0].message.content
    assert r.object == "chat.completion" and r.choices[0].finish_reason == "stop"
    assert "$50 billion" in text and "[1]" in text
    assert f"\n\nSources:\n[1] {SEED_SOURCE}" in text
    extra = r.model_extra["ragchat"]
    assert extra["question"] == Q and extra["mode"] in ("generated", "extractive")
    assert extra["grounded"] is True
    cited = extra["citations"][0]
    assert cited["chunk"]["source"] == SEED_SOURCE and "$50 billion" in cited["quote"]


def test_streaming_sends_checked_text_then_done(api):
    import httpx

    stream = client(api).chat.completions.create(
        model="ragchat", stream=True, messages=[{"role": "user", "content": Q}])
    chunks = list(stream)
    content = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "$50 billion" in content and f"[1] {SEED_SOURCE}" in content
    assert [c.choices[0].finish_reason for c in chunks][-1] == "stop"
    assert chunks[-1].model_extra["ragchat"]["text"] in content  # the whole Answer rides last
    drafts = [c.model_extra["ragchat"]["draft"] for c in chunks
              if "draft" in (c.model_extra.get("ragchat") or {})]
    assert drafts and not any(c.choices[0].delta.content for c in chunks
                              if "draft" in (c.model_extra.get("ragchat") or {}))

    # on the wire: Server-Sent Events ending with [DONE]
    with httpx.stream("POST", f"{api}/chat/completions", timeout=300,
                      headers={"authorization": f"Bearer {KEY}"},
                      json={"model": "ragchat", "stream": True,
                            "messages": [{"role": "user", "content": Q}]}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line for line in r.iter_lines() if line]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    assert json.loads(events[-2][6:])["choices"][0]["finish_reason"] == "stop"


def test_a_follow_up_uses_the_conversation(api):
    r = client(api).chat.completions.create(model="ragchat", messages=[
        {"role": "user", "content": Q},
        {"role": "assistant", "content": "Amazon is investing $50 billion [1]."},
        {"role": "user", "content": "And how much comes later?"}])
    extra = r.model_extra["ragchat"]
    assert extra["query"] == f"{Q} And how much comes later?"  # as the web chat condenses it
    assert "$35 billion" in r.choices[0].message.content


def test_a_refusal_is_a_completion_that_says_so(api):
    r = client(api).chat.completions.create(
        model="ragchat", messages=[{"role": "user", "content": "Who is the CEO of OpenAI?"}])
    assert r.choices[0].message.content.startswith("Not found in your documents")
    assert "Closest sources:" in r.choices[0].message.content
    assert r.model_extra["ragchat"]["mode"] == "refused"
    assert r.model_extra["ragchat"]["grounded"] is False


def test_the_model_name_picks_the_collection(api):
    c = client(api)
    listed = [m.id for m in c.models.list()]
    assert listed[0] == "ragchat" and "ragchat:notes" in listed  # and any other collection
    r = c.chat.completions.create(model="ragchat:notes", messages=[
        {"role": "user", "content": "What launch budget did the Riverside council approve?"}])
    assert "73 million" in r.choices[0].message.content
    assert "falcon.md" in r.choices[0].message.content


def test_errors_come_in_openais_shape(api):
    import httpx
    import openai

    with pytest.raises(openai.AuthenticationError) as e:
        client(api, key="sk-wrong").chat.completions.create(
            model="ragchat", messages=[{"role": "user", "content": Q}])
    assert e.value.body["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        client(api, key="sk-wrong").models.list()
    with pytest.raises(openai.NotFoundError) as e:
        client(api).chat.completions.create(
            model="ragchat:nowhere", messages=[{"role": "user", "content": Q}])
    assert e.value.body["code"] == "model_not_found" and "'nowhere'" in e.value.body["message"]
    with pytest.raises(openai.NotFoundError):
        client(api).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": Q}])
    with pytest.raises(openai.BadRequestError) as e:
        client(api).chat.completions.create(model="ragchat", messages=[])
    assert e.value.body["param"] == "messages"
    with pytest.raises(openai.BadRequestError) as e:
        client(api).chat.completions.create(model="ragchat", temperature=7,
                                            messages=[{"role": "user", "content": Q}])
    assert e.value.body["param"] == "temperature"

    auth = {"authorization": f"Bearer {KEY}"}
    big = httpx.post(f"{api}/chat/completions", headers=auth, timeout=60, json={
        "model": "ragchat", "messages": [{"role": "user", "content": "x" * 2_000_000}]})
    assert big.status_code == 413 and big.json()["error"]["code"] == "request_too_large"
    bad = httpx.post(f"{api}/chat/completions", headers={**auth, "content-type": "application/json"},
                     content=b"{not json", timeout=60)
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]["message"]


def test_request_checks():
    assert user_turns([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                       {"role": "user", "content": [{"type": "text", "text": "c"}]}]) == ["a", "c"]
    for messages in ([], None, [{"role": "assistant", "content": "x"}],
                     [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
                     [{"role": "user", "content": "  "}], [{"role": "wizard", "content": "x"}],
                     [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}],
                     [{"role": "user", "content": "q" * 2001}]):
        with pytest.raises(ApiError) as e:
            user_turns(messages)
        assert e.value.status == 400 and e.value.param.startswith("messages")
    assert collection_of("ragchat", "seeds") == "seeds"
    assert collection_of("ragchat:notes", "seeds") == "notes"
    for name, status in (("gpt-4", 404), ("ragchat:", 404), ("", 400), (None, 400)):
        with pytest.raises(ApiError) as e:
            collection_of(name, "seeds")
        assert e.value.status == status
    assert overrides_of({"temperature": 0.5, "max_tokens": 100, "n": 1}) == {
        "temperature": 0.5, "max_tokens": 100}
    for body in ({"n": 2}, {"temperature": "hot"}, {"temperature": True}, {"max_tokens": 8},
                 {"max_completion_tokens": 1.5}, {"stream": "yes"}):
        with pytest.raises(ApiError):
            overrides_of(body)
