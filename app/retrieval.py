"""Hybrid retrieval: dense (Chroma) and keyword (BM25) results fused by
reciprocal rank fusion.

Both indexes are written at ingest, Chroma's through LlamaIndex's
ChromaVectorStore, BM25's by `app.keyword_index` as LlamaIndex's BM25Retriever
builds it; here they are read with chromadb and bm25s directly, because
importing llama_index.core costs 0.7 s of a one-shot question's 3 s. The BM25
query is tokenised exactly as BM25Retriever does (English Snowball stemmer,
same token pattern).

RRF (Cormack et al., 2009) scores a chunk sum(1 / (60 + rank)) over the lists
it appears in and needs no calibration between the two retrievers' scores. It
is written out rather than taken from LlamaIndex's QueryFusionRetriever, which
also replaces each chunk's cosine similarity with the fused score; the refusal
decision needs the cosine.

Then the best 3 x top-k fused candidates are reranked (setting `rerank`): a
chunk's rank in the fused list and its rank by its best sentence's cosine to
the query are fused again by RRF. One vector per chunk blurs a passage that
answers in one sentence among others on neighbouring subjects; its best
sentence does not. Measured by `ragchat eval` on the Datasette docs sets (146
answerable questions) and Blockchain Solana (58): top-4 hits 135 -> 141 and
54 -> 56 (README, "What an answer is"). The sentence vectors are remembered by
the embedder, and the answer's ranker reads the same sentences next.

Left out: cross-encoder reranking (none ships offline here) and metadata
filters.
"""

from __future__ import annotations

import json
import time
from typing import Any

from app import keyword_index, text
from app.embedding import OnnxEmbedder
from app.ranking import sentences_of
from app.store import Store, chunk_from
from app.types import Hit

RRF_K = 60
CANDIDATES_PER_K = 3  # each retriever proposes this many candidates per requested hit


def _rrf(rank: int) -> float:
    """Reciprocal rank fusion's share for a 0-based rank in one list."""
    return 1.0 / (RRF_K + rank + 1)


def _retrying(call, attempts: int = 4):
    """A Chroma read, tried again when an ingest in another process changed the
    index under it (embedded Chroma then fails with "Error finding id")."""
    from app.errors import RagchatError

    for attempt in range(attempts):
        try:
            return call()
        except Exception as e:  # chromadb raises its InternalError or a bare one here
            if "finding id" not in str(e).lower() and "not found" not in str(e).lower():
                raise
            if attempt == attempts - 1:
                raise RagchatError("the index changed while it was searched (an ingest is "
                                   "running); ask again") from None
            time.sleep(0.2 * (attempt + 1))


