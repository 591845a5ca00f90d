"""Conversations kept in SQLite under the index folder: the store's logic with
real answers' shapes, and the web chat in a real Chromium across a page reload
and a server restart, per logged-in user."""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys

import pytest

from app.conversations import FILE, Conversations, title_of
from app.errors import RagchatError
from app.types import Answer, Chunk, Citation, Hit
from conftest import free_port, server

Q = "How much is Amazon investing in OpenAI?"


def answer(question: str, text: str = "Amazon is investing $50 billion [1].") -> Answer:
    chunk = Chunk(id="c1", text="Amazon investing $50 billion in OpenAI.", source="seeds/a.txt",
                  title="a", start=0, end=39, content_hash="h", page=2, section="Deal")
    return Answer(text=text, citations=[Citation(n=1, chunk=chunk, quote=chunk.text, score=0.8)],
                  mode="generated", grounded=True, question=question, query=question,
                  timings={"total": 1.0}, retrieved=[Hit(chunk=chunk, score=0.03, similarity=0.8)])


def test_conversations_are_kept_listed_renamed_deleted_and_owned(tmp_path):
    store = Conversations(tmp_path / "index")
    first = store.start("ada", Q, "ragchat")
    store.add(first, "ada", Q, answer(Q))
    store.add(first, "ada", "And later?", answer("And later?", "Then $35 billion [1]."))
    second = store.start("ada", "Which chips?\n  Trainium?", "notes")
    store.add(second, "ada", "Which chips?", answer("Which chips?"))
    other = store.start("bob", "Bob's question", "ragchat")

    again = Conversations(tmp_path / "index")  # a restart: a new object over the same file
    assert again.listed("ada") == [(second, "Which chips? Trainium?"), (first, Q)]
    assert again.listed("bob") == [(other, "Bob's question")]
    c = again.get(first, "ada")
    assert [q for q, _ in c.turns] == [Q, "And later?"] and c.collection == "ragchat"
    kept = c.turns[1][1]
    assert kept.text == "Then $35 billion [1]." and kept.citations[0].chunk.page == 2
    assert kept.retrieved == []  # not kept: only what is shown
    again.add(first, "ada", "More?", answer("More?"))
    assert again.listed("ada")[0][0] == first  # the last used comes first

    # one user never reads, renames, extends or deletes another's
    assert again.get(first, "bob") is None
    assert not again.rename(first, "bob", "mine") and not again.delete(first, "bob")
    with pytest.raises(RagchatError):
        again.add(first, "bob", "Q", answer("Q"))
    assert again.rename(first, "ada", "  Amazon   deal ")
    assert again.listed("ada")[0] == (first, "Amazon deal")
    with pytest.raises(RagchatError):
        again.rename(first, "ada", "   ")
    assert again.delete(first, "ada") and again.get(first, "ada") is None
    with sqlite3.connect(tmp_path / "index" / FILE) as db:
        assert db.execute("SELECT COUNT(*) FROM turns WHERE conversation = ?", (first,)).fetchone() == (0,)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]
    assert len(title_of("word " * 40)) == 80


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    from test_web import CHROMIUM, FLAGS

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


def log_in(browser, url: str, user: str, password: str):
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(url)
    page.fill("input[type=text]", user)
    page.fill("input[type=password]", password)
    page.keyboard.press("Enter")
    page.wait_for_selector("#question textarea", timeout=60_000)
    return page


def listed(page, expect: int) -> list[str]:
    """The titles listed once the page's load event has filled in `expect` of them
    (for none: after two seconds)."""
    page.wait_for_selector("#conversations", state="attached")
    if expect:
        page.wait_for_function("(n) => document.querySelectorAll('#conversations label').length >= n",
                               arg=expect, timeout=30_000)
    else:
        page.wait_for_timeout(2000)
    return [t.strip() for t in page.locator("#conversations label").all_inner_texts()]


def test_the_web_chat_keeps_each_users_conversations_across_reload_and_restart(
        seed_project, tmp_path, browser):
    from test_web import ask

    root = tmp_path / "project"
    shutil.copytree(seed_project / "seeds", root / "seeds")
    shutil.copytree(seed_project / "index", root / "index")
    before = {p for p in root.rglob("*") if "index" not in p.relative_to(root).parts}
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RAGCHAT_")},
           "RAGCHAT_AUTH": "ada:lovelace-42,bob:babbage-17"}
    args = [sys.executable, "-m", "app", "serve", "--port", str(port)]
    with server(args, url + "health", cwd_dir=root, env=env):
        page = log_in(browser, url, "ada", "lovelace-42")
        assert "$50 billion" in ask(page, Q)
        assert "$35 billion" in ask(page, "And how much comes later?")
        page.wait_for_function("() => document.querySelector('#conversations label')")
        assert listed(page, 1) == [Q]

        page.reload()
        page.wait_for_selector("#question textarea")
        assert listed(page, 1) == [Q]
        assert "$50 billion" not in page.inner_text("#chat")  # a new page starts a new chat
        page.click("#conversations label")
        page.wait_for_function("() => document.querySelector('#chat').innerText.includes('$35 billion')")
        assert "And how much comes later?" in page.inner_text("#chat")
        page.click("#manage button.label-wrap")
        page.fill("#title textarea, #title input", "Amazon deal")
        page.click("#rename")
        page.wait_for_function("() => document.querySelector('#conversations').innerText.includes('Amazon deal')")

        bob = log_in(browser, url, "bob", "babbage-17")
        assert listed(bob, 0) == []  # ada's conversations are hers

    with server(args, url + "health", cwd_dir=root, env=env):
        page = log_in(browser, url, "ada", "lovelace-42")
        assert listed(page, 1) == ["Amazon deal"]
        page.click("#conversations label")
        page.wait_for_function("() => document.querySelector('#chat').innerText.includes('$35 billion')")
        assert "$50 billion" in page.inner_text("#chat")
        # the reopened conversation goes on: a follow-up leans on its earlier questions
        ask(page, "And what chips?")
        assert f"Searched for: {Q} And how much comes later? And what chips?" in \
            page.inner_text("#sources")
        page.click("#new")
        page.wait_for_function("() => !document.querySelector('#chat [data-testid=bot]')")
        ask(page, "Which chips will OpenAI use?")
        page.wait_for_function("() => document.querySelectorAll('#conversations label').length == 2")
        assert listed(page, 2) == ["Which chips will OpenAI use?", "Amazon deal"]

        page.click("#conversations label:has-text('Amazon deal')")
        page.wait_for_function("() => document.querySelector('#chat').innerText.includes('$35 billion')")
        page.click("#manage button.label-wrap")
        page.click("#delete")
        page.wait_for_function("() => document.querySelectorAll('#conversations label').length == 1")
        page.reload()
        page.wait_for_selector("#question textarea")
        assert listed(page, 1) == ["Which chips will OpenAI use?"]

    assert (root / "index" / FILE).is_file()
    after = {p for p in root.rglob("*") if "index" not in p.relative_to(root).parts}
    assert after == before  # nothing written outside the index folder
