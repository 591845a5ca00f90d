"""The web chat: a Gradio Blocks app, a thin adapter over the engine.

Each callback calls one engine method and renders what comes back: `ask`
(streamed through a queue from the engine's token callback, then replaced by
the checked answer and its source cards), `ingest` for uploads, `reindex`,
`stats`. Engine errors become `gr.Error` messages. Everything that came from a
document or a model is escaped before it reaches the page, so a document
holding `<script>` shows those characters and runs nothing. Conversations are
kept in SQLite under the index folder (`app.conversations`), listed last used
first, titled by their first question, and can be reopened, renamed and
deleted; with a login they belong to the user who logged in. Per-session state
is the shown conversation's id and its earlier questions (as retrieved); the
queue serves several sessions at once and the engine serialises what must be
serialised.

Left out: user accounts beyond the configured login, deleting documents from
the browser, and editing earlier turns.
"""

# No `from __future__ import annotations`: Gradio finds the `gr.Request` parameter of a
# callback by its annotation, which must be the class itself.
import hashlib
import html
import queue
import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from app import loading, offline
from app import text as lang
from app.conversations import Conversations
from app.engine import Engine
from app.errors import RagchatError
from app.settings import Settings
from app.types import Answer

MODE_LABEL = {
    "generated": "Answer",
    "extractive": "Quoted from your documents",
    "refused": "Not found in your documents",
}
DRAFT_EVERY = 0.15  # seconds between two updates of a streaming draft
EMPTY_SOURCES = "<p>Sources for each answer appear here.</p>"
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")

CSS = """
#sources .rc-answer {border-radius: 8px; padding: 8px 12px; margin-bottom: 10px;}
#sources .rc-mode-generated {background: #ecfdf5; border: 1px solid #6ee7b7;}
#sources .rc-mode-extractive {background: #eff6ff; border: 1px solid #93c5fd;}
#sources .rc-mode-refused {background: #fef2f2; border: 1px solid #fca5a5;}
#sources .rc-badge {font-weight: 700;}
#sources .rc-query, #sources .rc-note {font-size: 0.85em; opacity: 0.8;}
#sources .rc-card {border: 1px solid #d1d5db; border-radius: 8px; padding: 8px 12px; margin: 8px 0;}
#sources .rc-head {font-size: 0.9em;}
#sources .rc-file {font-weight: 600;}
#sources .rc-meta {opacity: 0.7;}
#sources .rc-quote {margin: 6px 0 0 0; padding-left: 8px; border-left: 3px solid #9ca3af;
  white-space: pre-wrap;}
#sources mark {background: #fde68a; padding: 0 1px;}
"""


def escape_markdown(text: str) -> str:
    """Text shown as itself in a Markdown-rendering chat bubble."""
    return html.escape(_MD_SPECIAL.sub(r"\\\1", text), quote=False)


_SCALE_WORD = re.compile(r"(?:thousand|million|billion|trillion|percent|bn|mn)$", re.I)


def toast(message: str) -> str:
    """A message for a pop-up (gr.Warning, gr.Error), which the page renders as
    HTML: everything in it came from a file, a setting or a question."""
    return html.escape(message, quote=False)


def highlight(quote: str, support: str) -> str:
    """The escaped quote with its supporting words marked: words it shares
    with `support` (compared by their stems) and its figures."""
    words = lang.content_words(support)
    names = {n.lower() for n in lang.facts(support)[1]}
    tokens = re.split(r"(\$?\d[\d,.]*%?|\w+)", quote)
    out = []
    for i, token in enumerate(tokens):
        plain = token.lower()
        figure = bool(re.match(r"\$?\d", token))
        scale = bool(_SCALE_WORD.match(token)) and i >= 2 and re.match(r"\$?\d", tokens[i - 2] or "")
        shared = len(plain) >= 4 and plain.isalpha() and lang.stem(plain) in words
        hit = figure or scale or shared or plain in names
        out.append(f"<mark>{html.escape(token)}</mark>" if hit else html.escape(token))
    return "".join(out)


def answer_markdown(a: Answer) -> str:
    label = {"generated": "", "extractive": "**Quoted from your documents:** ",
             "refused": "**Not found in your documents.** "}[a.mode]
    text = a.text
    if a.mode == "refused":
        text = a.note[:1].upper() + a.note[1:] + ". The closest sources are listed beside."
    return label + escape_markdown(text)


