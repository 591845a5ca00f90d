"""Ingest: files -> pages -> sentence-aware chunks -> embeddings -> Chroma + BM25.

Incremental and idempotent. A file is identified by its source name (see
`loading.source_name`) and its content hash: an unchanged file is skipped
without loading any model, a changed one has its new chunks written before
its old ones are deleted (so a failure midway loses nothing), and a file gone
from an ingested folder has its chunks removed. A bad file, or one over
`max_file_mb`, is reported in one line and skipped; whatever it had in the
index before stays there.

One ingest writes at a time (`Store.writing`: a lock file; a second one says
it is waiting). A `kill -9` at any point leaves Chroma consistent chunk by
chunk, and the next ingest or query repairs the rest: a file whose stored
chunks carry another hash than its own is ingested again (its leftovers
deleted), and a BM25 index left pending is rebuilt from Chroma.

Chunks are cut by LlamaIndex's SentenceSplitter, measured in the embedder's
own word pieces so that no chunk is longer than the 256 pieces it reads. Long
texts reach the splitter in blocks of about 100,000 characters (cut at a
paragraph, line, sentence or word break), so splitting time stays linear in a
file's size whatever its line structure, and chunks are embedded and written
in batches under Chroma's maximum batch size, so memory stays bounded.
Left out: de-duplication of identical files under different names.
"""

from __future__ import annotations

import bisect
import hashlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app import embedding, loading, text
from app.errors import BadFileError
from app.settings import Settings
from app.store import Store, embed_text, with_header
from app.types import IngestReport

Progress = Callable[[int, int, str, int], None]  # (files done, files, current file, chunks written)
BLOCK_CHARS = 100_000  # longest text handed to the sentence splitter at once
WRITE_BATCH = 256      # chunks embedded and written together (capped by Chroma's maximum)


def make_splitter(settings: Settings) -> Any:
    from llama_index.core.node_parser import SentenceSplitter
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(embedding.model_dir(settings) / "tokenizer.json"))
    tok.no_padding()  # tokenizer.json pads and truncates to 128: count real pieces
    tok.no_truncation()
    return SentenceSplitter(
        chunk_size=settings.chunk_size,
        chunk_overlap=settings.chunk_overlap,
        tokenizer=lambda text: tok.encode(text, add_special_tokens=False).ids,
        # Sentence ends as the rest of ragchat finds them. LlamaIndex's default is
        # NLTK's Punkt with untrained parameters, and importing NLTK took 2.3 s
        # of every ingest process (it loads scipy.stats).
        chunking_tokenizer_fn=text.sentence_spans,
    )


class Sections:
    """Where a text's heading lines ("# Title", as Markdown writes them and as
    .rst is read) start, so that a chunk cut mid-section still knows its section."""

    def __init__(self, text: str):
        self.text = text
        self.starts = [m.start() for m in re.finditer(r"(?m)^#", text)]

    def at(self, start: int) -> str:
        i = bisect.bisect_right(self.starts, start) - 1
        if i < 0:
            return ""
        return text.title_at(self.text, self.starts[i])


