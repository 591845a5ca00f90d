"""The keyword index: its weights against bm25s's own indexer, and an ingest that
keeps the rows of unchanged chunks ending where a rebuild from scratch ends
(real embedded Chroma and the real embedder)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

from app import keyword_index
from app.engine import Engine
from app.settings import Settings
from app.store import get_all

EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"
WORDS = ("harbour lantern orchards granite meadows copper violins glacier falcon running "
         "tapestry compass saffron beacons quarry thistle marble canyon ember willow the of "
         "and a is 42 2031 x").split()


def _texts(rng: random.Random, n: int) -> list[str]:
    out = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 40))) for _ in range(n)]
    return out + ["", "the of and a is"]  # no token at all; only stopwords


def _reference(texts: list[str]) -> bm25s.BM25:
    """The index LlamaIndex's BM25Retriever builds (bm25s's own indexer)."""
    from llama_index.core.schema import TextNode
    from llama_index.retrievers.bm25 import BM25Retriever

    return BM25Retriever.from_defaults(
        nodes=[TextNode(text=t, id_=f"n{i}") for i, t in enumerate(texts)],
        stemmer=Stemmer.Stemmer("english"), language="english").bm25


def _scores(model: bm25s.BM25, query: str) -> np.ndarray:
    tokens = bm25s.tokenize(query, stopwords="english", stemmer=Stemmer.Stemmer("english"),
                            return_ids=False, show_progress=False)[0]
    return model.get_scores(tokens)


def _rows(texts: list[str], start: int = 0) -> keyword_index.Rows:
    records = [(f"c{start + i}", t, {"source": f"s{(start + i) % 3}", "file_hash": "h"})
               for i, t in enumerate(texts)]
    return keyword_index.rows_for(records, texts)


QUERIES = ["granite meadow", "running falcons in the canyon", "42 violins", "ember", "2031 x"]


def test_weights_from_term_counts_equal_bm25s_own_index():
    texts = _texts(random.Random(5), 300)
    ours, theirs = keyword_index.bm25(_rows(texts)), _reference(texts)
    for q in QUERIES:
        assert np.allclose(_scores(ours, q), _scores(theirs, q), rtol=1e-5, atol=1e-6), q


def test_rows_kept_and_rows_added_give_the_index_of_the_whole_new_collection():
    rng = random.Random(11)
    old_texts, new_texts = _texts(rng, 200), _texts(rng, 50)
    keep = np.asarray([i % 4 != 0 for i in range(len(old_texts))])  # a quarter deleted
    merged = keyword_index.merge(_rows(old_texts), keep, _rows(new_texts, start=1000))
    whole = [t for t, k in zip(old_texts, keep) if k] + new_texts
    assert merged.ids == [f"c{i}" for i in np.flatnonzero(keep)] + [
        f"c{1000 + i}" for i in range(len(new_texts))]
    assert merged.counts.shape == (len(whole), len(merged.vocab))
    assert all(np.diff(merged.counts.tocsc().indptr) > 0)  # no term left that no row holds
    for q in QUERIES:
        assert np.allclose(_scores(keyword_index.bm25(merged), q), _scores(_reference(whole), q),
                           rtol=1e-5, atol=1e-6), q


def _index_state(engine: Engine) -> tuple[dict, dict, dict]:
    store = engine.store
    col = store.open(EMBEDDER)
    folder = store.bm25_dir() / json.loads((store.bm25_dir() / "current.json").read_text())["dir"]
    corpus = {}
    for line in (folder / keyword_index.CORPUS).read_text().splitlines():
        entry = json.loads(line)
        corpus[entry["node_id"]] = json.loads(entry["_node_content"])["text"]
    model = bm25s.BM25.load(str(folder))
    rows = keyword_index.load_rows(folder)
    scores = {q: dict(zip(rows.ids, _scores(model, q).round(5))) for q in QUERIES + ["alpha beta"]}
    manifest = {s: (sorted(e.file_hashes), sorted(e.ids)) for s, e in store.manifest(col).items()}
    return corpus, scores, manifest


def test_an_ingest_that_keeps_unchanged_rows_ends_where_a_rebuild_from_scratch_ends(monkeypatch):
    docs = Path("docs")
    docs.mkdir()
    rng = random.Random(3)
    for i in range(6):
        (docs / f"f{i}.md").write_text(f"# Part {i}\n\n" + ". ".join(_texts(rng, 12)[:12]) + ".\n")
    engine = Engine(Settings(index_dir=Path("index")))
    engine.ingest([docs])
    (docs / "f1.md").write_text("# Alpha\n\nThe alpha beta granite part is new.\n")  # changed
    (docs / "f2.md").unlink()  # removed
    (docs / "f9.md").write_text("# Beta\n\nA beta falcon over the quarry.\n")  # added
    tokenised = []
    tokenize = keyword_index.tokenize
    monkeypatch.setattr(keyword_index, "tokenize", lambda texts: tokenised.append(texts) or tokenize(texts))
    report = engine.ingest([docs])
    assert [len(t) for t in tokenised] == [2]  # only the changed file's and the new file's chunks
    assert (report.updated, report.removed, report.added) == (["docs/f1.md"], ["docs/f2.md"],
                                                              ["docs/f9.md"])
    kept = _index_state(engine)
    col = engine.store.open(EMBEDDER)
    assert "alpha beta granite" in " ".join(kept[0].values())
    with engine.store.writing():
        engine.store.sync_bm25(col, force=True)  # every chunk read back and tokenised again
    rebuilt = _index_state(engine)
    assert kept[0] == rebuilt[0] and kept[1] == rebuilt[1]
    meta = get_all(col, ["metadatas"])
    chroma = {}
    for cid, m in zip(meta["ids"], meta["metadatas"]):
        hashes, ids = chroma.setdefault(m["source"], (set(), []))
        hashes.add(m["file_hash"])
        ids.append(cid)
    assert kept[2] == rebuilt[2] == {s: (sorted(h), sorted(i)) for s, (h, i) in chroma.items()}
    assert "docs/f2.md" not in kept[2] and "docs/f9.md" in kept[2]