def source_cards(a: Answer) -> str:
    esc = html.escape
    head = (f'<div class="rc-answer rc-mode-{a.mode}"><div class="rc-badge">'
            f'{esc(MODE_LABEL[a.mode])}</div>'
            f'<div class="rc-query">Searched for: {esc(a.query)}</div>')
    if a.note:
        head += f'<div class="rc-note">{esc(a.note)}</div>'
    head += "</div>"
    # A generated answer is supported by the words it shares with the quote; a
    # quoted or refused one by the words the question shares with it.
    support = a.text if a.mode == "generated" else a.question
    cards = []
    for c in a.citations:
        page = f" · page {c.chunk.page}" if c.chunk.page else ""
        cards.append(
            f'<div class="rc-card" data-n="{c.n}"><div class="rc-head">'
            f'<span class="rc-n">[{c.n}]</span> '
            f'<span class="rc-file" title="{esc(c.chunk.source)}">{esc(Path(c.chunk.source).name)}</span> '
            f'<span class="rc-meta">{page} · chars {c.chunk.start}–{c.chunk.end} · score {c.score:.2f}</span>'
            f'</div><blockquote class="rc-quote">{highlight(c.quote, support)}</blockquote></div>')
    return head + "".join(cards)


def figures_markdown(engine: Engine) -> str:
    s = engine.settings
    try:
        rows = {r.name: r for r in engine.stats()}
    except RagchatError as e:
        return f"Index unavailable: {escape_markdown(str(e))}"
    r = rows.get(s.collection)
    model = (Path(s.model_path).name if s.model_path else "SmolLM2-135M-Instruct Q4_1") \
        if s.llm == "local" else f"{s.openai_model} at {s.openai_base_url}"
    if r is None:
        return (f"Collection **{escape_markdown(s.collection)}** is empty: upload documents "
                f"below. Language model: {escape_markdown(model)} ({s.llm}).")
    return (f"Collection **{escape_markdown(r.name)}**: {r.files} files, {r.chunks} chunks · "
            f"embedder {escape_markdown(r.embedder)} ({r.dimension} dimensions) · "
            f"language model {escape_markdown(model)} ({s.llm})")


def save_upload(path: Path, uploads: Path, max_mb: float) -> Path:
    """Copy one uploaded file under `uploads/<content hash>/<safe name>`; the
    browser's file name never chooses a folder. Raises RagchatError."""
    name = Path(path.name).name
    ext = Path(name).suffix.lower()
    if ext not in loading.SUPPORTED:
        raise RagchatError(f"{name}: unsupported file type '{ext or name}' "
                           f"(supported: {', '.join(sorted(loading.SUPPORTED))})")
    size = path.stat().st_size
    if size > max_mb * 1024 * 1024:
        raise RagchatError(f"{name}: {size / 1048576:.1f} MB is over the {max_mb:g} MB limit")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem)
    safe = re.sub(r"\.{2,}", ".", safe).strip("._")[:80] or "document"
    dest = uploads / digest / f"{safe}{ext}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, dest)
    return dest


