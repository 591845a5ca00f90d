"""The Chroma store and the keyword (BM25) index kept beside it.

Chroma is embedded (PersistentClient under `index_dir/chroma`) unless
`chroma_url` names a server, in which case the same code talks HTTP. Each
collection records the embedder's name and dimension in its metadata; opening
it with another embedder is an error, not silent garbage.

The BM25 index (LlamaIndex's BM25Retriever, on bm25s) is saved under
`index_dir/bm25/<collection>` with a stamp of the chunk ids it was built from.
Ingest rebuilds it; a query only loads it, and rebuilds it from Chroma's
stored texts if the stamp no longer matches (another machine ingested into a
shared server). Left out: access control and multi-tenant databases.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

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
        return chromadb.PersistentClient(path=str(path), settings=cs)
    url = urlparse(settings.chroma_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ConfigError(f"bad setting chroma_url: '{settings.chroma_url}' is not an http(s) URL")
    try:
        return chromadb.HttpClient(
            host=url.hostname, port=url.port or (443 if url.scheme == "https" else 8000),
            ssl=url.scheme == "https", settings=cs,
        )
    except Exception as e:  # chromadb raises bare ValueError/ConnectError here
        raise EndpointError(f"cannot reach Chroma server at {settings.chroma_url} ({e})") from None


@dataclass
class SourceEntry:
    file_hash: str
    ids: list[str] = field(default_factory=list)


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

    def list_collections(self) -> list[Any]:
        return [c for c in self.client.list_collections()]

    # -- what is stored ------------------------------------------------------
    @staticmethod
    def manifest(col: Any) -> dict[str, SourceEntry]:
        """Stored sources with their file hash and chunk ids."""
        got = col.get(include=["metadatas"])
        out: dict[str, SourceEntry] = {}
        for cid, meta in zip(got["ids"], got["metadatas"] or []):
            meta = meta or {}
            entry = out.setdefault(meta.get("source", "?"), SourceEntry(meta.get("file_hash", "")))
            entry.ids.append(cid)
        return out

    # -- BM25 ----------------------------------------------------------------
    def bm25_dir(self) -> Path:
        return self.settings.index_dir / "bm25" / self.name

    @staticmethod
    def _stamp(ids: list[str]) -> str:
        return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()

    def rebuild_bm25(self, col: Any) -> int:
        """Build the BM25 index from every chunk in the collection and save it."""
        from llama_index.core.schema import TextNode

        got = col.get(include=["documents", "metadatas"])
        d = self.bm25_dir()
        if d.exists():
            shutil.rmtree(d)
        if not got["ids"]:
            return 0
        nodes = []
        for i, t, m in zip(got["ids"], got["documents"], got["metadatas"]):
            meta = {k: m.get(k) for k in FILE_KEYS if k in m}
            # BM25 reads the text and the title; paths and hashes are not words.
            nodes.append(TextNode(id_=i, text=t or "", metadata=meta,
                                  excluded_embed_metadata_keys=[k for k in meta if k != "title"]))
        retriever = _bm25_from_nodes(nodes)
        d.mkdir(parents=True, exist_ok=True)
        retriever.persist(str(d), show_progress=False)
        (d / "ragchat_stamp.json").write_text(json.dumps({"stamp": self._stamp(got["ids"]), "count": len(nodes)}))
        return len(nodes)

    def load_bm25(self, col: Any) -> Any | None:
        """The saved BM25 index (a bm25s.BM25 with its corpus), rebuilt first if
        it is missing or stale. Loaded with bm25s itself, not through
        LlamaIndex's wrapper, to keep llama_index out of the query path's
        start-up (its import alone takes 0.7 s)."""
        d = self.bm25_dir()
        stamp_file = d / "ragchat_stamp.json"
        count = col.count()
        if count == 0:
            return None
        fresh = False
        if stamp_file.is_file():
            saved = json.loads(stamp_file.read_text())
            fresh = saved.get("count") == count
            if fresh and self.settings.chroma_url:  # a shared server may change under us
                fresh = saved.get("stamp") == self._stamp(col.get(include=[])["ids"])
        if not fresh:
            self.rebuild_bm25(col)
        import bm25s

        return bm25s.BM25.load(str(d), load_corpus=True, show_progress=False)


def _bm25_from_nodes(nodes: list) -> Any:
    import Stemmer
    from llama_index.retrievers.bm25 import BM25Retriever

    return BM25Retriever.from_defaults(
        nodes=nodes, stemmer=Stemmer.Stemmer("english"), language="english",
        similarity_top_k=min(20, len(nodes)),
    )


def chunk_from(cid: str, text: str, meta: dict) -> Chunk:
    page = meta.get("page")
    return Chunk(
        id=cid, text=text, source=str(meta.get("source", "?")), title=str(meta.get("title", "")),
        start=int(meta.get("start", 0)), end=int(meta.get("end", 0)),
        content_hash=str(meta.get("content_hash", "")),
        page=int(page) if page not in (None, "", -1) else None,
        section=str(meta.get("section", "") or ""),
    )
