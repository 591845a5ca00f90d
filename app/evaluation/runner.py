"""Run an evaluation set through the real engine (and, if asked, the naive
baseline) and write the results.

The set's source files are ingested into a collection of its own
(`eval-<name>`, incremental like any ingest). Follow-up cases get the earlier
case's question as retrieved, exactly as the chat does. Every answer and its
per-case figures go to results.jsonl; the summaries are computed from those
rows (see `metrics.summarise`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from app import embedding
from app.engine import Engine
from app.evaluation import metrics
from app.evaluation.datasets import Dataset
from app.errors import RagchatError


@dataclass
class RunResult:
    dataset: Dataset
    rows: dict[str, list[dict]] = field(default_factory=dict)  # system -> per-case rows
    summaries: dict[str, dict] = field(default_factory=dict)
    ingest_summary: str = ""


def run(engine: Engine, dataset: Dataset, baseline: str | None = None, limit: int | None = None,
        progress: bool = True, every: int = 1) -> RunResult:
    from tqdm import tqdm

    eng = engine.variant(collection=dataset.collection)
    report = eng.ingest(dataset.sources)
    if not report.ok:
        raise RagchatError("could not ingest the set's sources: " + "; ".join(report.failed.values()))
    result = RunResult(dataset=dataset, ingest_summary=report.summary())
    cases = dataset.cases[:limit] if limit else dataset.cases
    cases = cases[::every]
    # A follow-up needs the case it follows, even when --limit cuts the set short.
    keep = {c.id for c in cases}
    cases = [c for c in dataset.cases if c.id in keep or any(
        k.follows == c.id for k in dataset.cases if k.id in keep)]

    systems = {"ragchat": None}
    if baseline == "naive":
        from app.evaluation.baseline import NaiveBaseline

        systems["naive"] = NaiveBaseline(
            eng.settings, eng.store.open(embedding.embedder_name(eng.settings)))
    elif baseline:
        raise RagchatError(f"unknown baseline '{baseline}' (use: naive)")

    for system, other in systems.items():
        rows: list[dict] = []
        queries: dict[str, str] = {}
        bar = tqdm(cases, desc=f"{dataset.name} · {system}", unit="case", disable=not progress,
                   leave=False)
        for case in bar:
            if other is None:
                history = [queries[case.follows]] if case.follows in queries else []
                answer = eng.ask(case.question, history=history)
            else:  # the naive engine has no conversation: it sees the question alone
                answer = other.ask(case.question)
            queries[case.id] = answer.query
            a = answer.to_dict()
            row = {"id": case.id, "system": system, "question": case.question,
                   "unanswerable": case.unanswerable, "expect_all": case.expect_all,
                   "expect_any": case.expect_any, "expect_none": case.expect_none,
                   "follows": case.follows, "answer": a}
            row.update(metrics.score_case(case, a, eng.embedder))
            rows.append(row)
        result.rows[system] = rows
        result.summaries[system] = metrics.summarise(rows)
    return result


def write_results(result: RunResult, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for rows in result.rows.values():
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def read_results(path: Path) -> dict[str, list[dict]]:
    by_system: dict[str, list[dict]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        by_system.setdefault(row["system"], []).append(row)
    return by_system