def build_app(engine: Engine):
    offline.enforce()
    import gradio as gr

    base = engine.settings
    uploads = base.index_dir / "uploads"
    convs = Conversations(base.index_dir)

    def engine_for(collection: str, backend: str | None = None, temperature: float | None = None,
                   **more):
        overrides = {"collection": collection or base.collection, **more}
        if backend:
            overrides["llm"] = backend
        if temperature is not None:
            overrides["temperature"] = float(temperature)
        try:
            return engine.variant(**overrides)
        except RagchatError as e:
            raise gr.Error(toast(str(e))) from None

    def collections() -> list[str]:
        try:
            names = sorted(r.name for r in engine.stats())
        except RagchatError:
            names = []
        return names if base.collection in names else [base.collection, *names]

    def owner(request: gr.Request | None) -> str:
        """Whose conversations: the logged-in user, or "" without a login."""
        return (getattr(request, "username", None) or "") if request else ""

    def listing(request: gr.Request | None, value: str | None = None):
        try:
            choices = [(title, ident) for ident, title in convs.listed(owner(request))]
        except RagchatError as e:
            gr.Warning(toast(str(e)))
            choices = []
        return gr.update(choices=choices, value=value)

    def respond(message: str, chat: list, queries: list, collection: str, top_k: float,
                backend: str, temperature: float, conversation: str | None,
                request: gr.Request) -> Iterator:
        message = (message or "").strip()
        if not message:
            raise gr.Error("Type a question first.")
        eng = engine_for(collection, backend, temperature)
        chat = list(chat or []) + [{"role": "user", "content": escape_markdown(message)},
                                   {"role": "assistant", "content": "*Searching your documents…*"}]
        same = gr.update(), gr.update()  # the conversation and the list, until the answer
        yield chat, queries, "", gr.update(), *same
        tokens: queue.Queue = queue.Queue()
        result: dict = {}

        def work() -> None:
            try:
                result["answer"] = eng.ask(message, history=queries, on_token=tokens.put,
                                           top_k=int(top_k))
            except Exception as e:  # noqa: BLE001 - re-raised below in the request
                result["error"] = e
            finally:
                tokens.put(None)

        threading.Thread(target=work, daemon=True).start()
        draft, shown = "", 0.0
        while (piece := tokens.get()) is not None:
            draft += piece
            # The first piece at once, then at most every DRAFT_EVERY seconds: each
            # update costs Gradio and the browser some CPU, which on two cores
            # the model's threads were waiting for.
            if shown and time.monotonic() - shown < DRAFT_EVERY:
                continue
            shown = time.monotonic()
            chat[-1] = {"role": "assistant",  # replaced by the checked answer
                        "content": "*Draft, not yet checked:* " + escape_markdown(draft) + " ▌"}
            yield chat, queries, "", gr.update(), *same
        if "error" in result:
            err = result["error"]
            chat[-1] = {"role": "assistant", "content": "*No answer: see the error message.*"}
            if isinstance(err, RagchatError):
                raise gr.Error(toast(str(err)))
            raise err
        a: Answer = result["answer"]
        chat[-1] = {"role": "assistant", "content": answer_markdown(a)}
        who = owner(request)
        try:  # kept, so that a reload or a restart finds it
            if not conversation:
                conversation = convs.start(who, message, eng.settings.collection)
            convs.add(conversation, who, message, a)
        except RagchatError as e:
            gr.Warning(toast(str(e)))
        yield (chat, [*queries, a.query], "", source_cards(a), conversation,
               listing(request, conversation))

    def reopen(ident: str | None, request: gr.Request):
        """A kept conversation back in the chat, its collection selected."""
        c = convs.get(ident, owner(request)) if ident else None
        if c is None:
            if ident:
                gr.Warning("That conversation is gone.")
            return [], [], EMPTY_SOURCES, None, gr.update(), "", listing(request)
        chat: list = []
        for q, a in c.turns:
            chat += [{"role": "user", "content": escape_markdown(q)},
                     {"role": "assistant", "content": answer_markdown(a)}]
        cards = source_cards(c.turns[-1][1]) if c.turns else EMPTY_SOURCES
        return (chat, [a.query for _, a in c.turns], cards, c.id, gr.update(value=c.collection),
                c.title, gr.update())

    def on_load(request: gr.Request):
        return listing(request)

    def rename(ident: str | None, title: str, request: gr.Request):
        if not ident:
            raise gr.Error("Open a conversation first.")
        try:
            convs.rename(ident, owner(request), title)
        except RagchatError as e:
            raise gr.Error(toast(str(e))) from None
        return listing(request, ident)

    def delete(ident: str | None, request: gr.Request):
        if ident:
            convs.delete(ident, owner(request))
        return [], [], EMPTY_SOURCES, None, "", listing(request)

    def on_upload(files: list | None, collection: str, progress=gr.Progress()):
        if not files:
            return gr.update(), gr.update(), None
        eng = engine_for(collection)
        saved, problems = [], []
        for f in files:
            try:
                saved.append(save_upload(Path(getattr(f, "name", f)), uploads, base.max_file_mb))
            except RagchatError as e:
                problems.append(str(e))
            except OSError as e:
                problems.append(f"{Path(str(f)).name}: cannot read the upload ({e.strerror})")
        lines = []
        if saved:
            def report_progress(done: int, total: int, current: str, chunks: int) -> None:
                progress((done, total), desc=f"Indexing {Path(current).name} ({chunks} chunks)"
                         if current else "Indexing")

            try:
                report = eng.ingest(saved, progress=report_progress)
            except RagchatError as e:
                raise gr.Error(toast(str(e))) from None
            for s in report.added + report.updated:
                lines.append(f"Indexed {escape_markdown(Path(s).name)}")
            for s in report.unchanged:
                lines.append(f"Already indexed {escape_markdown(Path(s).name)}")
            problems += [reason.replace(src, Path(src).name, 1)
                         for src, reason in report.failed.items()]
        for p in problems:
            lines.append(f"**Rejected** {escape_markdown(p)}")
            gr.Warning(toast(p))
        return "\n\n".join(lines), figures_markdown(eng), None

    def on_reindex(collection: str, progress=gr.Progress()):
        eng = engine_for(collection)

        def report_progress(done: int, total: int, current: str, chunks: int) -> None:
            progress((done, total), desc=f"Re-indexing ({chunks} chunks written)")

        try:
            report = eng.reindex(progress=report_progress)
        except RagchatError as e:
            raise gr.Error(toast(str(e))) from None
        return escape_markdown(report.summary()), figures_markdown(eng)

    def on_collection(collection: str, conversation: str | None, request: gr.Request):
        figures = figures_markdown(engine_for(collection))
        c = convs.get(conversation, owner(request)) if conversation else None
        if c is not None and c.collection == collection:  # reopened: keep it
            return figures, gr.update(), gr.update(), gr.update(), conversation, gr.update()
        return figures, [], [], EMPTY_SOURCES, None, gr.update(value=None)

    def api_ask(question: str, top_k: int = 0, collection: str = "") -> dict:
        """Answer one question; returns the whole Answer as JSON."""
        # top_k goes through the settings, so it has the CLI's bounds and message
        bounds = {"top_k": int(top_k)} if top_k else {}
        try:
            eng = engine_for(collection, **bounds)
            return eng.ask(question).to_dict()
        except RagchatError as e:
            raise gr.Error(str(e)) from None

    with gr.Blocks(title="ragchat", analytics_enabled=False) as demo:
        gr.Markdown("## ragchat · ask your documents")
        figures = gr.Markdown(figures_markdown(engine), elem_id="figures")
        queries = gr.State([])
        conversation = gr.State(None)  # id of the kept conversation shown, None for a new one
        with gr.Row():
            with gr.Column(scale=1, min_width=200, elem_id="history"):
                gr.Markdown("#### Conversations")
                new_btn = gr.Button("New conversation", size="sm", elem_id="new")
                kept = gr.Radio([], label="Kept conversations, last used first",
                                show_label=False, elem_id="conversations")
                with gr.Accordion("Rename or delete", open=False, elem_id="manage"):
                    title = gr.Textbox(label="Title", max_length=80, elem_id="title")
                    with gr.Row():
                        rename_btn = gr.Button("Rename", size="sm", elem_id="rename")
                        delete_btn = gr.Button("Delete", size="sm", variant="stop",
                                               elem_id="delete")
            with gr.Column(scale=3):
                chat = gr.Chatbot(label="Conversation", height=480, elem_id="chat",
                                  sanitize_html=True, render_markdown=True,
                                  feedback_options=None, buttons=["copy"])
                with gr.Row():
                    question = gr.Textbox(placeholder="Ask a question about your documents…",
                                          show_label=False, scale=5, elem_id="question",
                                          autofocus=True)
                    ask_btn = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
            with gr.Column(scale=2):
                gr.Markdown("#### Sources")
                sources = gr.HTML(EMPTY_SOURCES, elem_id="sources")
        with gr.Accordion("Documents", open=False, elem_id="documents"):
            collection = gr.Dropdown(collections(), value=base.collection, label="Collection",
                                     allow_custom_value=True, elem_id="collection")
            upload = gr.File(label=f"Add documents (.txt .md .pdf .html .docx, up to "
                                   f"{base.max_file_mb:g} MB each)",
                             file_count="multiple", file_types=sorted(loading.SUPPORTED),
                             elem_id="upload")
            upload_status = gr.Markdown(elem_id="upload-status")
            reindex_btn = gr.Button("Re-index this collection", size="sm", elem_id="reindex")
        with gr.Accordion("Settings", open=False, elem_id="settings"):
            top_k = gr.Slider(1, 10, value=base.top_k, step=1, label="Sources per answer (top-k)")
            backend = gr.Radio(["local", "openai"], value=base.llm, label="Language model",
                               info="local: llama.cpp on this machine; openai: the configured "
                                    "OpenAI-compatible endpoint")
            temperature = gr.Slider(0, 1.5, value=base.temperature, step=0.1, label="Temperature")

        inputs = [question, chat, queries, collection, top_k, backend, temperature, conversation]
        outputs = [chat, queries, question, sources, conversation, kept]
        question.submit(respond, inputs, outputs, api_visibility="private")
        ask_btn.click(respond, inputs, outputs, api_visibility="private")
        fresh = lambda: ([], [], EMPTY_SOURCES, None, gr.update(value=None), "")  # noqa: E731
        new_btn.click(fresh, None, [chat, queries, sources, conversation, kept, title],
                      api_visibility="private")
        chat.clear(fresh, None, [chat, queries, sources, conversation, kept, title],
                   api_visibility="private")
        kept.input(reopen, [kept], [chat, queries, sources, conversation, collection, title, kept],
                   api_visibility="private")
        rename_btn.click(rename, [conversation, title], [kept], api_visibility="private")
        delete_btn.click(delete, [conversation], [chat, queries, sources, conversation, title, kept],
                         api_visibility="private")
        demo.load(on_load, None, [kept], api_visibility="private")
        upload.upload(on_upload, [upload, collection], [upload_status, figures, upload],
                      api_visibility="private")
        reindex_btn.click(on_reindex, [collection], [upload_status, figures],
                          api_visibility="private")
        collection.change(on_collection, [collection, conversation],
                          [figures, chat, queries, sources, conversation, kept],
                          api_visibility="private")
        gr.api(api_ask, api_name="ask")
    return demo


