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


def test_a_chunk_is_found_by_the_headings_it_stands_under(tmp_path):
    """A chunk from the middle of a section ("Feed it every evening.") does not
    name what the section is about; it is embedded and keyword-indexed under
    its document's and its section's titles, so a question about the section
    finds it, while the stored and quoted text stays the file's own."""
    from app.engine import Engine
    from app.settings import Settings

    intro = ("{0} need some care in their first weeks. Keep them away from draughts and "
             "direct sun, and check on them in the morning and at night. Most problems "
             "show early and are easy to put right when they are noticed.")
    pets = {"Goldfish": "Feed it a pinch of food every evening.",
            "Sourdough starters": "Feed it twice a day with equal weights of flour and water.",
            "Tomato seedlings": "Feed it once a week with a weak liquid feed."}
    notes = ("Write down what you did each day in a notebook: a record makes it much easier "
             "to see what works and what does not over a whole season, and to do it again.")
    body = "".join(f"## {name}\n\n{intro.format(name)}\n\n{detail} {notes}\n\n"
                   for name, detail in pets.items())
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "care.md").write_text("# Care guide\n\n" + body)
    engine = Engine(Settings(index_dir=tmp_path / "index", chunk_size=48, chunk_overlap=0))
    assert engine.ingest([docs]).ok
    text = (docs / "care.md").read_text()
    for name, detail in pets.items():
        hits = engine.retrieve(f"How often should I feed my {name.lower()}?", top_k=6)
        feeding = [h.chunk for h in hits if "Feed it" in h.chunk.text]
        # the chunk holds the instruction alone: only its section names the subject
        assert feeding and all(name.split()[0] not in c.text for c in feeding)
        assert detail in feeding[0].text and feeding[0].section == name
        assert text[feeding[0].start:feeding[0].end] == feeding[0].text  # stored without headings
        # the keyword index reads the headings too: a word only the heading holds finds it
        assert any(detail in h.chunk.text
                   for h in engine.retriever.containing([name.split()[0]], name, k=6))


def test_headings_give_way_when_they_would_push_the_chunk_out_of_the_window():
    from llama_index.core.schema import TextNode

    from app.store import embed_text, with_header

    def node(title="Care guide", section="Goldfish"):
        return TextNode(text="Feed it every evening.",
                        metadata={"source": "care.md", "title": title, "section": section, "start": 0})

    assert embed_text(with_header(node())) == "Care guide\nGoldfish\n\nFeed it every evening."
    assert embed_text(with_header(node(section="Care guide"))) == "Care guide\n\nFeed it every evening."
    # the section's title is what the chunk is about: it is kept when both do not fit
    short = with_header(node(title="T" * 80), fits=lambda t: len(t) <= 60)
    assert embed_text(short) == "Goldfish\n\nFeed it every evening."
    bare = with_header(node(title="T" * 80, section="S" * 80), fits=lambda t: len(t) <= 60)
    assert embed_text(bare) == "Feed it every evening."


def test_a_passage_that_answers_in_one_sentence_is_reranked_first(tmp_path):
    """One chunk's vector blurs a sentence among others on its neighbours'
    subjects; reranking the fused candidates by their best sentence finds it."""
    from app.engine import Engine
    from app.settings import Settings

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "harbour.md").write_text(
        "# The harbour\n\nThe harbour has moorings for forty yachts and a slipway for small "
        "craft. The harbour master's office opens at nine and sells mooring permits. Fishing "
        "boats land their catch on the north quay every afternoon. The lighthouse on the "
        "breakwater was restored in 1998 and can be visited in summer. The first boat to "
        "Skalholm island sails at 7:40 on weekdays. A café on the quay serves soup and coffee, "
        "and the car park behind it is free after six.\n")
    (docs / "buses.md").write_text(
        "# Bus timetable\n\nThe first bus of the day leaves the station at 6:15 and the last "
        "one departs at 23:05. Buses run every twenty minutes at peak times and every hour "
        "on Sundays. Departure times are shown on the screens at every stop.\n")
    (docs / "island.md").write_text(
        "# Skalholm\n\nSkalholm is a small island of heath and cliffs with a colony of "
        "puffins. About sixty people live on the island all year round, and its school has "
        "eleven pupils. Walkers can follow a marked trail around the island in three hours.\n")
    engine = Engine(Settings(index_dir=tmp_path / "index"))
    assert engine.ingest([docs]).ok
    question = "What time does the morning ferry out to the island depart?"
    reranked = engine.retrieve(question, top_k=2)
    assert "7:40" in reranked[0].chunk.text
    # the fused order alone puts another passage first: the rerank is what finds it
    assert "7:40" not in engine.variant(rerank="none").retrieve(question, top_k=2)[0].chunk.text
    assert [h.score for h in reranked] == sorted((h.score for h in reranked), reverse=True)
