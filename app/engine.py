"""The engine: the one object the CLI, the web UI and the evaluation runner use.

Built from one Settings object; every part (Chroma client, retriever, query
embedder, language model) is created on first use and kept, so a one-shot
question loads only what it needs and a long-running server loads each once.
`variant()` gives the same engine with other settings (a collection, a
backend) sharing what is already loaded. Methods return the project's own
types (`app.types`).
Left out: per-user authorisation and cancellation of a running generation.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from app import answering, embedding, loading, offline, question as questions, text, verify
from app.errors import RagchatError
from app.ingest import Progress, ingest
from app.llm import LanguageModel, load_llm
from app.settings import Settings, load_settings, policy_name
from app.store import Store, reopened_chroma_client
from app.types import Answer, CollectionStats, Hit, IngestReport

MAX_QUESTION_CHARS = 2000  # with the sources, a longer one overflows the local model's context


def condense(question: str, history: Sequence[str]) -> str:
    """The question to retrieve with, given earlier questions (as retrieved).

    A follow-up (it opens with "and"/"what about" or leans on a pronoun such
    as "it" or "later") is joined to the previous question so retrieval sees
    what it refers to; a question that stands alone is kept as it is.
    Rule-based on purpose: the default 135M model rewrites questions badly.
    """
    if not history:
        return question
    words = set(re.findall(r"[a-z']+", question.lower()))
    follows = text.FOLLOW_UP_START.match(question) or words & text.ANAPHORA
    if not follows:
        return question
    previous = history[-1][-300:]
    return f"{previous} {question}"


def retrieval_history(questions: Sequence[str]) -> list[str]:
    """Earlier questions of a conversation, oldest first, as each was retrieved:
    what the web chat keeps in its state, rebuilt from the questions alone (the
    OpenAI-compatible API receives only the messages)."""
    history: list[str] = []
    for q in questions:
        history.append(condense(" ".join(text.without_controls(q).split()), history))
    return history


class _Parts:
    """The heavy parts, shared by an engine and its variants (another
    collection, backend or temperature): one Chroma client per store, one
    query embedder, one retriever per collection, one model per backend."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.llm_lock = threading.Lock()  # its own: loading a model must not stall retrieval
        self.clients: dict[tuple, object] = {}
        self.embedders: dict[tuple, embedding.OnnxEmbedder] = {}
        self.retrievers: dict[tuple, object] = {}
        self.llms: dict[tuple, LanguageModel] = {}
        self.verifiers: dict[str, verify.Verifier] = {}
        # (store key, collection) -> the BM25 version its client and retriever reflect
        self.seen: dict[tuple, str] = {}
        self.opened: dict[tuple, float] = {}  # store key -> when its client was made


