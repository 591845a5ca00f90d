"""The web chat in a real headless Chromium (Debian's, driven by playwright),
and its API through gradio_client, against `ragchat serve` on 127.0.0.1."""

from __future__ import annotations

import json
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from app.web import escape_markdown, highlight, save_upload
from app.errors import RagchatError
from conftest import ROOT, SEED_SOURCE, free_port, server

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
Q = "How much is Amazon investing in OpenAI?"


@pytest.fixture(scope="module")
def web(seed_project, tmp_path_factory):
    """`ragchat serve` over a copy of the seed project (uploads change its index)."""
    root = tmp_path_factory.mktemp("web")
    shutil.copytree(seed_project / "seeds", root / "seeds")
    shutil.copytree(seed_project / "index", root / "index")
    port = free_port()
    args = [sys.executable, "-m", "app", "serve", "--port", str(port)]
    with server(args, f"http://127.0.0.1:{port}/", cwd_dir=root):
        yield f"http://127.0.0.1:{port}/", root


@pytest.fixture
def page(tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        pg = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.errors = errors
        yield pg
        pg.screenshot(path=str(tmp_path / "last.png"), full_page=True)
        browser.close()


def ask(page, question: str, timeout: float = 60_000) -> str:
    """Type a question, wait for its checked answer and source cards, return the reply."""
    before = page.locator("#chat [data-testid='bot']").count()
    page.fill("#question textarea", question)
    page.click("#ask")
    page.wait_for_function(
        """([question, before]) => {
            const bots = document.querySelectorAll("#chat [data-testid='bot']");
            const query = document.querySelector('#sources .rc-query');
            return bots.length > before && !bots[bots.length - 1].innerText.includes('\u258c')
                && query && query.innerText.includes(question);
        }""", arg=[question, before], timeout=timeout)
    return page.locator("#chat [data-testid='bot']").last.inner_text()


def upload(page, path: Path) -> str:
    if page.locator("#upload input[type=file]").count() == 0:
        page.click("#documents button.label-wrap")  # open the Documents panel
        page.wait_for_selector("#upload input[type=file]", state="attached")
    page.set_input_files("#upload input[type=file]", str(path))
    page.wait_for_function(
        "(name) => ['Indexed ', 'Already indexed ', 'Rejected '].some("
        "  (verb) => (document.querySelector('#upload-status')?.innerText || '').includes(verb + name))",
        arg=path.name, timeout=120_000)
    return page.inner_text("#upload-status")


def test_chat_in_the_browser(web, page, tmp_path):
    url, root = web
    page.goto(url)
    page.wait_for_selector("#question textarea")
    assert "1 files" in page.inner_text("#figures")

    reply = ask(page, Q)
    assert "$50 billion" in reply
    card = page.inner_text("#sources .rc-card")
    assert "amazon-openai-partnership.txt" in card and "chars" in card and "score" in card
    assert page.locator("#sources .rc-card mark").count() > 0
    page.screenshot(path=str(tmp_path / "1-answer.png"), full_page=True)

    reply = ask(page, "And how much comes later?")
    assert "$35 billion" in reply
    assert f"Searched for: {Q} And how much comes later?" in page.inner_text("#sources")

    reply = ask(page, "Who is the CEO of OpenAI?")
    assert "Not found in your documents" in reply
    assert page.locator("#sources .rc-mode-refused").count() == 1
    assert page.locator("#sources .rc-card").count() >= 1  # still the closest sources
    page.screenshot(path=str(tmp_path / "2-refused.png"), full_page=True)

    page.click("#new")
    fact = tmp_path / "falcon-notes.md"
    fact.write_text("# Project Falcon\n\nThe Riverside council approved a launch budget of "
                    "73 million euros for Project Falcon. Falcon's first flight is planned "
                    "for the spring.\n")
    status = upload(page, fact)
    assert "Indexed falcon-notes.md" in status
    assert "2 files" in page.inner_text("#figures")
    reply = ask(page, "What launch budget did the Riverside council approve for Project Falcon?")
    assert "73 million" in reply
    assert "falcon-notes.md" in page.inner_text("#sources .rc-card")
    page.screenshot(path=str(tmp_path / "3-upload.png"), full_page=True)

    bad = tmp_path / "broken.txt"
    bad.write_bytes(b"\x00\x01\x02 definitely binary \xff\xfe")
    status = upload(page, bad)
    assert "Rejected broken.txt: binary data in a text file" in status
    assert "2 files" in page.inner_text("#figures")  # nothing else disturbed
    reply = ask(page, "What chips will OpenAI use?")
    assert "Trainium" in reply

    # plain text keeps markup as the document's words (a .md file's raw HTML is markup,
    # left out when it is read): the chat must show it, escaped, and run none of it
    hostile = tmp_path / "hostile.txt"
    hostile.write_text("The password of the vault is <script>window.__pwned = 1</script> "
                       "swordfish. Visitors see <img src=x onerror=\"window.__pwned = 2\"> "
                       "at the vault door.\n")
    upload(page, hostile)
    ask(page, "What is the password of the vault?")
    text = page.inner_text("#sources") + page.inner_text("#chat")
    assert "<script>window.__pwned = 1</script>" in text
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#sources script, #chat script, #chat img[src=x], #sources img").count() == 0
    assert not page.errors
    page.screenshot(path=str(tmp_path / "4-escaped.png"), full_page=True)
    assert all((tmp_path / f).stat().st_size > 10_000 for f in
               ("1-answer.png", "2-refused.png", "3-upload.png", "4-escaped.png"))


def test_api_answers_20_concurrent_questions_each_with_its_own_facts(web):
    from gradio_client import Client

    url, _ = web
    client = Client(url, verbose=False)
    cases = json.loads((ROOT / "eval" / "concurrent_questions.json").read_text())
    asked = [list(cases)[i % len(cases)] for i in range(20)]  # 20 at once, each case 2-3 times
    t = time.perf_counter()
    with ThreadPoolExecutor(max_workers=20) as pool:
        futures = [(q, pool.submit(client.predict, question=q, api_name="/ask")) for q in asked]
        answers = [(q, f.result(timeout=600)) for q, f in futures]
    assert time.perf_counter() - t < 600
    assert len(answers) == 20
    for q, a in answers:
        assert a["question"] == q
        assert cases[q] in a["text"], (q, a["text"])
        assert a["citations"] and a["citations"][0]["chunk"]["source"] == SEED_SOURCE


def test_api_reports_engine_errors_as_messages(web):
    from gradio_client import Client

    url, _ = web
    with pytest.raises(Exception, match="question is empty"):
        Client(url, verbose=False).predict(question="  ", api_name="/ask")


def test_uploads_never_choose_where_they_are_written(tmp_path):
    evil = tmp_path / "..%2f..%2fetc%2fpasswd.md"
    evil.write_text("hello")
    dest = save_upload(evil, tmp_path / "uploads", 1)
    assert dest.parent.parent == tmp_path / "uploads" and dest.suffix == ".md"
    assert ".." not in dest.name and "/" not in dest.name
    big = tmp_path / "big.txt"
    big.write_bytes(b"a" * (2 * 1024 * 1024))
    with pytest.raises(RagchatError, match="over the 1 MB limit"):
        save_upload(big, tmp_path / "uploads", 1)
    exe = tmp_path / "tool.exe"
    exe.write_bytes(b"MZ")
    with pytest.raises(RagchatError, match="unsupported file type"):
        save_upload(exe, tmp_path / "uploads", 1)


def test_document_text_is_escaped_for_the_page():
    assert "<" not in escape_markdown("<script>alert(1)</script> *bold*")
    marked = highlight("<img src=x onerror=alert(1)> costs $50 billion", "How much does it cost?")
    assert "<img" not in marked and "&lt;img" in marked and "<mark>$50</mark>" in marked


def test_error_pop_ups_render_markup_as_text(web, page):
    """A collection name typed with markup is refused in a pop-up that shows the
    markup as text: no element is created and no request is made."""
    url, _ = web
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(url)
    page.wait_for_selector("#question textarea")
    page.click("#documents button.label-wrap")
    name = '<img src=x onerror="window.__pwned = 3"><b>bold</b>'
    box = page.locator("#collection input")
    box.fill(name)
    box.press("Enter")
    page.wait_for_function(
        "() => document.body.innerText.includes('bad setting collection')", timeout=30_000)
    body = page.inner_text("body")
    assert "<b>bold</b>" in body and "<img src=x" in body
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img[src=x], b:text('bold')").count() == 0
    assert not [u for u in requested if u.rstrip("/").endswith("/x")]


def test_with_a_login_every_route_but_health_needs_it_and_guessing_is_throttled(seed_project, page):
    import os

    import httpx
    from gradio_client import Client

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "RAGCHAT_AUTH": "ada:lovelace-42"}
    args = [sys.executable, "-m", "app", "serve", "--port", str(port)]
    with server(args, f"{base}/health", cwd_dir=seed_project, env=env):
        anon = httpx.Client(base_url=base, timeout=30)
        assert anon.get("/health").json() == {"status": "ok"}
        for method, path in [("GET", "/gradio_api/heartbeat/abc"), ("POST", "/gradio_api/queue/join"),
                             ("GET", "/gradio_api/queue/data?session_hash=abc"),
                             ("POST", "/gradio_api/call/ask"), ("POST", "/gradio_api/upload"),
                             ("GET", "/gradio_api/info"), ("GET", "/gradio_api/openapi.json"),
                             ("GET", f"/gradio_api/file={seed_project}/{SEED_SOURCE}"),
                             ("GET", "/gradio_api/file=/etc/passwd"), ("POST", "/gradio_api/run/predict"),
                             ("GET", "/v1/models"), ("POST", "/v1/chat/completions")]:
            r = anon.request(method, path)
            assert r.status_code in (401, 403), (path, r.status_code, r.text[:200])
            assert "billion" not in r.text
        assert "billion" not in anon.get("/config").text  # the login form's stub only

        # the login form works in the browser, and the API with the same login
        page.goto(base + "/")
        page.fill("input[type=text]", "ada")
        page.fill("input[type=password]", "lovelace-42")
        page.keyboard.press("Enter")
        page.wait_for_selector("#question textarea", timeout=30_000)
        answer = Client(base + "/", auth=("ada", "lovelace-42"), verbose=False).predict(
            question=Q, api_name="/ask")
        assert "$50 billion" in answer["text"]

        # signed in, the file route still serves only what ragchat put there
        user = httpx.Client(base_url=base, timeout=30)
        assert user.post("/login", data={"username": "ada", "password": "lovelace-42"}).status_code == 200
        assert user.get("/gradio_api/info").status_code == 200  # the session works
        # without RAGCHAT_API_KEY, the OpenAI-compatible API is behind the same login
        assert anon.get("/v1/models").json()["error"]["code"] == "invalid_api_key"
        assert "ragchat" in [m["id"] for m in user.get("/v1/models").json()["data"]]
        for path in ("/etc/passwd", f"{seed_project}/index/chroma/chroma.sqlite3",
                     f"{seed_project}/{SEED_SOURCE}"):
            r = user.get(f"/gradio_api/file={path}")
            assert r.status_code in (403, 404), (path, r.status_code)

        guesser = httpx.Client(base_url=base, timeout=30)
        codes = [guesser.post("/login", data={"username": "ada", "password": f"guess{i}"}).status_code
                 for i in range(7)]
        assert codes == [400] * 5 + [429, 429]
        right = guesser.post("/login", data={"username": "ada", "password": "lovelace-42"})
        assert right.status_code == 429 and right.headers["retry-after"] == "60"