class HybridRetriever:
    def __init__(self, store: Store, collection: Any, embedder: OnnxEmbedder):
        self.collection = collection
        self.embedder = embedder
        self.store = store
        self.bm25 = store.load_bm25(collection)
        self.size = collection.count()
        self._stemmer = None
        self._indexed: set[str] | None = None
        self._vocabularies: dict[str, int] = {}  # folder -> word stems its files use
        self._counts: tuple | None = None  # (folders, each row's folder, files, each row's file)
        self._queries: tuple[tuple[str, Any], ...] = ()  # the latest two queries, vectors

    def _vector(self, query: str) -> Any:
        """The query's MiniLM vector, computed once per question: retrieval,
        the search for a missing term and the named document's passages all
        ask for the same one."""
        latest = self._queries  # replaced whole, never changed: threads may share it
        for q, vec in latest:
            if q == query:
                return vec
        vec = self.embedder.embed([query])[0]
        # this question's query and its reading within a named document
        self._queries = ((query, vec),) + latest[:1]
        return vec

    def _last_consistent(self) -> set[str] | None:
        """While an ingest writes, the ids of the last consistent state (those the
        current BM25 version was built from): Chroma already holds some of the new
        chunks and may not yet have dropped a changed file's old ones, and a
        question must not see both. None when no ingest is running."""
        if not self.store.ingest_running():
            return None
        if self._indexed is None:
            corpus = self.bm25.corpus if self.bm25 else []
            self._indexed = {corpus[i]["node_id"] for i in range(len(corpus))}
        return self._indexed

    def _keyword(self, query: str, n: int) -> list[tuple[str, str, dict]]:
        """(id, text, metadata) of the best BM25 matches with a positive score."""
        if self.bm25 is None:
            return []
        import bm25s
        import Stemmer

        if self._stemmer is None:
            self._stemmer = Stemmer.Stemmer("english")
        # a word spelt the other way from the documents ("licence") finds them too
        query = " ".join([query, *text.other_spellings(query)])
        tokens = bm25s.tokenize(query, stemmer=self._stemmer,
                                token_pattern=keyword_index.TOKEN_PATTERN, show_progress=False)
        if not any(tokens.ids):
            return []
        k = min(n, int(self.bm25.scores.get("num_docs", n)))
        docs, scores = self.bm25.retrieve(tokens, k=k, show_progress=False)
        out = []
        for doc, score in zip(docs[0], scores[0]):
            if score <= 0:
                continue
            node = json.loads(doc["_node_content"])
            out.append((doc["node_id"], node.get("text", ""), node.get("metadata", {})))
        return out

    def containing(self, terms: list[str], query: str, k: int, pool: int = 50) -> list[Hit]:
        """Up to `k` passages of the whole collection that hold the terms (all
        of them where any passage does, else at least one), best BM25 match to
        the terms and the query first: where a question's name or figure lies
        when the top-k passages missed it."""
        found = {f[0]: f for f in self._keyword(" ".join(terms) + " " + query, min(pool, self.size))}
        for f in self._keyword(" ".join(terms), min(pool, self.size)):
            found.setdefault(f[0], f)
        # A term BM25 keeps no token of ("2", a stopword such as "IT") is looked
        # for in the passages' text: a refusal must not say the documents never
        # mention what the keyword index merely cannot search for. While an
        # ingest writes, only in the state before it, as `retrieve` does.
        frozen = self._last_consistent()
        for f in self._written(self._unsearchable(terms), min(pool, self.size)) + self._titled(
                terms, min(pool, self.size)):
            if frozen is None or f[0] in frozen:
                found.setdefault(f[0], f)
        chunks = [chunk_from(*f) for f in found.values()]
        normalised = [(c, text.normalise(c.headed)) for c in chunks]
        titled = {c.id: [text.titles_release(t, c.text, c.section, norm, c.source) for t in terms]
                  for c, norm in normalised}
        held = [(c, sum(r or text.holds_term(t, norm) for t, r in zip(terms, titled[c.id])))
                for c, norm in normalised]
        most = max((n for _, n in held), default=0)
        # a passage under a release's own title before one that only names the release
        best = sorted((c for c, n in held if n == most and n > 0),
                      key=lambda c: -sum(titled[c.id]))[:k]
        if not best:
            return []
        qvec = self._vector(query)
        got = self.collection.get(ids=[c.id for c in best], include=["embeddings"])
        cosine = {cid: float(qvec @ vec) for cid, vec in zip(got["ids"], got["embeddings"])}
        return [Hit(chunk=c, score=0.0, similarity=cosine[c.id])
                for c in best if c.id in cosine]  # not gone from Chroma since

    def within(self, source: str, query: str, k: int, asked: str | None = None) -> list[Hit]:
        """Up to `k` passages of one document, closest by MiniLM to what is
        `asked` (the query as read within the document: "… is it distributed?")
        (Chroma's metadata filter): what the document about a thing the question
        names says nearest to what it asks. Their similarity is to the query, as
        every other passage's is."""
        frozen = self._last_consistent()
        by = self._vector(asked or query)
        got = _retrying(lambda: self.collection.query(
            query_embeddings=[by.tolist()], n_results=k if frozen is None else 2 * k,
            where={"source": source}, include=["documents", "metadatas", "embeddings"]))
        qvec = self._vector(query)
        return [Hit(chunk=chunk_from(cid, doc, meta), score=0.0, similarity=float(qvec @ vec))
                for cid, doc, meta, vec in zip(got["ids"][0], got["documents"][0],
                                               got["metadatas"][0], got["embeddings"][0])
                if frozen is None or cid in frozen][:k]

    def opening(self, source: str, query: str) -> Hit | None:
        """The first passage of a document (the one that starts at its first
        character): where a README or a page about a thing says what it is. None
        when the collection holds no such passage (or, while an ingest writes,
        held none before it)."""
        got = self.collection.get(where={"$and": [{"source": source}, {"start": 0}]}, limit=1,
                                  include=["documents", "metadatas", "embeddings"])
        if not got["ids"]:
            return None
        frozen = self._last_consistent()
        if frozen is not None and got["ids"][0] not in frozen:
            return None
        qvec = self._vector(query)
        return Hit(chunk=chunk_from(got["ids"][0], got["documents"][0], got["metadatas"][0]),
                   score=0.0, similarity=float(qvec @ got["embeddings"][0]))

    def unused(self, stems: list[str]) -> list[str]:
        """The word stems ("encrypt", as the keyword index's Snowball stemmer
        writes them) that no passage of the collection uses, not even inside a
        longer word ("calendar" of "icalendar")."""
        vocab = self.bm25.vocab_dict if self.bm25 is not None else {}
        absent = [s for s in stems if not any(f in vocab for f in text.spellings(s))]
        if absent:
            words = [w for w in vocab if w]
            absent = [s for s in absent if not any(f in w for f in text.spellings(s) for w in words)]
        return absent

    def rarity(self, stems: list[str]) -> dict[str, float]:
        """Each word stem's inverse document frequency over the collection's
        passages, log(1 + N / (1 + n)) with n the passages that use it (the
        keyword index's counts); a stem no passage uses gets the highest."""
        import math

        vocab = self.bm25.vocab_dict if self.bm25 is not None else {}
        scores = self.bm25.scores if self.bm25 is not None else {}
        indptr = scores.get("indptr")
        docs = int(scores.get("num_docs", 0) or 0)
        out = {}
        for s in stems:
            used = 0
            for f in text.spellings(s):  # "licens" and "licenc": passages in either spelling
                t = vocab.get(f)
                used += 0 if t is None or indptr is None else int(indptr[t + 1] - indptr[t])
            out[s] = math.log(1 + docs / (1 + used))
        return out

    def vocabulary(self, folder: str) -> int:
        """How many word stems the files of one folder use together (a
        documentation folder, where one of its pages uses few), from the keyword
        index's term counts; 0 when they cannot be read."""
        if folder not in self._vocabularies:
            self._vocabularies[folder] = self._folder_vocabulary(folder)
        return self._vocabularies[folder]

    def _folder_vocabulary(self, folder: str) -> int:
        import numpy as np

        if self._counts is None:
            self._counts = self._read_counts()
        if not self._counts:
            return 0
        folder_names, folder_of_row, _, _ = self._counts
        where = np.flatnonzero(folder_names == folder)
        if not where.size:
            return 0
        scores = self.bm25.scores
        indptr = np.asarray(scores["indptr"])
        # per count (term by term, as the index keeps them): is its row in the folder?
        in_folder = (folder_of_row == where[0])[np.asarray(scores["indices"])]
        starts = indptr[:-1][np.diff(indptr) > 0]  # the terms' runs, empty ones left out
        if not starts.size:
            return 0
        return int(np.count_nonzero(np.logical_or.reduceat(in_folder, starts)))

    def files_using(self, terms: list[str]) -> tuple[dict[str, set[str]], int]:
        """The files whose passages use each term (every one of its keyword
        tokens: "Node.js" is "node" and "js"), from the keyword index's term
        counts, and how many files the collection holds; ({}, 0) when they
        cannot be read. A term the index keeps no token of is left out."""
        import numpy as np

        if self._counts is None:
            self._counts = self._read_counts()
        if not self._counts or not terms:
            return {}, 0
        _, _, file_names, file_of_row = self._counts
        scores = self.bm25.scores
        indptr, indices = scores["indptr"], scores["indices"]
        vocab = self.bm25.vocab_dict
        out: dict[str, set[str]] = {}
        for term, tokens in zip(terms, keyword_index.tokenize(terms)):
            if not tokens:
                continue
            held: set[str] | None = None
            for token in dict.fromkeys(tokens):
                ts = [t for t in map(vocab.get, text.spellings(token)) if t is not None]
                rows = np.asarray([r for t in ts for r in indices[indptr[t]:indptr[t + 1]]], dtype=int)
                found = set(file_names[np.unique(file_of_row[rows])].tolist()) if rows.size else set()
                held = found if held is None else held & found
            out[term] = held or set()
        return out, len(file_names)

    def _read_counts(self) -> tuple:
        """The folders and files of the keyword index's rows (from its rows
        file): (folder names, each row's folder, file names, each row's file),
        read once; () when unreadable. Small arrays: the counts themselves stay
        the index's own (memory-mapped)."""
        import os

        import numpy as np

        version = getattr(self.bm25, "version_dir", None)
        if version is None:
            return ()
        try:
            sources = keyword_index.row_sources(version)
        except (OSError, KeyError, ValueError):
            return ()
        scores = self.bm25.scores
        if len(sources) != int(scores.get("num_docs", -1)):
            return ()
        file_names, file_of_row = np.unique(np.asarray(sources), return_inverse=True)
        folder_names, folder_of_file = np.unique(
            np.asarray([os.path.dirname(f) for f in file_names.tolist()]), return_inverse=True)
        return folder_names, folder_of_file[file_of_row], file_names, file_of_row

    def _unsearchable(self, terms: list[str]) -> list[str]:
        """The terms of which the keyword index keeps no token."""
        if not terms:
            return []
        return [t for t, tokens in zip(terms, keyword_index.tokenize(terms)) if not tokens]

    def _titled(self, terms: list[str], n: int) -> list[tuple[str, str, dict]]:
        """(id, text, metadata) of up to `n` passages under a title that opens
        with the version of a versioned term ("# 0.40 (2020-04-21)" for
        "Datasette 0.40"), as changelogs give each release: those that hold the
        title line (Chroma's substring filter), then those that start under it
        (its section). BM25 keeps no token of a version such as "2.3"."""
        out: dict[str, tuple[str, str, dict]] = {}
        for term in terms:
            v = text.versioned(term)
            if v is None:
                continue
            got = self.collection.get(where_document={"$contains": f"# {v[1]}"}, limit=n,
                                      include=["documents", "metadatas"])
            titles = set()
            for f in zip(got["ids"], got["documents"], got["metadatas"]):
                for s, _ in text.release_spans(f[1], "", v[1]):
                    titles.add(text.title_at(f[1], s))
                out.setdefault(f[0], f)
            for title in sorted(titles - {""}):
                got = self.collection.get(where={"section": title}, limit=n,
                                          include=["documents", "metadatas"])
                for f in zip(got["ids"], got["documents"], got["metadatas"]):
                    out.setdefault(f[0], f)
        return list(out.values())

    def _written(self, terms: list[str], n: int) -> list[tuple[str, str, dict]]:
        """(id, text, metadata) of up to `n` passages whose text holds one of
        `terms` as written, in lower or upper case, or capitalised (Chroma's
        substring filter)."""
        out: dict[str, tuple[str, str, dict]] = {}
        for form in dict.fromkeys(f for t in terms for f in (t, t.upper(), t.capitalize(), t.lower())):
            got = self.collection.get(where_document={"$contains": form}, limit=n,
                                      include=["documents", "metadatas"])
            for f in zip(got["ids"], got["documents"], got["metadatas"]):
                out.setdefault(f[0], f)
        return list(out.values())

    def retrieve(self, query: str, top_k: int, rerank: bool = True) -> list[Hit]:
        if self.size == 0:
            return []
        qvec = self._vector(query)
        pool = top_k * CANDIDATES_PER_K if rerank else top_k  # candidates kept after fusion
        n = min(self.size, pool * CANDIDATES_PER_K)
        frozen = self._last_consistent()
        dense = _retrying(lambda: self.collection.query(
            query_embeddings=[qvec.tolist()], n_results=n if frozen is None else 2 * n,
            include=["documents", "metadatas", "distances"]))
        if frozen is not None:  # an ingest is writing: the state before it, nothing newer
            dense = {key: [[v for cid, v in zip(dense["ids"][0], dense[key][0]) if cid in frozen]]
                     for key in ("ids", "documents", "metadatas", "distances")}
        fused: dict[str, float] = {}
        cosine: dict[str, float] = {}
        found: dict[str, tuple[str, dict]] = {}
        for rank, (cid, text, meta, dist) in enumerate(zip(
                dense["ids"][0], dense["documents"][0], dense["metadatas"][0], dense["distances"][0])):
            fused[cid] = fused.get(cid, 0.0) + _rrf(rank)
            cosine[cid] = 1.0 - dist  # the collection's space is cosine
            found[cid] = (text, meta)
        for rank, (cid, text, meta) in enumerate(self._keyword(query, n)):
            fused[cid] = fused.get(cid, 0.0) + _rrf(rank)
            found.setdefault(cid, (text, meta))
        best = sorted(fused, key=fused.get, reverse=True)[:pool]
        missing = [cid for cid in best if cid not in cosine]
        if missing:  # keyword-only hits: their cosine from the stored vectors
            got = self.collection.get(ids=missing, include=["embeddings"])
            for cid, vec in zip(got["ids"], got["embeddings"]):
                cosine[cid] = float(qvec @ vec)
        # A keyword hit Chroma no longer holds (an ingest running beside us
        # replaced it) is not served.
        best = [cid for cid in best if cid in cosine]
        if rerank and len(best) > 1:
            fused = self._by_best_sentence(qvec, best, {cid: found[cid][0] for cid in best})
            best = sorted(best, key=fused.get, reverse=True)  # stable: ties keep the fused order
        return [Hit(chunk=chunk_from(cid, *found[cid]), score=fused[cid],
                    similarity=cosine[cid]) for cid in best[:top_k]]

    def _by_best_sentence(self, qvec, ids: list[str], texts: dict[str, str]) -> dict[str, float]:
        """RRF of each chunk's rank in `ids` (fused order) and its rank by the
        cosine of its best sentence to the query."""
        pieces = {cid: sentences_of(texts[cid]) or [texts[cid] or "-"] for cid in ids}
        flat = list(dict.fromkeys(p for ps in pieces.values() for p in ps))
        sim = dict(zip(flat, (self.embedder.embed(flat) @ qvec).tolist()))
        best = {cid: max(sim[p] for p in ps) for cid, ps in pieces.items()}
        by_sentence = sorted(ids, key=best.get, reverse=True)
        rank = {cid: i for i, cid in enumerate(by_sentence)}
        return {cid: _rrf(i) + _rrf(rank[cid])
                for i, cid in enumerate(ids)}
