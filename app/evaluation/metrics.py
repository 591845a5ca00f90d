"""Metric functions: per case (`score_case`) and over a run (`summarise`).

Every per-case figure is stored in results.jsonl, and `summarise` works from
those records alone, so a report can always be recomputed from its results.
Facts are compared after the grounding check's normalisation ("$50 billion",
"50 billion dollars", "50bn", thousands separators, case). ROUGE-L comes from
Google's rouge-score; token F1 is SQuAD's definition.

Left out: LLM-judged correctness, faithfulness and relevancy (LlamaIndex's
card uses gpt-4 for those; no judge model runs offline here).
"""

from __future__ import annotations

import re
import statistics
import string
from collections import Counter

from app import grounding
from app.evaluation.datasets import Case

HIGHER_IS_BETTER = {
    "hit_rate", "mrr", "context_similarity", "fact_accuracy", "token_f1", "rouge_l",
    "citation_precision", "cited_share", "unanswerable_refused", "tokens_per_second",
}
LOWER_IS_BETTER = {"answerable_refused", "unsupported_claims", "latency_p50", "latency_p95"}
METRICS = sorted(HIGHER_IS_BETTER | LOWER_IS_BETTER)


def fact_found(fact: str, text: str) -> bool:
    return grounding.occurs(grounding.normalise(fact).strip(), grounding.normalise(text))


def fact_correct(text: str, expect_all: list[str], expect_any: list[str]) -> bool:
    return all(fact_found(f, text) for f in expect_all) and (
        not expect_any or any(fact_found(f, text) for f in expect_any))


def _shingles(text: str, n: int = 3) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i:i + n]) for i in range(max(1, len(words) - n + 1))}


def overlaps(chunk: str, reference: str, threshold: float = 0.5) -> bool:
    """Whether most of the chunk's word trigrams (or of the reference's, when it is
    the shorter) stand in the reference context."""
    a, b = _shingles(chunk), _shingles(reference)
    if not a or not b:
        return False
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    return len(small & large) / len(small) >= threshold


def is_hit(chunk_text: str, case: Case) -> bool:
    return any(fact_found(f, chunk_text) for f in case.facts) or any(
        overlaps(chunk_text, ref) for ref in case.reference_contexts)


def _normalise_answer(text: str) -> list[str]:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return text.split()


def token_f1(prediction: str, reference: str) -> float:
    pred, ref = _normalise_answer(prediction), _normalise_answer(reference)
    common = Counter(pred) & Counter(ref)
    same = sum(common.values())
    if not pred or not ref or same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


_rouge = None


def rouge_l(prediction: str, reference: str) -> float:
    global _rouge
    if _rouge is None:
        from rouge_score import rouge_scorer

        _rouge = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return _rouge.score(reference, prediction)["rougeL"].fmeasure


def citation_pairs(answer: dict) -> tuple[int, int]:
    """(precise, total) over every (sentence, cited source) pair of an answer.
    A pair is precise when the cited chunk holds the sentence's figures and
    names: all of them if it is the sentence's only citation, at least one if
    the sentence cites several; a sentence with neither needs shared words."""
    chunks = {c["n"]: c["chunk"]["text"] for c in answer.get("citations", [])}
    precise = total = 0
    for sent in grounding.split_sentences(answer.get("text", "")):
        marks = sorted(set(grounding.cited_numbers(sent)))
        if not marks:
            continue
        figures, names = grounding.facts(sent)
        facts = figures + names
        for n in marks:
            total += 1
            text = chunks.get(n)
            if text is None:
                continue  # a mark naming no listed source is imprecise
            norm = grounding.normalise(text)
            held = [f for f in facts if grounding.occurs(f, norm)]
            if facts:
                ok = len(held) == len(facts) if len(marks) == 1 else bool(held)
            else:
                ok = bool(grounding.content_words(sent) & grounding.content_words(text))
            precise += ok
    return precise, total


def unsupported(answer: dict) -> list[str]:
    """Figures and names of the answer found in none of the retrieved sources."""
    if answer.get("mode") == "refused":
        return []
    sources = " ".join(h["chunk"]["text"] for h in answer.get("retrieved", []))
    norm = grounding.normalise(sources)
    figures, names = [], []
    for sent in grounding.split_sentences(answer.get("text", "")):
        f, n = grounding.facts(sent)
        figures += f
        names += n
    return sorted({x for x in figures + names if not grounding.occurs(x, norm)})


