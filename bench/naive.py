"""The naive path a LlamaIndex user would write first, over ragchat's own store,
timed from a new process by bench/cold_start.py.

It imports llama_index, chromadb, sentence-transformers and llama_cpp, loads the
embedder and the GGUF, and asks one question through LlamaIndex's default query
engine (`app.evaluation.baseline.build_query_engine`, the same one
`ragchat eval --baseline naive` uses: top-k 2, default prompts), capped at 100
new tokens.

    python bench/naive.py INDEX_DIR COLLECTION "QUESTION"
"""

from __future__ import annotations

import sys
import time


def main() -> None:
    index_dir, collection, question = sys.argv[1:4]
    t = time.perf_counter()
    import chromadb
    import llama_cpp  # noqa: F401  (the naive path imports all four libraries)
    import sentence_transformers  # noqa: F401
    from chromadb.config import Settings as ChromaSettings

    from app.evaluation.baseline import build_query_engine
    from app.settings import Settings

    client = chromadb.PersistentClient(path=f"{index_dir}/chroma",
                                       settings=ChromaSettings(anonymized_telemetry=False))
    engine = build_query_engine(Settings(index_dir=index_dir), client.get_collection(collection),
                                max_new_tokens=100)
    response = engine.query(question)
    print(str(response).strip())
    print(f"[naive] {time.perf_counter() - t:.2f} s after interpreter start", file=sys.stderr)


if __name__ == "__main__":
    main()
