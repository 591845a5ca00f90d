"""The naive baseline: LlamaIndex's default query engine over ragchat's own store.

A plain VectorStoreIndex over the same Chroma collection, top-k 2, default
prompts, the same embedder through sentence-transformers (HuggingFaceEmbedding)
and the same GGUF through LlamaIndex's LlamaCPP wrapper with its default prompt
functions: what a LlamaIndex user writes first. Nothing here is tuned for or
against it. Its answers carry no [n] marks; its retrieved nodes are recorded
as `retrieved` so retrieval and unsupported-claim metrics apply to it alike.
"""

from __future__ import annotations

import time
from typing import Any

from app import embedding
from app.settings import Settings
from app.store import chunk_from
from app.types import Answer, Hit


def build_query_engine(settings: Settings, collection: Any, top_k: int = 2,
                       max_new_tokens: int | None = None) -> Any:
    """LlamaIndex's default query engine; `max_new_tokens` None keeps LlamaCPP's default."""
    from llama_index.core import VectorStoreIndex
    from llama_index.llms.llama_cpp import LlamaCPP
    from llama_index.vector_stores.chroma import ChromaVectorStore

    from app.llm import default_model_path

    store = ChromaVectorStore(chroma_collection=collection)
    embed = embedding.load_document_embedder(settings)
    extra = {"max_new_tokens": max_new_tokens} if max_new_tokens else {}
    llm = LlamaCPP(model_path=str(settings.model_path or default_model_path()),
                   temperature=settings.temperature, context_window=settings.n_ctx,
                   verbose=False, **extra)
    index = VectorStoreIndex.from_vector_store(store, embed_model=embed)
    return index.as_query_engine(llm=llm, similarity_top_k=top_k)


class NaiveBaseline:
    name = "naive"

    def __init__(self, settings: Settings, collection: Any):
        self.engine = build_query_engine(settings, collection)

    def ask(self, question: str) -> Answer:
        t = time.perf_counter()
        response = self.engine.query(question)
        hits = [Hit(chunk=chunk_from(n.node.node_id, n.node.get_content(), n.node.metadata),
                    score=float(n.score or 0.0), similarity=float(n.score or 0.0))
                for n in response.source_nodes]
        elapsed = time.perf_counter() - t
        return Answer(text=str(response).strip(), citations=[], mode="generated", grounded=False,
                      question=question, query=question, retrieved=hits,
                      timings={"total": elapsed})
