"""The keyword (BM25) index, written at ingest as one version directory per
state of the collection and read with bm25s (see `app.retrieval`).

Scoring and layout are those of LlamaIndex's BM25Retriever, which wraps bm25s:
the same tokens (`bm25s.tokenize` with English stopwords, the Snowball stemmer
and LlamaIndex's token pattern, over each chunk's text under its headings),
bm25s's default Lucene BM25 (k1 1.5, b 0.75), and the same corpus
(`corpus.jsonl`: each chunk as LlamaIndex's node dict, read by line through
bm25s's memory-mapped corpus) beside bm25s's arrays and vocabulary.

What this module adds is that adding files to a large collection does not redo
the whole index. Each version also keeps every chunk's term counts (`rows.npz`:
chunk ids in row order, their source and file hash, a sparse matrix of term
counts and the vocabulary). The next version keeps the rows of the chunks that
are still there and were not written again, tokenises only the chunks that
are new, and computes the BM25 weights from the counts with numpy, using the
formula bm25s uses (tests/test_keyword_index.py checks equal scores against
LlamaIndex's BM25Retriever): bm25s's own indexer walks every document in Python
(6 s of a 28 s rebuild at 100k chunks, with 6.7 s of reading every text back
from Chroma and 6.7 s of tokenising). The rows also give the ingest its list of
files without reading every chunk's metadata back (`sources`).

Left out: other BM25 variants, and merging versions in the background
(a version is written whole, about a second per 100k chunks).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

K1, B = 1.5, 0.75  # bm25s.BM25's defaults, which BM25Retriever keeps
TOKEN_PATTERN = r"(?u)\b\w\w+\b"  # LlamaIndex BM25Retriever's default
ROWS = "rows.npz"
CORPUS = "corpus.jsonl"


@dataclass
class Rows:
    """One row per chunk: its id, source, file hash and term counts."""

    ids: list[str]
    sources: list[str]
    hashes: list[str]
    counts: Any  # scipy.sparse.csr_matrix, rows x vocabulary
    vocab: list[str]


def tokenize(texts: list[str]) -> list[list[str]]:
    import bm25s
    import Stemmer

    return bm25s.tokenize(texts, stopwords="english", stemmer=Stemmer.Stemmer("english"),
                          token_pattern=TOKEN_PATTERN, return_ids=False, show_progress=False)


def rows_for(records: list[tuple[str, str, dict]], texts: list[str]) -> Rows:
    """Rows for chunks given as (id, text, metadata) with the text BM25 reads."""
    from scipy import sparse

    vocab: dict[str, int] = {}
    indptr, indices, data = [0], [], []
    for tokens in tokenize(texts):
        counted: dict[int, int] = {}
        for t in tokens:
            j = vocab.setdefault(t, len(vocab))
            counted[j] = counted.get(j, 0) + 1
        indices.extend(counted)
        data.extend(counted.values())
        indptr.append(len(indices))
    counts = sparse.csr_matrix((np.asarray(data, dtype=np.float32), np.asarray(indices, dtype=np.int32),
                                np.asarray(indptr, dtype=np.int64)), shape=(len(records), len(vocab)))
    return Rows([r[0] for r in records], [str(r[2].get("source", "?")) for r in records],
                [str(r[2].get("file_hash", "")) for r in records], counts, list(vocab))


def load_rows(folder: Path) -> Rows | None:
    """The rows a version kept, or None (a version from before they were kept)."""
    from scipy import sparse

    try:
        with np.load(folder / ROWS, allow_pickle=False) as z:
            counts = sparse.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
            return Rows(z["ids"].tolist(), z["sources"].tolist(), z["hashes"].tolist(), counts,
                        z["vocab"].tolist())
    except (OSError, KeyError, ValueError):
        return None


def _save_rows(folder: Path, rows: Rows) -> None:
    c = rows.counts
    with open(folder / ROWS, "wb") as f:
        np.savez(f, ids=np.asarray(rows.ids, dtype=str), sources=np.asarray(rows.sources, dtype=str),
                 hashes=np.asarray(rows.hashes, dtype=str), vocab=np.asarray(rows.vocab, dtype=str),
                 data=c.data, indices=c.indices, indptr=c.indptr, shape=np.asarray(c.shape))


def merge(old: Rows, keep: np.ndarray, new: Rows) -> Rows:
    """`old`'s rows where `keep` is true, then `new`'s, over one vocabulary
    holding only the terms some row uses."""
    from scipy import sparse

    index = {t: j for j, t in enumerate(old.vocab)}
    extra = [t for t in new.vocab if t not in index]
    for t in extra:
        index[t] = len(index)
    width = len(index)
    kept = old.counts[np.flatnonzero(keep)]
    kept = sparse.csr_matrix((kept.data, kept.indices, kept.indptr), shape=(kept.shape[0], width))
    remap = np.asarray([index[t] for t in new.vocab], dtype=np.int32)
    added = sparse.csr_matrix((new.counts.data, remap[new.counts.indices] if len(remap) else
                               new.counts.indices, new.counts.indptr), shape=(new.counts.shape[0], width))
    counts = sparse.vstack([kept, added], format="csr")
    used = np.flatnonzero(np.diff(counts.tocsc().indptr))  # terms some row still holds
    vocab = old.vocab + extra
    counts = counts[:, used].tocsr()
    pick = np.flatnonzero(keep)
    return Rows([old.ids[i] for i in pick] + new.ids, [old.sources[i] for i in pick] + new.sources,
                [old.hashes[i] for i in pick] + new.hashes, counts, [vocab[j] for j in used])


def bm25(rows: Rows) -> Any:
    """A bm25s.BM25 over the rows, with the weights bm25s.BM25.index gives:
    Lucene idf log(1 + (N - df + 0.5) / (df + 0.5)) times
    tf / (tf + k1 (1 - b + b dl / avgdl)) (bm25s leaves out the constant k1 + 1),
    dl counting every token."""
    import bm25s

    counts = rows.counts.tocsc()  # columns are terms: bm25s keeps the matrix by term
    n_docs = counts.shape[0]
    lengths = np.asarray(rows.counts.sum(axis=1)).ravel()
    avg = lengths.mean() if n_docs else 0.0
    df = np.diff(counts.indptr)
    idf = np.log1p((n_docs - df + 0.5) / (df + 0.5))
    term = np.repeat(np.arange(counts.shape[1]), df)
    tf = counts.data.astype(np.float64)
    norm = K1 * (1 - B + B * lengths[counts.indices] / avg) if avg else K1 * (1 - B)
    data = (idf[term] * tf / (tf + norm)).astype(np.float32)
    model = bm25s.BM25(k1=K1, b=B)
    model.scores = {"data": data, "indices": counts.indices.astype(np.int32),
                    "indptr": counts.indptr, "num_docs": n_docs}
    vocab = {t: j for j, t in enumerate(rows.vocab)}
    vocab.setdefault("", len(vocab))  # as bm25s.BM25.index(create_empty_token=True)
    model.vocab_dict = vocab
    model.unique_token_ids_set = set(vocab.values())
    model.nonoccurrence_array = None
    return model


def write(folder: Path, rows: Rows, corpus: Iterable[bytes]) -> None:
    """Write a version: bm25s's files, `corpus` (one JSON line per row, in row
    order) and the rows."""
    model = bm25(rows)
    model.save(str(folder), show_progress=False)
    with open(folder / CORPUS, "wb") as f:
        f.writelines(corpus)
    _save_rows(folder, rows)


def corpus_line(node: Any) -> bytes:
    """A chunk's line in `corpus.jsonl`, as BM25Retriever.persist writes it."""
    from llama_index.core.vector_stores.utils import node_to_metadata_dict

    return (json.dumps(node_to_metadata_dict(node) | {"node_id": node.node_id},
                       ensure_ascii=False) + "\n").encode()


def kept_lines(folder: Path, keep: np.ndarray) -> Iterable[bytes]:
    """The lines of an earlier version's corpus whose row `keep` marks."""
    with open(folder / CORPUS, "rb") as f:
        for i, line in enumerate(f):
            if i < len(keep) and keep[i]:
                yield line


def row_sources(folder: Path) -> list[str]:
    """The source of each row of a version, in row order (the rows' other
    arrays are not read)."""
    with np.load(folder / ROWS, allow_pickle=False) as z:
        return z["sources"].tolist()


def sources(rows: Rows) -> dict[str, tuple[set[str], list[str]]]:
    """{source: (its chunks' file hashes, its chunk ids)} from the rows."""
    out: dict[str, tuple[set[str], list[str]]] = {}
    for cid, source, fhash in zip(rows.ids, rows.sources, rows.hashes):
        hashes, ids = out.setdefault(source, (set(), []))
        hashes.add(fhash)
        ids.append(cid)
    return out
