"""Ingest: files -> pages -> sentence-aware chunks -> embeddings -> Chroma + BM25.

Incremental and idempotent. A file is identified by its source name (see
`loading.source_name`) and its content hash: an unchanged file is skipped
without loading any model, a changed one has its new chunks written before
its old ones are deleted (so a failure midway loses nothing), and a file gone
from an ingested folder has its chunks removed. A bad file is reported and
skipped; whatever it had in the index before stays there.

Chunks are cut by LlamaIndex's SentenceSplitter, measured in the embedder's
own word pieces so that no chunk is longer than the 256 pieces it reads.
Left out: de-duplication of identical files under different names.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app import embedding, loading
from app.errors import BadFileError
from app.settings import Settings
from app.store import Store
from app.types import IngestReport

Progress = Callable[[int, int, str], None]  # (done, total, current file)


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
    )


def section_at(text: str, start: int) -> str:
    """The title of the last heading line ("# Title", as Markdown writes it and as
    .rst is read) before `start`: a chunk cut mid-section still knows its section."""
    cut = text.rfind("\n#", 0, start + 1)
    if cut < 0:
        if not text.startswith("#"):
            return ""
        cut = -1
    line = text[cut + 1:].split("\n", 1)[0]
    return line.lstrip("#").strip()[:200]


def split_pages(splitter: Any, pages: list[loading.Page], source: str, fhash: str) -> list[Any]:
    """Chunks of one file as LlamaIndex TextNodes, with ragchat's metadata."""
    from llama_index.core import Document

    nodes = []
    for page in pages:
        meta = {"source": source, "title": page.title, "file_hash": fhash}
        if page.page is not None:
            meta["page"] = page.page
        doc = Document(text=page.text, metadata=meta)
        doc.excluded_embed_metadata_keys = list(meta) + ["start", "end", "content_hash", "section"]
        doc.excluded_llm_metadata_keys = list(doc.excluded_embed_metadata_keys)
        for node in splitter.get_nodes_from_documents([doc]):
            text = node.get_content()
            start = node.start_char_idx if node.start_char_idx is not None else page.text.find(text)
            end = start + len(text)
            node.metadata.update(
                start=start, end=end,
                content_hash=hashlib.sha256(text.encode()).hexdigest()[:16],
                section=section_at(page.text, start),
            )
            node.id_ = hashlib.sha256(
                f"{source}\0{page.page}\0{start}\0{text}".encode()
            ).hexdigest()[:32]
            node.relationships = {}  # the id is ours; no links to a docstore we don't keep
            nodes.append(node)
    return nodes


def ingest(
    settings: Settings,
    paths: list[Path],
    progress: Progress | None = None,
    store: Store | None = None,
) -> IngestReport:
    t0 = time.perf_counter()
    report = IngestReport()
    store = store or Store(settings)
    files, folders, problems, skipped = loading.find_files(paths)
    report.failed.update(problems)
    report.skipped.update(skipped)

    name = embedding.embedder_name(settings)
    col = store.open(name, create=True)
    manifest = store.manifest(col)

    doc_embedder = None
    vector_store = None
    splitter = None
    seen: set[str] = set()
    changed = False
    for i, path in enumerate(files):
        source = loading.source_name(path)
        seen.add(source)
        if progress:
            progress(i, len(files), source)
        try:
            fhash = loading.file_hash(path, f"{settings.chunk_size}:{settings.chunk_overlap}")
        except OSError as e:
            report.failed[source] = f"{source}: cannot read ({e.strerror})"
            continue
        old = manifest.get(source)
        if old and old.file_hash == fhash:
            report.unchanged.append(source)
            continue
        try:
            pages = loading.read_file(path)
        except BadFileError as e:
            report.failed[source] = str(e)
            continue
        if splitter is None:
            splitter = make_splitter(settings)
            doc_embedder = embedding.load_document_embedder(settings)
            from llama_index.vector_stores.chroma import ChromaVectorStore

            vector_store = ChromaVectorStore(chroma_collection=col)
        nodes = split_pages(splitter, pages, source, fhash)
        vectors = doc_embedder.get_text_embedding_batch([n.get_content() for n in nodes])
        for node, vec in zip(nodes, vectors):
            node.embedding = vec
        if not (col.metadata or {}).get("dimension") and vectors:
            col.modify(metadata={**(col.metadata or {}), "dimension": len(vectors[0])})
        vector_store.add(nodes)  # upsert: ids are stable for unchanged chunks
        if old:
            stale = sorted(set(old.ids) - {n.id_ for n in nodes})
            if stale:
                col.delete(ids=stale)
            report.updated.append(source)
        else:
            report.added.append(source)
        report.chunks += len(nodes)
        changed = True
    if progress:
        progress(len(files), len(files), "")

    for folder in folders:
        prefix = loading.source_name(folder).rstrip("/") + "/"
        if prefix == "./":
            prefix = ""
        for source, entry in manifest.items():
            if source.startswith(prefix) and source not in seen and not Path(source).exists():
                col.delete(ids=entry.ids)
                report.removed.append(source)
                changed = True

    if changed or not (store.bm25_dir() / "ragchat_stamp.json").is_file():
        store.rebuild_bm25(col)
    onnx = embedding.onnx_path(settings)
    if not onnx.is_file() and col.count():
        embedding.export_onnx(doc_embedder or embedding.load_document_embedder(settings), onnx)
    report.total_chunks = col.count()
    report.seconds = time.perf_counter() - t0
    return report
