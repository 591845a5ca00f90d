"""Query embeddings (onnxruntime) against sentence-transformers, and hybrid retrieval."""

from __future__ import annotations

import numpy as np
from conftest import SEED

from app import embedding


def test_onnx_query_embeddings_match_sentence_transformers(engine):
    from sentence_transformers import SentenceTransformer

    texts = [
        "How much is Amazon investing in OpenAI?",
        "Trainium",
        "Ünïcödé façade — naïve café, 東京, emoji 🚀",
        SEED.read_text(),  # longer than the 256 word pieces both truncate to
        "x " * 600,
    ]
    st = SentenceTransformer(str(embedding.model_dir(engine.settings)), device="cpu")
    reference = st.encode(texts, normalize_embeddings=True)
    ours = engine.embedder.embed(texts)
    assert ours.shape == reference.shape == (len(texts), 384)
    cosines = (ours * reference).sum(axis=1)
    assert np.all(cosines > 0.999), cosines


def test_recent_vectors_are_reused_and_ingest_does_not_fill_the_memory(engine):
    e = embedding.OnnxEmbedder(embedding.onnx_path(engine.settings),
                               embedding.model_dir(engine.settings) / "tokenizer.json")
    texts = ["How much is Amazon investing in OpenAI?", "Trainium", "Trainium"]
    first = e.embed(texts)
    assert len(e._recent) == 2
    e.session = None  # a text it has to embed again would fail now
    again = e.embed(list(reversed(texts)))
    assert np.array_equal(again, first[::-1])
    cold = embedding.OnnxEmbedder(embedding.onnx_path(engine.settings),
                                  embedding.model_dir(engine.settings) / "tokenizer.json")
    assert np.allclose(cold.embed(["Trainium", "other text"], remember=False)[0], first[1])
    assert not cold._recent


def test_money_question_retrieves_the_fifty_billion_passage_first(engine):
    hits = engine.retrieve("How much is Amazon investing in OpenAI?")
    assert "$50 billion" in hits[0].chunk.text
    assert hits[0].similarity > 0.5
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_keyword_index_is_loaded_not_rebuilt_per_query(engine):
    stamp = engine.store.bm25_dir() / "current.json"
    before = stamp.stat().st_mtime_ns
    for q in ("Trainium chips", "Maryland workforce", "Stateful Runtime Environment"):
        engine.retrieve(q)
    assert stamp.stat().st_mtime_ns == before


def test_keyword_retrieval_finds_a_rare_exact_term(engine):
    hits = engine.retrieve("Subcabinet", top_k=1)
    assert "AI Subcabinet" in hits[0].chunk.text


def test_ingest_with_onnx_stores_the_vectors_sentence_transformers_would(tmp_path):
    from app.engine import Engine
    from app.settings import Settings

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "seed.txt").write_text(SEED.read_text())
    (docs / "short.md").write_text("# Falcon\n\nThe council approved 73 million euros.\n")
    stored = {}
    for runtime in ("onnx", "sentence-transformers"):
        engine = Engine(Settings(index_dir=tmp_path / "index", collection=f"by-{runtime}",
                                 ingest_embedder=runtime))
        assert engine.ingest([docs]).ok
        got = engine.store.open(embedding.embedder_name(engine.settings)).get(
            include=["embeddings"])
        stored[runtime] = dict(zip(got["ids"], got["embeddings"]))
    assert stored["onnx"].keys() == stored["sentence-transformers"].keys()
    assert len(stored["onnx"]) >= 4
    for cid, vec in stored["onnx"].items():
        assert float(np.dot(vec, stored["sentence-transformers"][cid])) > 0.999, cid