def logins(setting: str) -> list[tuple[str, str]]:
    """RAGCHAT_AUTH: 'user:password', or several pairs separated by commas (each
    user then has their own conversations)."""
    pairs = [pair.strip().partition(":") for pair in setting.split(",")]
    if not all(user and password for user, _, password in pairs):
        raise RagchatError("bad setting auth: use 'user:password' (several users: "
                           "'ada:secret1,bob:secret2')")
    users = [user for user, _, _ in pairs]
    if len(set(users)) != len(users):
        raise RagchatError("bad setting auth: a user is named twice")
    return [(user, password) for user, _, password in pairs]


def is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


def serve(settings: Settings, warm: bool = True) -> None:
    import click
    import gradio as gr

    engine = Engine(settings)
    if warm:
        # The parser first, before anything can run beside it: while spaCy loads, an
        # import of torch is made to fail (see verify.load_spacy), and an upload being
        # indexed in another thread imports torch.
        try:
            engine.verifier_warm_up()
        except RagchatError:
            pass  # reported, as a one-line error, when a draft first needs it
        threading.Thread(target=_warm, args=(engine,), daemon=True).start()
    demo = build_app(engine)
    auth = logins(settings.auth) if settings.auth else None
    if not is_loopback(settings.host):
        click.echo(f"Warning: listening on {settings.host}: other machines can reach this chat"
                   + ("" if auth else " and no login is set (RAGCHAT_AUTH)"), err=True)
    from starlette.middleware import Middleware
    from starlette.routing import Mount

    from app.guard import Guard
    from app.openai_api import build_api

    api_key = bool(settings.api_key.get_secret_value())
    if not is_loopback(settings.host) and not api_key and not auth:
        click.echo("Warning: the OpenAI-compatible API (/v1) is open too: set RAGCHAT_API_KEY",
                   err=True)

    # 16 questions at once reach the engine: past RAGCHAT_LLM_SLOTS drafts, an
    # answer waits at most RAGCHAT_LLM_WAIT for the model and is then quoted,
    # so a queue here would only add Gradio's wait to the engine's.
    demo.queue(default_concurrency_limit=16, max_size=64).launch(
        server_name=settings.host, server_port=settings.port, share=False, auth=auth,
        # The OpenAI-compatible API shares the port: mounted before Gradio's own routes.
        app_kwargs={"middleware": [Middleware(Guard, login=auth is not None, api_key=api_key)],
                    "routes": [Mount("/v1", app=build_api(engine))]},
        show_error=True, max_file_size=f"{settings.max_file_mb:g}mb",
        footer_links=["api"], css=CSS, quiet=False,
        # System fonts: the default theme fetches web fonts, which an offline browser cannot.
        theme=gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                                font_mono=["ui-monospace", "monospace"]),
    )


def _warm(engine: Engine) -> None:
    try:
        engine.warm_up()
    except RagchatError:
        pass  # an empty index or a missing model is reported when someone asks
