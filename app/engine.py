"""The engine: the one object the CLI, the web UI and the evaluation runner use.

Built from one Settings object; every part (Chroma client, retriever, query
embedder, language model) is created on first use and kept, so a one-shot
question loads only what it needs and a long-running server loads each once.
Methods return the project's own types (`app.types`). Generation is serialised
by a lock because one llama.cpp context cannot serve two threads at once.
Left out: per-user authorisation and cancellation of a running generation.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from app import answering, embedding, offline
from app.errors import RagchatError
from app.ingest import Progress, ingest
from app.llm import LanguageModel, load_llm
from app.settings import Settings
from app.store import Store
from app.types import Answer, CollectionStats, Hit, IngestReport

_FOLLOW_UP_START = re.compile(
    r"^\s*(and|but|also|so|then|what about|how about|what else|why|how come)\b", re.I)
_ANAPHORA = frozenset(
    "it its it's they them their theirs that this those these he she him her his "
    "there later then same former latter else".split())


def condense(question: str, history: Sequence[str]) -> str:
    """The question to retrieve with, given earlier questions (as retrieved).

    A follow-up (it opens with "and"/"what about", leans on a pronoun, or
    names nothing specific) is joined to the previous question so retrieval
    sees what it refers to; a question that stands alone is kept as it is.
    Rule-based on purpose: the default 135M model rewrites questions badly.
    """
    if not history:
        return question
    words = set(re.findall(r"[a-z']+", question.lower()))
    follows = (_FOLLOW_UP_START.match(question) or words & _ANAPHORA
               or not answering.specific_terms(question))
    if not follows:
        return question
    previous = history[-1][-300:]
    return f"{previous} {question}"


class Engine:
    def __init__(self, settings: Settings):
        offline.enforce()
        self.settings = settings
        self._store: Store | None = None
        self._retriever = None
        self._embedder: embedding.OnnxEmbedder | None = None
        self._llm: LanguageModel | None = None
        self._llm_lock = threading.Lock()
        self._llm_init_lock = threading.Lock()
        self._init_lock = threading.RLock()

    # -- parts, built on first use -----------------------------------------
    @property
    def store(self) -> Store:
        with self._init_lock:
            if self._store is None:
                self._store = Store(self.settings)
            return self._store

    @property
    def embedder(self) -> embedding.OnnxEmbedder:
        with self._init_lock:
            if self._embedder is None:
                self._embedder = embedding.load_query_embedder(self.settings)
            return self._embedder

    @property
    def retriever(self):
        with self._init_lock:
            if self._retriever is None:
                from app.retrieval import HybridRetriever

                col = self.store.open(embedding.embedder_name(self.settings))
                self._retriever = HybridRetriever(self.store, col, self.embedder)
            return self._retriever

    @property
    def llm(self) -> LanguageModel:
        with self._llm_init_lock:  # its own lock: loading it must not stall retrieval
            if self._llm is None:
                self._llm = load_llm(self.settings)
            return self._llm

    def _preload_llm(self) -> threading.Thread | None:
        """Start loading the language model beside retrieval. llama.cpp reads
        the weights in C with the GIL released, so this overlaps with Python
        work; errors surface when `llm` is used."""
        if self._llm is not None:
            return None

        def load() -> None:
            try:
                self.llm
            except Exception:  # noqa: BLE001 - raised again, cleanly, on first use
                pass

        thread = threading.Thread(target=load, name="ragchat-llm-load", daemon=True)
        thread.start()
        return thread

    # -- what people do ----------------------------------------------------
    def ingest(self, paths: Sequence[Path] | None = None,
               progress: Progress | None = None) -> IngestReport:
        paths = list(paths) if paths else [self.settings.seeds_dir]
        report = ingest(self.settings, paths, progress=progress, store=self.store)
        with self._init_lock:
            self._retriever = None  # pick up the new chunks and BM25 index
        return report

    def retrieve(self, query: str, top_k: int | None = None) -> list[Hit]:
        return self.retriever.retrieve(query, top_k or self.settings.top_k)

    def ask(self, question: str, history: Sequence[str] = (),
            on_token: Callable[[str], None] | None = None,
            top_k: int | None = None) -> Answer:
        """Answer one question; `history` holds earlier questions as retrieved
        (`Answer.query`), oldest first."""
        question = " ".join(question.split())
        if not question:
            raise RagchatError("the question is empty")
        t0 = time.perf_counter()
        self._preload_llm()
        query = condense(question, history)
        hits = self.retrieve(query, top_k)
        t1 = time.perf_counter()
        s = self.settings
        with self._llm_lock:
            a = answering.answer(question, query, hits, self.llm, self.embedder,
                                 s.min_relevance, s.max_tokens, s.temperature, on_token,
                                 s.prompt_sentences)
        a.timings["retrieve"] = t1 - t0
        a.timings["total"] = time.perf_counter() - t0
        return a

    def stats(self) -> list[CollectionStats]:
        out = []
        for col in self.store.list_collections():
            col = self.store.client.get_collection(col.name if hasattr(col, "name") else col,
                                                   embedding_function=None)
            manifest = self.store.manifest(col)
            meta = col.metadata or {}
            out.append(CollectionStats(
                name=col.name, files=len(manifest), chunks=col.count(),
                embedder=str(meta.get("embedder", "?")), dimension=int(meta.get("dimension", 0)),
                sources=sorted(manifest),
            ))
        return out