class Engine:
    def __init__(self, settings: Settings, _parts: _Parts | None = None):
        offline.enforce()
        self.settings = settings
        self._parts = _parts or _Parts()

    def variant(self, **overrides) -> Engine:
        """The same engine with some settings changed, sharing loaded parts."""
        if not overrides:
            return self
        current = self.settings.model_dump()
        current["openai_api_key"] = self.settings.openai_api_key.get_secret_value()
        current["api_key"] = self.settings.api_key.get_secret_value()
        return Engine(load_settings(**{**current, **overrides}), self._parts)

    # -- parts, built on first use -----------------------------------------
    def _store_key(self) -> tuple:
        s = self.settings
        return (s.chroma_url,) if s.chroma_url else (str(s.index_dir.resolve()),)

    @property
    def store(self) -> Store:
        parts = self._parts
        with parts.lock:
            key = self._store_key()
            if key not in parts.clients:
                parts.opened[key] = time.time()  # before: a write during the open counts as after
                parts.clients[key] = Store(self.settings).client
            return Store(self.settings, parts.clients[key])

    @property
    def embedder(self) -> embedding.OnnxEmbedder:
        s = self.settings
        key = (str(s.index_dir.resolve()), str(s.embed_model_dir), s.n_threads)
        with self._parts.lock:
            if key not in self._parts.embedders:
                self._parts.embedders[key] = embedding.load_embedder(s)
            return self._parts.embedders[key]

    def _retriever_key(self) -> tuple:
        return self._store_key() + (self.settings.collection,)

    def _catch_up(self) -> None:
        """When another process ingested into this collection since this one
        loaded it (`ragchat ingest` beside `ragchat serve`; its BM25 version
        says so), reopen the embedded Chroma client, whose in-memory vector
        index never sees their writes, and drop the retrievers built on it.
        Our own ingests record the version they wrote. Holds the parts lock."""
        parts = self._parts
        key = self._store_key()
        if key not in parts.clients:
            return  # the client made next reads the index as it is
        store = Store(self.settings, parts.clients[key])
        now = store.bm25_version()
        seen = parts.seen.get(self._retriever_key())
        if seen is None:  # the client was opened (to list collections, ...) but not read
            # from for this collection: it is stale when the collection changed since
            seen = now if store.bm25_changed_at() < parts.opened.get(key, 0.0) else ""
        if seen == now:
            parts.seen[self._retriever_key()] = now
            return
        if not self.settings.chroma_url:  # a Chroma server always answers from its own state
            parts.clients[key] = reopened_chroma_client(self.settings)
        for table in (parts.retrievers, parts.seen):
            for k in [k for k in table if k[:len(key)] == key]:
                del table[k]
        parts.seen[self._retriever_key()] = now

    def _store_to_write(self) -> Store:
        with self._parts.lock:
            self._catch_up()
            return self.store

    @property
    def retriever(self):
        parts = self._parts
        with parts.lock:
            self._catch_up()
            key = self._retriever_key()
            if key not in parts.retrievers:
                from app.retrieval import HybridRetriever

                store = self.store
                parts.seen.setdefault(key, store.bm25_version())  # read before anything loads
                col = store.open(embedding.embedder_name(self.settings))
                parts.retrievers[key] = HybridRetriever(store, col, self.embedder)
            return parts.retrievers[key]

    def _llm_key(self) -> tuple:
        s = self.settings
        if s.llm == "local":
            return ("local", str(s.model_path), s.n_ctx, s.n_threads, s.llm_slots, s.llm_wait)
        return ("openai", s.openai_base_url, s.openai_model,
                s.openai_api_key.get_secret_value(), s.openai_timeout)

    @property
    def llm(self) -> LanguageModel:
        with self._parts.llm_lock:
            key = self._llm_key()
            if key not in self._parts.llms:
                self._parts.llms[key] = load_llm(self.settings)
            return self._parts.llms[key]

    @property
    def verifier(self) -> verify.Verifier:
        with self._parts.lock:
            name = self.settings.verifier
            if name not in self._parts.verifiers:
                self._parts.verifiers[name] = verify.load_verifier(name)
            return self._parts.verifiers[name]

    def _preload_llm(self) -> None:
        """Start loading the language model beside retrieval. llama.cpp reads
        the weights in C with the GIL released, so this overlaps with Python
        work; errors surface when `llm` is used."""
        if self._llm_key() in self._parts.llms:
            return

        def load() -> None:
            try:
                _ = self.llm
            except Exception:  # noqa: BLE001 - raised again, cleanly, on first use
                pass

        threading.Thread(target=load, name="ragchat-llm-load", daemon=True).start()

    def warm_up(self) -> None:
        """Load the retriever, the embedder and the model now (servers do this
        at start so the first person does not wait)."""
        self._preload_llm()
        _ = self.retriever, self.llm
        self.verifier_warm_up()

    def verifier_warm_up(self) -> None:
        """Load the role verifier's parser now (a server does, before serving)."""
        if isinstance(self.verifier, verify.RoleVerifier):
            self.verifier.warm_up()

    # -- what people do ----------------------------------------------------
    def ingest(self, paths: Sequence[Path] | None = None,
               progress: Progress | None = None,
               waiting: Callable[[str], None] | None = None) -> IngestReport:
        paths = list(paths) if paths else [self.settings.seeds_dir]
        try:
            report = ingest(self.settings, paths, progress=progress, store=self.store,
                            waiting=waiting, embedder=lambda: self.embedder,
                            fresh=self._store_to_write)
            with self._parts.lock:  # the version this ingest wrote, through our client
                self._parts.seen[self._retriever_key()] = self.store.bm25_version()
            return report
        finally:
            with self._parts.lock:  # pick up the new chunks and BM25 index
                self._parts.retrievers.pop(self._retriever_key(), None)

    def reindex(self, progress: Progress | None = None) -> IngestReport:
        """Ingest again every file the collection holds. A file that can no
        longer be found is reported as failed and its chunks are kept."""
        store = self.store
        col = store.open(embedding.embedder_name(self.settings))
        sources = sorted(store.manifest(col))
        base = self.settings.project_dir()
        files = {s: loading.source_path(s, base) for s in sources}
        present = [f for f in files.values() if f.is_file()]
        report = self.ingest(present, progress=progress) if present else IngestReport(
            total_chunks=col.count())
        for s, f in files.items():
            if not f.is_file():
                report.failed[s] = f"{s}: file not found in {base}; its chunks are kept"
        return report

    def retrieve(self, query: str, top_k: int | None = None) -> list[Hit]:
        return self.retriever.retrieve(query, top_k or self.settings.top_k,
                                       rerank=self.settings.rerank == "sentence")

    def ask(self, question: str, history: Sequence[str] = (),
            on_token: Callable[[str], None] | None = None,
            top_k: int | None = None) -> Answer:
        """Answer one question; `history` holds earlier questions as retrieved
        (`Answer.query`), oldest first."""
        question = " ".join(text.without_controls(question).split())
        if not question:
            raise RagchatError("the question is empty")
        if len(question) > MAX_QUESTION_CHARS:
            raise RagchatError(f"the question is {len(question):,} characters long; ask in at "
                               f"most {MAX_QUESTION_CHARS:,}")
        t0 = time.perf_counter()
        self._preload_llm()
        # spaCy is loaded only when a draft's sentences pass the lexical check
        # (about 1.3 s, once): loading it beside retrieval and the model slowed
        # every cold ask on two cores, those that never need it included.
        query = condense(question, history)
        k = top_k or self.settings.top_k
        hits = self.retrieve(query, k)
        t1 = time.perf_counter()
        s = self.settings
        retriever = self.retriever
        a = answering.answer(questions.analyse(question, query), hits, self.llm, self.embedder,
                             self.verifier, answering.POLICIES[policy_name(s)],
                             s.min_relevance, s.max_tokens, s.temperature, on_token,
                             s.prompt_sentences,
                             find_more=lambda terms: retriever.containing(terms, query, k),
                             unused=retriever.unused, vocabulary=retriever.vocabulary,
                             rarity=retriever.rarity, files_using=retriever.files_using,
                             opening=lambda source: retriever.opening(source, query),
                             within=lambda source, n, asked: retriever.within(source, query, n, asked))
        a.timings["retrieve"] = t1 - t0
        a.timings["total"] = time.perf_counter() - t0
        return a

    def stats(self) -> list[CollectionStats]:
        store = self.store
        out = []
        for listed in store.list_collections():
            col = store.client.get_collection(getattr(listed, "name", listed), embedding_function=None)
            manifest = store.manifest(col)
            meta = col.metadata or {}
            out.append(CollectionStats(
                name=col.name, files=len(manifest), chunks=col.count(),
                embedder=str(meta.get("embedder", "?")), dimension=int(meta.get("dimension", 0)),
                sources=sorted(manifest),
            ))
        return out
