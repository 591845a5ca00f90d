"""The Chroma store and the keyword (BM25) index kept beside it.

Chroma is embedded (PersistentClient under `index_dir/chroma`) unless
`chroma_url` names a server, in which case the same code talks HTTP. Each
collection records the embedder's name and dimension in its metadata; opening
it with another embedder is an error, not silent garbage.

The BM25 index (`app.keyword_index`: bm25s, as LlamaIndex's BM25Retriever builds
it) is saved under `index_dir/bm25/<collection>/v-<stamp>/`, where the stamp is a
hash of the chunk ids it was built from, and `current.json` names the version to
read. An ingest builds the next version from the current one's rows, reading
back and tokenising only the chunks it wrote. A new
version is written beside the old one, fsynced, and made current by an atomic
rename of `current.json`, so a reader or a crash never sees half an index.

Crash safety: an ingest holds `index_dir/ingest.lock` (a file lock, released by
the kernel when the process dies) and leaves `<collection>.pending` in the bm25
folder from its first write to Chroma until the BM25 index matches Chroma again.
A pending mark with no ingest holding the lock means an ingest died midway: the
next query or ingest rebuilds the BM25 index from Chroma's stored texts. Ingest
always compares the index's ids with Chroma's (drift by content, not by count);
a query does so when Chroma is a shared server that others write to, and
otherwise compares counts and the pending mark. The record of ingested files is
Chroma's own chunk metadata (source, file hash), written with the chunks; the
BM25 version's rows hold a copy, read instead while their ids are Chroma's.
Left out: access control and multi-tenant databases.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from app import keyword_index
from app.errors import ConfigError, EmbedderMismatchError, EndpointError, NoIndexError
from app.settings import Settings
from app.types import Chunk

FILE_KEYS = ("source", "title", "page", "start", "end", "content_hash", "file_hash", "section")


def chroma_client(settings: Settings) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    cs = ChromaSettings(anonymized_telemetry=False)
    if not settings.chroma_url:
        # Absolute: chromadb caches one client per path string within a process.
        path = (settings.index_dir / "chroma").resolve()
        path.mkdir(parents=True, exist_ok=True)
        return _persistent_client(chromadb, str(path), cs)
    url = urlparse(settings.chroma_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ConfigError(f"bad setting chroma_url: '{settings.chroma_url}' is not an http(s) URL")
    port = url.port or (443 if url.scheme == "https" else 8000)
    _probe(f"{url.scheme}://{url.hostname}:{port}", settings)
    try:
        client = chromadb.HttpClient(host=url.hostname, port=port, ssl=url.scheme == "https",
                                     settings=cs)
    except Exception as e:  # chromadb raises bare ValueError/ConnectError here
        raise EndpointError(f"cannot reach Chroma server at {settings.chroma_url} ({e})") from None
    # chromadb's HTTP session waits forever; give every later request the timeout too.
    session = getattr(getattr(client, "_server", None), "_session", None)
    if session is not None:
        import httpx

        session.timeout = httpx.Timeout(settings.chroma_timeout)
    return client


def _lost_race(error: str) -> bool:
    return "database is locked" in error or bool(re.search(r"table \w+ already exists", error))


def _persistent_client(chromadb: Any, path: str, cs: Any, attempts: int = 8) -> Any:
    """chromadb.PersistentClient, opened again when it lost a race: two processes
    that open a new index at once (two ingests, an ingest and a question) race
    to create its SQLite tables, and the loser fails with "database is locked"
    or "table collections already exists" (about one open in ten). chromadb
    keeps the System that failed to start under the path, so it is dropped
    before the next try."""
    for attempt in range(attempts):
        try:
            return chromadb.PersistentClient(path=path, settings=cs)
        except Exception as e:  # chromadb's InternalError from its Rust bindings
            if not _lost_race(str(e)) or attempt == attempts - 1:
                raise
            _forget_system(path)
            time.sleep(0.1 * (attempt + 1))


def _forget_system(path: str) -> None:
    """Drop chromadb's cached System for an embedded path (not stopped: a
    question in flight may still read through it), so the next client loads
    the files as they are now. Private chromadb state, checked by
    tests/test_ingest.py against the pinned chromadb 1.5."""
    from chromadb.api.shared_system_client import SharedSystemClient as Shared

    with Shared._refcount_lock:
        Shared._identifier_to_system.pop(path, None)
        Shared._identifier_to_refcount.pop(path, None)


def reopened_chroma_client(settings: Settings) -> Any:
    """A new embedded client that reads the index from disk again.

    chromadb keeps one System per path and process, and with it the vector
    index it loaded: another process's writes reach its SQLite tables but
    never its in-memory HNSW index, and a client made again gets the same
    System (chroma-core/chroma#3792). The path's System is dropped from that
    cache (`_forget_system`)."""
    _forget_system(str((settings.index_dir / "chroma").resolve()))
    return chroma_client(settings)


def _probe(base: str, settings: Settings) -> None:
    """One heartbeat with a timeout before chromadb, whose client has none, is used."""
    import httpx

    try:
        httpx.get(f"{base}/api/v2/heartbeat", timeout=settings.chroma_timeout)
    except httpx.TimeoutException:
        raise EndpointError(f"Chroma server at {settings.chroma_url} did not answer within "
                            f"{settings.chroma_timeout:g} s (RAGCHAT_CHROMA_TIMEOUT)") from None
    except httpx.HTTPError as e:
        raise EndpointError(f"cannot reach Chroma server at {settings.chroma_url} "
                            f"({type(e).__name__})") from None


@dataclass
class SourceEntry:
    file_hashes: set[str] = field(default_factory=set)  # one, unless an update was cut short
    ids: list[str] = field(default_factory=list)

    def holds(self, fhash: str) -> bool:
        """Every stored chunk of the file comes from the content hashed `fhash`."""
        return self.file_hashes == {fhash}


# Records per read: embedded Chroma fails on reads of ~32k records at once, and each
# page is an SQL OFFSET that scans every record before it, so pages are large: at 100k
# chunks all metadata took 4.7-5.4 s in pages of 25,000 against 6.9-8.1 s in pages of
# 5,000, all ids 0.73 s against 1.9-2.4 s.
PAGE = 25_000


def get_all(col: Any, include: list[str], where: dict | None = None) -> dict:
    """Every record of the collection (matching `where`), read page by page:
    {"ids": [...], and a list per field in `include`}."""
    out: dict[str, list] = {"ids": [], **{field: [] for field in include}}
    offset = 0
    while True:
        got = col.get(where=where, include=include, limit=PAGE, offset=offset)
        out["ids"] += got["ids"]
        for field in include:
            out[field] += list(got[field] or [])
        if len(got["ids"]) < PAGE:
            return out
        offset += PAGE


def write_atomic(path: Path, data: str) -> None:
    """Write a file so that a reader or a crash sees the old or the new content, never a mix."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Store:
    """One Chroma collection plus its BM25 index."""

    def __init__(self, settings: Settings, client: Any | None = None):
        self.settings = settings
        self.client = client or chroma_client(settings)
        self.name = settings.collection

    # -- collections ---------------------------------------------------------
    def open(self, embedder: str, dimension: int | None = None, create: bool = False) -> Any:
        """Return the collection, checking it was built with `embedder`."""
        from chromadb.errors import NotFoundError

        try:
            col = self.client.get_collection(self.name, embedding_function=None)
        except NotFoundError:
            if not create:
                where = self.settings.chroma_url or f"{self.settings.index_dir}/"
                raise NoIndexError(
                    f"no collection '{self.name}' in {where} yet: run `ragchat ingest` first"
                ) from None
            return self.client.create_collection(
                self.name, embedding_function=None,
                metadata={"embedder": embedder, "dimension": dimension or 0},
                configuration={"hnsw": {"space": "cosine"}},
            )
        except Exception as e:
            if "connect" in str(e).lower():
                raise EndpointError(f"cannot reach Chroma server at {self.settings.chroma_url}") from None
            raise
        stored = (col.metadata or {}).get("embedder")
        if stored and stored != embedder:
            raise EmbedderMismatchError(
                f"collection '{self.name}' was embedded with {stored}, not {embedder}: "
                f"re-ingest into a new collection or set the matching embedder"
            )
        return col

    def max_batch_size(self) -> int:
        """The most records Chroma takes in one write (the server's own limit)."""
        try:
            return int(self.client.get_max_batch_size())
        except Exception:  # an older server without the call
            return 5000

    def list_collections(self) -> list[Any]:
        return [c for c in self.client.list_collections()]

    # -- what is stored ------------------------------------------------------
    def manifest(self, col: Any) -> dict[str, SourceEntry]:
        """Stored sources with their file hash and chunk ids: from the current
        BM25 version's rows when it holds exactly the collection's chunks and
        no ingest was cut short (every chunk's metadata took 5 s to read back at
        100k chunks; their ids 0.7 s), else from Chroma."""
        out: dict[str, SourceEntry] = {}
        rows = None if self.interrupted() or col.name != self.name else self._current_rows(
            get_all(col, [])["ids"])
        if rows is not None:
            for source, (hashes, ids) in keyword_index.sources(rows).items():
                out[source] = SourceEntry(hashes, ids)
            return out
        got = get_all(col, ["metadatas"])
        for cid, meta in zip(got["ids"], got["metadatas"] or []):
            meta = meta or {}
            entry = out.setdefault(meta.get("source", "?"), SourceEntry())
            entry.file_hashes.add(meta.get("file_hash", ""))
            entry.ids.append(cid)
        return out

    # -- one writer at a time ------------------------------------------------
    def _lock(self) -> Any:
        from filelock import FileLock

        self.settings.index_dir.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.settings.index_dir / "ingest.lock"))

    @contextlib.contextmanager
    def writing(self, waiting: Any = None):
        """Hold the ingest lock (waiting for another ingest to finish) and mark
        the BM25 index pending until the block ends without an exception."""
        from filelock import Timeout

        lock = self._lock()
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if waiting:
                waiting(f"waiting for another ingest into {self.settings.index_dir} to finish")
            lock.acquire()
        try:
            yield
        finally:
            lock.release()

    def _pending(self) -> Path:
        return self.settings.index_dir / "bm25" / f"{self.name}.pending"

    def mark_pending(self, steps: list[tuple[str, str, str]] = ()) -> None:
        """Mark the BM25 index pending. `steps` lists the files being written now,
        each as (source, new content hash, "adding" or "deleting"), for the repair
        after a crash (`_drop_superseded`); the mark is rewritten only when they
        change."""
        steps = [list(x) for x in steps]
        p = self._pending()
        if p.exists() and getattr(self, "_steps", None) == steps:
            return
        p.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(p, json.dumps({"pid": os.getpid(), "steps": [
            dict(zip(("source", "hash", "step"), x)) for x in steps]}))
        self._steps = steps

    def _free_lock(self) -> Any | None:
        """The ingest lock, held, when no ingest holds it; else None."""
        from filelock import Timeout

        lock = self._lock()
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return None
        return lock

    def ingest_running(self) -> bool:
        """Whether an ingest (in this process or another) is writing now."""
        if not self._pending().exists():
            return False
        lock = self._free_lock()
        if lock is None:
            return True
        lock.release()
        return False

    def _heal_if_abandoned(self, col: Any) -> bool:
        """Rebuild the BM25 index when an ingest died and left it pending.
        False while an ingest runs (its pending mark is not abandoned)."""
        if not self._pending().exists():
            return False
        lock = self._free_lock()
        if lock is None:
            return False
        try:
            if self._pending().exists():
                self._drop_superseded(col)
                self.sync_bm25(col, force=True)
            return True
        finally:
            lock.release()

    def interrupted(self) -> bool:
        """Whether an ingest left the BM25 index pending (it was cut short, or
        is the one running)."""
        return self._pending().exists()

    def drop_part_written(self, col: Any) -> None:
        """At the start of an ingest (which holds the lock): a pending mark left
        by a crash names the files it was writing; their part-written chunks go."""
        if self._pending().exists():
            self._drop_superseded(col)

    def _drop_superseded(self, col: Any) -> None:
        """After a crash while files were written (the pending mark names each, its
        new content hash and the step): a file cut short while its new chunks
        were written has those deleted (a changed file's old version stays whole,
        a new file is gone, and the next ingest writes it again); a changed file
        cut short before its old chunks were all deleted has the rest of them
        deleted. Either way no question is answered from two versions of one
        file, or from part of one."""
        try:
            mark = json.loads(self._pending().read_text())
        except (OSError, ValueError):
            return
        if not isinstance(mark, dict):
            return
        steps = mark.get("steps", [mark] if "step" in mark else [])  # one step: the old form
        for step in steps:
            if not isinstance(step, dict) or step.get("step") not in ("adding", "deleting"):
                continue
            got = get_all(col, ["metadatas"], where={"source": step["source"]})
            doomed = [cid for cid, m in zip(got["ids"], got["metadatas"])
                      if (m.get("file_hash") == step["hash"]) == (step["step"] == "adding")]
            for b in range(0, len(doomed), 1000):
                col.delete(ids=doomed[b:b + 1000])

    # -- BM25 ----------------------------------------------------------------
    def bm25_dir(self) -> Path:
        return self.settings.index_dir / "bm25" / self.name

    @staticmethod
    def _stamp(ids: list[str]) -> str:
        return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()

    def bm25_version(self) -> str:
        """The current BM25 version's name: it changes whenever an ingest in any
        process changed the collection."""
        return self._current().get("dir", "")

    def bm25_changed_at(self) -> float:
        """When an ingest last made a BM25 version current (0 when none did)."""
        try:
            return (self.bm25_dir() / "current.json").stat().st_mtime
        except OSError:
            return 0.0

    def _current(self) -> dict:
        try:
            return json.loads((self.bm25_dir() / "current.json").read_text())
        except (OSError, ValueError):
            return {}

    def sync_bm25(self, col: Any, force: bool = False, rewritten: set[str] | None = None) -> int:
        """Make the BM25 index hold exactly Chroma's chunks (compared by ids),
        building a new version when it does not, then clear the pending mark.
        The caller holds the ingest lock. `rewritten`, from an ingest, names
        the chunks it wrote: the others are taken over from the current
        version's rows unchanged. Without it (`force`, a crash's repair, a
        reader that found the index stale), every chunk is read again."""
        ids = get_all(col, [])["ids"]
        current = self._current()
        if force or current.get("stamp") != self._stamp(ids) or rewritten or not (
                self.bm25_dir() / current.get("dir", "-")).is_dir():
            self.rebuild_bm25(col, ids, rewritten if not force else None)
        self._pending().unlink(missing_ok=True)
        return len(ids)

    def _current_rows(self, ids: list[str]) -> keyword_index.Rows | None:
        """The current version's rows when they are exactly these chunks."""
        current = self._current()
        if not current.get("dir") or current.get("stamp") != self._stamp(ids):
            return None
        rows = self._rows(current["dir"])
        return rows if rows is not None and len(rows.ids) == len(ids) else None

    def _rows(self, version: str) -> keyword_index.Rows | None:
        """A BM25 version's rows, read once per store (an ingest reads the file
        list from them at its start and builds the next version on them at its
        end; a version's files never change once it is current)."""
        cached = getattr(self, "_rows_read", None)
        if cached is None or cached[0] != version:
            cached = self._rows_read = (version, keyword_index.load_rows(self.bm25_dir() / version))
        return cached[1]

    def _records(self, col: Any, ids: list[str], every: bool) -> list[tuple[str, str, dict]]:
        """(id, text, metadata) of these chunks, read from Chroma."""
        if every:
            got = get_all(col, ["documents", "metadatas"])
            return list(zip(got["ids"], got["documents"], got["metadatas"]))
        out = []
        for b in range(0, len(ids), 5000):
            got = col.get(ids=ids[b:b + 5000], include=["documents", "metadatas"])
            out += zip(got["ids"], got["documents"], got["metadatas"])
        return out

    def rebuild_bm25(self, col: Any, ids: list[str] | None = None,
                     rewritten: set[str] | None = None) -> int:
        """Write the BM25 index of every chunk in the collection as a new version
        and make that version current atomically. With `rewritten` (the chunks
        an ingest wrote), the current version's other rows are kept as they are
        and only new or rewritten chunks are read and tokenised."""
        ids = get_all(col, [])["ids"] if ids is None else ids
        d = self.bm25_dir()
        d.mkdir(parents=True, exist_ok=True)
        stamp = self._stamp(ids)
        if not ids:
            write_atomic(d / "current.json", json.dumps({"stamp": stamp, "count": 0, "dir": ""}))
            self._prune(keep=set())
            return 0
        previous = self._current().get("dir", "")
        old = self._rows(previous) if previous and rewritten is not None else None
        if old is None:
            old = keyword_index.Rows([], [], [], None, [])
        wanted = set(ids)
        keep = np.asarray([cid in wanted and cid not in rewritten for cid in old.ids], dtype=bool) \
            if old.ids else np.zeros(0, dtype=bool)
        held = {cid for cid, k in zip(old.ids, keep) if k}
        fresh = [cid for cid in ids if cid not in held]
        records = self._records(col, fresh, every=not held)
        nodes = [headed_node(i, t or "", m or {}) for i, t, m in records]
        new = keyword_index.rows_for(records, [embed_text(n) for n in nodes])
        rows = keyword_index.merge(old, keep, new) if held else new
        version = f"v-{stamp[:16]}"
        tmp = d / f".{version}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        corpus = (keyword_index.corpus_line(n) for n in nodes)
        if held:
            corpus = itertools.chain(keyword_index.kept_lines(d / previous, keep), corpus)
        keyword_index.write(tmp, rows, corpus)
        from bm25s.utils.corpus import JsonlCorpus

        # the line index readers map the corpus with
        JsonlCorpus(str(tmp / keyword_index.CORPUS), show_progress=False, verbosity=0).close()
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        _fsync_dir(tmp)
        shutil.rmtree(d / version, ignore_errors=True)
        os.replace(tmp, d / version)
        _fsync_dir(d)
        write_atomic(d / "current.json", json.dumps({"stamp": stamp, "count": len(rows.ids),
                                                     "dir": version}))
        self._rows_read = (version, rows)  # (the same ids written again keep the version's name)
        self._prune(keep={version, previous})  # a reader may still be opening the previous one
        return len(rows.ids)

    def _prune(self, keep: set[str]) -> None:
        for old in self.bm25_dir().iterdir():
            if old.is_dir() and old.name not in keep:
                shutil.rmtree(old, ignore_errors=True)
            elif old.is_file() and old.name != "current.json" and not old.name.startswith("."):
                old.unlink(missing_ok=True)  # the layout before versions

    def load_bm25(self, col: Any) -> Any | None:
        """The saved BM25 index (a bm25s.BM25 with its corpus, memory-mapped), rebuilt first if
        it is missing or stale. Loaded with bm25s itself, not through
        LlamaIndex's wrapper, to keep llama_index out of the query path's
        start-up (its import alone takes 0.7 s)."""
        count = col.count()
        if count == 0:
            return None
        self._heal_if_abandoned(col)
        current = self._current()
        fresh = current.get("count") == count and (self.bm25_dir() / current.get("dir", "-")).is_dir()
        if fresh and self.settings.chroma_url:  # a shared server may change under us
            fresh = current.get("stamp") == self._stamp(get_all(col, [])["ids"])
        if not fresh and not self._pending().exists():  # while an ingest runs, read the last index
            with self.writing():
                self.sync_bm25(col)
            current = self._current()
        if not current.get("dir"):
            return None
        import bm25s

        # Memory-mapped: the score arrays and the corpus are read from disk as
        # questions need them, so a large collection loads in constant time.
        model = bm25s.BM25.load(str(self.bm25_dir() / current["dir"]), load_corpus=True,
                                mmap=True, show_progress=False)
        model.version_dir = self.bm25_dir() / current["dir"]  # where its rows are (`keyword_index`)
        return model


