"""Evaluation sets: ragchat's JSON Lines cases and LlamaIndex's LabelledRagDataset.

- `*.jsonl`: one case per line (format in eval/README.md); `source` names the
  file that holds the answer, relative to the working directory or to the
  dataset's folder; the set's sources are those files, plus every folder a
  `{"corpus": "FOLDER"}` line names (ingested whole, so that retrieval has to
  find the answer among all of its files).
- LlamaIndex's `rag_dataset.json` (a file, or a folder holding one): its
  `examples` become cases with reference answers and contexts; its sources are
  the files under `source_files/` beside it, as llama-datasets lays them out.

Errors name the file and the line or example. Left out: LlamaIndex's
`LabelledPydanticDataset` and other dataset classes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from app.errors import RagchatError


class DatasetError(RagchatError):
    pass


@dataclass
class Case:
    id: str
    question: str
    expect_all: list[str] = field(default_factory=list)
    expect_any: list[str] = field(default_factory=list)
    expect_none: list[str] = field(default_factory=list)  # phrases the answer must not hold
    unanswerable: bool = False
    source: str | None = None
    follows: str | None = None
    reference_answer: str | None = None
    reference_contexts: list[str] = field(default_factory=list)

    @property
    def facts(self) -> list[str]:
        return self.expect_all + self.expect_any


@dataclass
class Dataset:
    name: str
    path: Path
    cases: list[Case]
    sources: list[Path]
    card: dict | None = None  # LlamaIndex's card.json, with its published baseline

    @property
    def collection(self) -> str:
        return "eval-" + (re.sub(r"[^A-Za-z0-9_-]+", "-", self.name).strip("-") or "set")[:60]


_FIELDS = {"id", "question", "expect_all", "expect_any", "expect_none", "unanswerable", "source",
           "follows", "reference_answer", "reference_contexts"}


def _resolve(source: str, dataset: Path, folder: bool = False) -> Path | None:
    for base in (Path.cwd(), dataset.parent, dataset.parent.parent):
        if (base / source).is_dir() if folder else (base / source).is_file():
            return (base / source).resolve() if folder else base / source
    return None


def load_jsonl(path: Path) -> Dataset:
    cases: list[Case] = []
    corpus: list[Path] = []
    for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as e:
            raise DatasetError(f"{path} line {no}: not JSON ({e.msg})") from None
        if isinstance(raw, dict) and set(raw) == {"corpus"}:  # the whole folder is ingested
            found = _resolve(raw["corpus"], path, folder=True)
            if found is None:
                raise DatasetError(f"{path} line {no}: corpus folder {raw['corpus']} not found")
            corpus.append(found)
            continue
        if not isinstance(raw, dict) or not raw.get("id") or not raw.get("question"):
            raise DatasetError(f"{path} line {no}: a case needs 'id' and 'question'")
        unknown = set(raw) - _FIELDS
        if unknown:
            raise DatasetError(f"{path} line {no}: unknown field(s) {', '.join(sorted(unknown))}")
        case = Case(**{k: raw[k] for k in raw})
        if not case.unanswerable and not case.facts and not case.reference_answer:
            raise DatasetError(f"{path} line {no}: answerable case {case.id} expects nothing")
        cases.append(case)
    ids = [c.id for c in cases]
    if len(set(ids)) != len(ids):
        raise DatasetError(f"{path}: duplicate case ids")
    seen: set[str] = set()
    for c in cases:
        if c.follows and c.follows not in seen:
            raise DatasetError(f"{path}: case {c.id} follows '{c.follows}', which is not an earlier case")
        seen.add(c.id)
    sources: list[Path] = list(corpus)
    for c in cases:
        if c.source:
            found = _resolve(c.source, path)
            if found is None:
                raise DatasetError(f"{path}: source file {c.source} of case {c.id} not found")
            if any(d in found.resolve().parents for d in corpus):
                continue  # ingested with its corpus folder
            if found not in sources:
                sources.append(found)
    return Dataset(name=path.stem, path=path, cases=cases, sources=sources)


def load_labelled_rag(path: Path) -> Dataset:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        examples = raw["examples"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise DatasetError(f"{path}: not a LabelledRagDataset ({type(e).__name__})") from None
    cases = []
    width = len(str(len(examples)))
    for i, ex in enumerate(examples, start=1):
        if not ex.get("query"):
            raise DatasetError(f"{path}: example {i} has no query")
        cases.append(Case(
            id=f"{path.parent.name}-{i:0{width}d}", question=ex["query"],
            reference_answer=ex.get("reference_answer") or None,
            reference_contexts=list(ex.get("reference_contexts") or []),
        ))
    folder = path.parent / "source_files"
    sources = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
    if not sources:
        raise DatasetError(f"{path}: no source files in {folder}")
    card_file = path.parent / "card.json"
    card = json.loads(card_file.read_text()) if card_file.is_file() else None
    return Dataset(name=path.parent.name, path=path, cases=cases, sources=sources, card=card)


def load(path: Path) -> Dataset:
    """Load a dataset from a .jsonl file, a rag_dataset.json, or a folder holding one."""
    path = Path(path)
    if path.is_dir():
        path = path / "rag_dataset.json"
    if not path.is_file():
        raise DatasetError(f"{path}: no such dataset file")
    if path.suffix == ".jsonl":
        return load_jsonl(path)
    if path.suffix == ".json":
        return load_labelled_rag(path)
    raise DatasetError(f"{path}: use a .jsonl file or LlamaIndex's rag_dataset.json")
