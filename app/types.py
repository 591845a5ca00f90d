"""The engine's own result types: plain dataclasses every adapter can render.

The engine never hands LlamaIndex or Chroma objects to the CLI, the web UI or
the evaluation runner; these types are what crosses that line, and `to_dict`
is what JSON carries. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

Mode = Literal["generated", "extractive", "refused"]


@dataclass(frozen=True)
class Chunk:
    """A piece of a source document, as stored in the index."""

    id: str
    text: str
    source: str  # path relative to where ingest ran (or absolute if outside it)
    title: str
    start: int  # character offsets in the document's extracted text
    end: int
    content_hash: str  # sha256 of the chunk text
    page: int | None = None  # 1-based, for formats that have pages
    section: str = ""  # title of the section the chunk starts in ("# Title" lines), if any

    @property
    def headed(self) -> str:
        """The text under the titles of its document and section, as retrieval
        reads it (`app.store.with_header`): what the passage is about."""
        return "\n".join(dict.fromkeys(t for t in (self.title, self.section, self.text) if t))


@dataclass(frozen=True)
class Hit:
    """A chunk found by retrieval, with its fused score and its dense similarity."""

    chunk: Chunk
    score: float  # reciprocal-rank-fusion score: higher is better
    similarity: float  # cosine similarity of question and chunk (dense), 0 if unknown


@dataclass(frozen=True)
class Citation:
    """Source [n] of an answer: the chunk, the passage that supports the claim."""

    n: int
    chunk: Chunk
    quote: str
    score: float


@dataclass
class Answer:
    text: str
    citations: list[Citation]
    mode: Mode
    grounded: bool
    question: str  # as asked
    query: str  # as retrieved, after condensing with the conversation
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    dropped: list[str] = field(default_factory=list)  # draft sentences the check removed
    note: str = ""  # why the answer is extractive or refused, in one line
    retrieved: list[Hit] = field(default_factory=list)  # every source retrieved, cited or not

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Answer:
        """The Answer `to_dict` gave (as JSON carried it)."""
        return cls(**{
            **d,
            "citations": [Citation(**{**c, "chunk": Chunk(**c["chunk"])}) for c in d["citations"]],
            "retrieved": [Hit(**{**h, "chunk": Chunk(**h["chunk"])})
                          for h in d.get("retrieved", [])],
        })


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # source -> one-line reason
    skipped: dict[str, str] = field(default_factory=dict)  # file in a folder not read -> why
    chunks: int = 0  # chunks written by this ingest
    total_chunks: int = 0  # chunks in the collection afterwards
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        line = (
            f"{len(self.added)} added, {len(self.updated)} updated, "
            f"{len(self.unchanged)} unchanged, {len(self.removed)} removed, "
            f"{len(self.failed)} failed; {self.chunks} chunks written, "
            f"{self.total_chunks} in collection; {self.seconds:.1f} s"
        )
        if self.skipped:
            why: dict[str, list[str]] = {}
            for source, reason in sorted(self.skipped.items()):
                why.setdefault(reason, []).append(source.rsplit("/", 1)[-1])
            shown = "; ".join(f"{reason}: {', '.join(names[:5])}"
                              + (f" and {len(names) - 5} more" if len(names) > 5 else "")
                              for reason, names in why.items())
            line += f"; {len(self.skipped)} skipped ({shown})"
        return line


@dataclass
class CollectionStats:
    name: str
    files: int
    chunks: int
    embedder: str
    dimension: int
    sources: list[str] = field(default_factory=list)