HEADER_KEYS = ("title", "section")


def with_header(node: Any, fits: Callable[[str], bool] | None = None) -> Any:
    """Have the embedder and BM25 read a chunk under its headings: the title
    of its document and of its section, each on a line above its text
    (LlamaIndex's embed metadata mode). A chunk cut from the middle of a
    section ("This is useful for modelling things like tags ...") is then
    found by what the section is about ("Facet by JSON array"). Chroma stores,
    and answers quote, the text alone; the model is shown no header.

    `fits` says whether an embedded text fits the embedder's window: when the
    headings would push the chunk's last words out of it, the section's title
    alone is kept, else the document's, else none."""
    meta = node.metadata
    shown = [k for k in HEADER_KEYS if meta.get(k)]
    if "section" in shown and meta.get("section") == meta.get("title"):
        shown.remove("section")
    node.excluded_llm_metadata_keys = list(meta)
    node.metadata_template = "{value}"
    for keys in (shown, [k for k in shown if k == "section"], [k for k in shown if k == "title"], []):
        node.excluded_embed_metadata_keys = [k for k in meta if k not in keys]
        if fits is None or not keys or fits(embed_text(node)):
            break
    return node


def headed_node(cid: str, text: str, meta: dict) -> Any:
    """A stored chunk as a LlamaIndex TextNode under its headings: what BM25
    indexes (paths and hashes are not words)."""
    from llama_index.core.schema import TextNode

    return with_header(TextNode(id_=cid, text=text or "",
                                metadata={k: meta.get(k) for k in FILE_KEYS if k in meta}))


def embed_text(node: Any) -> str:
    """A chunk's text as the embedder reads it (see `with_header`)."""
    from llama_index.core.schema import MetadataMode

    return node.get_content(metadata_mode=MetadataMode.EMBED)


def chunk_from(cid: str, text: str, meta: dict) -> Chunk:
    page = meta.get("page")
    return Chunk(
        id=cid, text=text, source=str(meta.get("source", "?")), title=str(meta.get("title", "")),
        start=int(meta.get("start", 0)), end=int(meta.get("end", 0)),
        content_hash=str(meta.get("content_hash", "")),
        page=int(page) if page not in (None, "", -1) else None,
        section=str(meta.get("section", "") or ""),
    )
