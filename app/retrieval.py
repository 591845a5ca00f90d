"""Hybrid retrieval: dense (Chroma, through LlamaIndex's ChromaVectorStore) and
keyword (LlamaIndex's BM25Retriever) results fused by reciprocal rank fusion.

RRF (Cormack et al., 2009) scores a chunk sum(1 / (60 + rank)) over the lists
it appears in; it needs no score calibration between the two retrievers. The
fusion is written out here rather than taken from LlamaIndex's
QueryFusionRetriever because that class replaces each chunk's dense cosine
similarity with the fused score, and the refusal decision needs the cosine.

The question is embedded once, with the ONNX embedder. Left out: reranking
with a cross-encoder (none ships offline here) and metadata filters.
"""

from __future__ import annotations

import math
from typing import Any

from app.embedding import OnnxEmbedder
from app.store import Store, chunk_from
from app.types import Hit

RRF_K = 60
CANDIDATES_PER_K = 3  # each retriever proposes this many candidates per requested hit


class HybridRetriever:
    def __init__(self, store: Store, collection: Any, embedder: OnnxEmbedder):
        from llama_index.vector_stores.chroma import ChromaVectorStore

        self.collection = collection
        self.embedder = embedder
        self.vector_store = ChromaVectorStore(chroma_collection=collection)
        self.bm25 = store.load_bm25(collection)
        self.size = collection.count()

    def retrieve(self, query: str, top_k: int) -> list[Hit]:
        from llama_index.core.schema import QueryBundle
        from llama_index.core.vector_stores import VectorStoreQuery

        if self.size == 0:
            return []
        qvec = self.embedder.embed([query])[0]
        n = min(self.size, top_k * CANDIDATES_PER_K)
        dense = self.vector_store.query(
            VectorStoreQuery(query_embedding=qvec.tolist(), similarity_top_k=n)
        )
        fused: dict[str, float] = {}
        cosine: dict[str, float] = {}
        nodes: dict[str, Any] = {}
        for rank, (node, sim) in enumerate(zip(dense.nodes or [], dense.similarities or [])):
            fused[node.node_id] = fused.get(node.node_id, 0.0) + 1.0 / (RRF_K + rank + 1)
            # ChromaVectorStore reports exp(-distance); cosine distance is 1 - cos.
            cosine[node.node_id] = 1.0 + math.log(max(sim, 1e-12))
            nodes[node.node_id] = node
        if self.bm25 is not None:
            self.bm25.similarity_top_k = n
            ranked = [h for h in self.bm25.retrieve(QueryBundle(query)) if (h.score or 0) > 0]
            for rank, hit in enumerate(ranked):
                nid = hit.node.node_id
                fused[nid] = fused.get(nid, 0.0) + 1.0 / (RRF_K + rank + 1)
                nodes.setdefault(nid, hit.node)
        best = sorted(fused, key=fused.get, reverse=True)[:top_k]
        missing = [nid for nid in best if nid not in cosine]
        if missing:  # keyword-only hits: compute their cosine from stored vectors
            got = self.collection.get(ids=missing, include=["embeddings"])
            for nid, vec in zip(got["ids"], got["embeddings"]):
                cosine[nid] = float(sum(a * b for a, b in zip(vec, qvec)))
        return [
            Hit(
                chunk=chunk_from(nid, nodes[nid].get_content(), nodes[nid].metadata),
                score=fused[nid], similarity=cosine.get(nid, 0.0),
            )
            for nid in best
        ]
