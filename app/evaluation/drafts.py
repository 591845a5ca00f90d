"""Scripted drafts, labelled by hand, put to a verifier: how many faithful
drafts it keeps whole and how many wrong ones it keeps nothing of.

A line of a drafts set (eval/drafts/*.jsonl):
{"id": ..., "sources": [passage, ...], "draft": "... [1].", "faithful": true|false, "kind": ...}

The label is the only judge: nothing here reads the draft or the sources."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class DraftCase:
    id: str
    sources: list[str]
    draft: str
    faithful: bool
    kind: str = ""


@dataclass
class DraftReport:
    cases: list[DraftCase]
    kept: dict[str, bool] = field(default_factory=dict)  # id -> the whole draft was kept
    none_kept: dict[str, bool] = field(default_factory=dict)  # id -> no sentence was kept
    reasons: dict[str, str] = field(default_factory=dict)

    def share(self, faithful: bool) -> float:
        group = [c for c in self.cases if c.faithful == faithful]
        ok = [c for c in group if (self.kept[c.id] if faithful else self.none_kept[c.id])]
        return len(ok) / len(group) if group else 0.0

    def errors(self) -> list[DraftCase]:
        return [c for c in self.cases
                if (not self.kept[c.id] if c.faithful else not self.none_kept[c.id])]


def load(path: Path) -> list[DraftCase]:
    cases = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as e:
            raise ValueError(f"{path}:{n}: not JSON ({e})") from None
        missing = [k for k in ("id", "sources", "draft", "faithful") if not isinstance(row, dict) or k not in row]
        if missing:
            raise ValueError(f"{path}:{n}: a drafts case needs {', '.join(repr(k) for k in missing)}")
        cases.append(DraftCase(id=str(row["id"]), sources=[str(x) for x in row["sources"]],
                               draft=str(row["draft"]), faithful=bool(row["faithful"]),
                               kind=str(row.get("kind", ""))))
    if not cases:
        raise ValueError(f"{path}: no cases")
    return cases


def run(verifier, cases: list[DraftCase]) -> DraftReport:
    report = DraftReport(cases=cases)
    for c in cases:
        result = verifier.check(c.draft, c.sources)
        report.kept[c.id] = not result.dropped and bool(result.kept)
        report.none_kept[c.id] = not result.kept
        report.reasons[c.id] = "; ".join(v.reason for v in result.dropped)
    return report