def blocks(text: str, size: int = BLOCK_CHARS) -> Iterator[tuple[int, str]]:
    """(offset, piece) of `text` in pieces of at most `size` characters, each cut
    at the last paragraph, line, sentence or word break of its second half
    where there is one (else at `size`)."""
    start, n = 0, len(text)
    while start < n:
        end = min(start + size, n)
        if end < n:
            for sep in ("\n\n", "\n", ". ", " "):
                cut = text.rfind(sep, start + size // 2, end)
                if cut >= 0:
                    end = cut + len(sep)
                    break
        yield start, text[start:end]
        start = end


def split_pages(splitter: Any, pages: list[loading.Page], source: str, fhash: str) -> list[Any]:
    """Chunks of one file as LlamaIndex TextNodes, with ragchat's metadata."""
    from llama_index.core import Document

    nodes = []
    for page in pages:
        meta = {"source": source, "title": page.title, "file_hash": fhash}
        if page.page is not None:
            meta["page"] = page.page
        sections = Sections(page.text)
        for offset, block in blocks(page.text):
            doc = Document(text=block, metadata=dict(meta))
            doc.excluded_embed_metadata_keys = list(meta) + ["start", "end", "content_hash", "section"]
            doc.excluded_llm_metadata_keys = list(doc.excluded_embed_metadata_keys)
            nodes.extend(_chunks(splitter, doc, block, offset, sections, source, page.page))
    return nodes


def _chunks(splitter: Any, doc: Any, block: str, offset: int, sections: Sections,
            source: str, page: int | None) -> list[Any]:
    nodes = []
    for node in splitter.get_nodes_from_documents([doc]):
        text = node.get_content()
        start = offset + (node.start_char_idx if node.start_char_idx is not None else block.find(text))
        end = start + len(text)
        node.metadata.update(
            start=start, end=end,
            content_hash=hashlib.sha256(text.encode()).hexdigest()[:16],
            section=sections.at(start),
        )
        node.id_ = hashlib.sha256(f"{source}\0{page}\0{start}\0{text}".encode()).hexdigest()[:32]
        node.relationships = {}  # the id is ours; no links to a docstore we don't keep
        # Set after splitting, so the headings do not change where chunks are cut,
        # and kept only as far as they leave the whole chunk in the embedder's window.
        with_header(node, fits=lambda t: len(splitter._tokenizer(t)) <= embedding.MAX_WORD_PIECES - 2)
        nodes.append(node)
    return nodes


@dataclass
class _File:
    """A file whose chunks the writer holds: `left` of them not yet written."""

    source: str
    fhash: str
    old: Any  # its SourceEntry before this ingest, or None for a new file
    nodes: list
    left: int


class _Writer:
    """Embeds and writes chunks in batches of `size` that may span files, so that
    many small files cost one encoder call and one Chroma write per batch, not
    one per file; a changed file is written at once, with what was waiting. The
    pending mark names every file whose chunks are part-written ("adding") and
    every changed file whose old chunks are being deleted ("deleting"), for the
    repair after a crash (`Store.drop_part_written`). A file is reported added
    or updated once all its chunks are written (and a changed file's stale ones
    deleted)."""

    def __init__(self, store: Store, col: Any, encode: Callable, vector_store: Any, size: int,
                 report: IngestReport, progress: Callable[[int], None]):
        self.store, self.col, self.encode, self.vector_store = store, col, encode, vector_store
        self.size, self.report, self.progress = size, report, progress
        self.buffer: list[tuple[str, Any]] = []  # (source, node) not yet written
        self.files: list[_File] = []  # in the order they came, until reported
        self.written: set[str] = set()  # ids of every chunk written

    def add(self, source: str, fhash: str, old: Any, nodes: list) -> None:
        self.files.append(_File(source, fhash, old, nodes, len(nodes)))
        self.buffer.extend((source, n) for n in nodes)
        # a changed file is replaced at once: its new version does not wait on later files
        while len(self.buffer) >= self.size or (old and self.buffer):
            self._write(self.size)
        self._complete()

    def finish(self) -> None:
        while self.buffer:
            self._write(self.size)
        self._complete()

    def _steps(self, deleting: _File | None = None) -> list[tuple[str, str, str]]:
        steps = [(f.source, f.fhash, "adding") for f in self.files if f.left > 0]
        if deleting:
            steps.append((deleting.source, deleting.fhash, "deleting"))
        return steps

    def _write(self, n: int) -> None:
        part = self.buffer[:n]
        self.store.mark_pending(self._steps())  # from the first write until BM25 matches again
        nodes = [node for _, node in part]
        vectors = self.encode([embed_text(node) for node in nodes])
        for node, vec in zip(nodes, vectors):
            node.embedding = vec
        if not (self.col.metadata or {}).get("dimension") and len(vectors):
            self.col.modify(metadata={**(self.col.metadata or {}), "dimension": len(vectors[0])})
        self.vector_store.add(nodes)  # upsert: ids are stable for unchanged chunks
        self.written.update(node.id_ for node in nodes)
        del self.buffer[:n]
        count: dict[str, int] = {}
        for source, _ in part:
            count[source] = count.get(source, 0) + 1
        for f in self.files:
            taken = min(f.left, count.get(f.source, 0))
            f.left -= taken
            count[f.source] = count.get(f.source, 0) - taken
        unreported = sum(len(f.nodes) - f.left for f in self.files)
        self.progress(self.report.chunks + unreported)

    def _complete(self) -> None:
        """Report the files whose chunks are all written, in the order they came."""
        done = False
        while self.files and self.files[0].left == 0:
            f = self.files.pop(0)
            done = True
            if f.old:
                self.store.mark_pending(self._steps(deleting=f))
                stale = sorted(set(f.old.ids) - {node.id_ for node in f.nodes})
                for b in range(0, len(stale), self.size):
                    self.col.delete(ids=stale[b:b + self.size])
                self.report.updated.append(f.source)
            else:
                self.report.added.append(f.source)
            self.report.chunks += len(f.nodes)
        if done:  # the mark no longer names them
            self.store.mark_pending(self._steps())


def ingest(
    settings: Settings,
    paths: list[Path],
    progress: Progress | None = None,
    store: Store | None = None,
    waiting: Callable[[str], None] | None = None,
    embedder: Callable[[], embedding.OnnxEmbedder] | None = None,
    fresh: Callable[[], Store] | None = None,
) -> IngestReport:
    """Ingest `paths` into the collection; `waiting` hears one line when another
    ingest holds the index and this one waits for it; `embedder` gives the ONNX
    embedder already loaded (a server's), when there is one; `fresh`, called
    once the ingest lock is held, gives the store to write through (a server's
    client is reopened there when another process ingested since it loaded the
    index: writing through a stale vector index could overwrite theirs)."""
    store = store or Store(settings)
    with store.writing(waiting):
        if fresh is not None:
            store = fresh()
        return _ingest(settings, paths, progress, store, embedder)


def _ingest(settings: Settings, paths: list[Path], progress: Progress | None,
            store: Store, embedder: Callable[[], embedding.OnnxEmbedder] | None = None,
            ) -> IngestReport:
    t0 = time.perf_counter()
    report = IngestReport()
    files, folders, problems, skipped = loading.find_files(paths)
    report.failed.update(problems)
    report.skipped.update(skipped)

    name = embedding.embedder_name(settings)
    col = store.open(name, create=True)
    healing = store.interrupted()  # an ingest was cut short: BM25 is built again from Chroma
    store.drop_part_written(col)  # a crash's leftovers go before the manifest is read
    manifest = store.manifest(col)
    batch = max(1, min(WRITE_BATCH, store.max_batch_size()))
    limit = int(settings.max_file_mb * 1048576)
    base = settings.project_dir()

    encode = None
    vector_store = None
    writer = None
    splitter = None
    seen: set[str] = set()
    for i, path in enumerate(files):
        source = loading.source_name(path, base)
        seen.add(source)
        if progress:
            progress(i, len(files), source, report.chunks)
        try:
            size = path.stat().st_size
            if size > limit:
                report.failed[source] = (f"{source}: {size / 1048576:.1f} MB is over the "
                                         f"{settings.max_file_mb:g} MB limit (RAGCHAT_MAX_FILE_MB)")
                continue
            fhash = loading.file_hash(path, f"{settings.chunk_size}:{settings.chunk_overlap}")
        except OSError as e:
            report.failed[source] = f"{source}: cannot read ({e.strerror})"
            continue
        old = manifest.get(source)
        if old and old.holds(fhash):
            report.unchanged.append(source)
            continue
        try:
            pages = loading.read_file(path)
        except BadFileError as e:
            report.failed[source] = str(e)
            continue
        except Exception as e:  # a reader library's own error (a malformed XML part, ...)
            detail = " ".join(str(e).split())[:160]
            report.failed[source] = f"{source}: could not be read ({type(e).__name__}: {detail})"
            continue
        if splitter is None:
            splitter = make_splitter(settings)
            encode = embedding.document_encoder(
                settings, embedder() if embedder and settings.ingest_embedder == "onnx" else None)
            from llama_index.vector_stores.chroma import ChromaVectorStore

            vector_store = ChromaVectorStore(chroma_collection=col)
        if writer is None:
            def written(chunks: int) -> None:  # reads the loop's current file when called
                if progress:
                    progress(i, len(files), source, chunks)

            writer = _Writer(store, col, encode, vector_store, batch, report, written)
        writer.add(source, fhash, old, split_pages(splitter, pages, source, fhash))
    if writer is not None:
        writer.finish()
    if progress:
        progress(len(files), len(files), "", report.chunks)

    for folder in folders:
        prefix = loading.source_name(folder, base).rstrip("/") + "/"
        if prefix == "./":
            prefix = ""
        for source, entry in manifest.items():
            if source.startswith(prefix) and source not in seen and not (
                    loading.source_path(source, base).is_file()):
                store.mark_pending()
                for b in range(0, len(entry.ids), batch):
                    col.delete(ids=entry.ids[b:b + batch])
                report.removed.append(source)

    # the chunks not written again keep their BM25 rows; heals an index a crash left behind
    report.total_chunks = store.sync_bm25(
        col, rewritten=None if healing else writer.written if writer else set())
    onnx = embedding.onnx_path(settings)
    if not onnx.is_file() and report.total_chunks:  # questions need it
        embedding.load_embedder(settings)
    report.seconds = time.perf_counter() - t0
    return report