def score_case(case: Case, answer: dict, embedder=None) -> dict:
    """Per-case figures for one answer (the Answer as a dict)."""
    refused = answer.get("mode") == "refused"
    retrieved = [h["chunk"]["text"] for h in answer.get("retrieved", [])]
    row: dict = {"refused": refused, "unsupported": unsupported(answer)}
    answerable = not case.unanswerable
    if answerable and (case.facts or case.reference_contexts):
        ranks = [i for i, t in enumerate(retrieved, start=1) if is_hit(t, case)]
        row["retrieval_hit"] = bool(ranks)
        row["reciprocal_rank"] = 1.0 / ranks[0] if ranks else 0.0
    if answerable and case.reference_contexts and retrieved and embedder is not None:
        vecs = embedder.embed(retrieved + case.reference_contexts)
        got, ref = vecs[:len(retrieved)].mean(axis=0), vecs[len(retrieved):].mean(axis=0)
        row["context_similarity"] = float(got @ ref / ((got @ got) ** 0.5 * (ref @ ref) ** 0.5))
    if answerable and case.facts:
        row["fact_correct"] = fact_correct(answer.get("text", ""), case.expect_all, case.expect_any)
    if case.reference_answer:
        row["token_f1"] = token_f1(answer.get("text", ""), case.reference_answer)
        row["rouge_l"] = rouge_l(answer.get("text", ""), case.reference_answer)
    precise, total = citation_pairs(answer)
    row["citation_precise"], row["citation_total"] = precise, total
    if not refused:
        row["cited"] = bool(answer.get("citations")) and total > 0
    timings = answer.get("timings", {})
    row["latency"] = float(timings.get("total", 0.0))
    row["tokens"] = float(timings.get("tokens", 0.0))
    row["generate_seconds"] = float(timings.get("generate", 0.0))
    return row


def _mean(values: list) -> float | None:
    values = [float(v) for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def summarise(rows: list[dict]) -> dict:
    """Run-level metrics from per-case rows (as written to results.jsonl)."""
    answerable = [r for r in rows if not r["unanswerable"]]
    unanswerable = [r for r in rows if r["unanswerable"]]
    answered = [r for r in rows if not r["refused"]]
    total_pairs = sum(r["citation_total"] for r in rows)
    gen_seconds = sum(r["generate_seconds"] for r in rows)
    modes = Counter(r["answer"]["mode"] for r in rows)
    latencies = [r["latency"] for r in rows]
    return {
        "cases": len(rows),
        "hit_rate": _mean([r.get("retrieval_hit") for r in answerable]),
        "mrr": _mean([r.get("reciprocal_rank") for r in answerable]),
        "context_similarity": _mean([r.get("context_similarity") for r in answerable]),
        "fact_accuracy": _mean([r.get("fact_correct") for r in answerable]),
        "token_f1": _mean([r.get("token_f1") for r in rows]),
        "rouge_l": _mean([r.get("rouge_l") for r in rows]),
        "citation_precision": (sum(r["citation_precise"] for r in rows) / total_pairs
                               if total_pairs else None),
        "cited_share": _mean([r.get("cited") for r in answered]),
        "unanswerable_refused": _mean([r["refused"] for r in unanswerable]),
        "answerable_refused": _mean([r["refused"] for r in answerable]),
        "unsupported_claims": _mean([bool(r["unsupported"]) for r in answered]),
        "latency_p50": statistics.median(latencies) if latencies else None,
        "latency_p95": _pct(latencies, 0.95),
        "tokens_per_second": sum(r["tokens"] for r in rows) / gen_seconds if gen_seconds else None,
        "modes": {m: modes.get(m, 0) for m in ("generated", "extractive", "refused")},
    }


def parse_gate(specs: list[str]) -> dict[str, float]:
    gate = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not sep or name not in METRICS:
            raise ValueError(f"bad --fail-under '{spec}': use METRIC=VALUE with METRIC one of "
                             + ", ".join(METRICS))
        try:
            gate[name] = float(value)
        except ValueError:
            raise ValueError(f"bad --fail-under '{spec}': '{value}' is not a number") from None
    return gate


def failures(summary: dict, gate: dict[str, float]) -> list[str]:
    """Gate misses: a higher-is-better metric below its value, a lower-is-better
    one (refusals of answerable cases, unsupported claims, latency) above it."""
    out = []
    for name, bound in gate.items():
        value = summary.get(name)
        if value is None:
            out.append(f"{name} was not measured on this set")
        elif name in HIGHER_IS_BETTER and value < bound:
            out.append(f"{name} {value:.3f} is below {bound:g}")
        elif name in LOWER_IS_BETTER and value > bound:
            out.append(f"{name} {value:.3f} is above {bound:g}")
    return out
