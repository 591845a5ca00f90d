"""Metric functions: per case (`score_case`) and over a run (`summarise`).

Every per-case figure is stored in results.jsonl, and `summarise` works from
those records alone, so a report can always be recomputed from its results.

The metrics share no code with what they grade: nothing here imports the
grounding check, the verifier or the text toolkit. Facts are compared by this
module's own small normaliser (money spellings, thousands separators,
"percent", case; whole words). A claim of an answer is the text up to a run
of [n] marks; a quoted claim (in curly quotes) is supported only when it
stands verbatim in a cited chunk, a claim in the model's own words only when
a plain token alignment holds: every number and capitalised word of it
occurs among the cited chunk's tokens, and so do 70% of its other words
(compared by their first five letters, so "invests" aligns with "investing").
ROUGE-L comes from Google's rouge-score; token F1 is SQuAD's definition.

Left out: LLM-judged correctness, faithfulness and relevancy (LlamaIndex's
card uses gpt-4 for those; no judge model runs offline here).
"""

from __future__ import annotations

import re
import statistics
import string
import unicodedata
from collections import Counter

from app.evaluation.datasets import Case

HIGHER_IS_BETTER = {
    "hit_rate", "mrr", "context_similarity", "fact_accuracy", "token_f1", "rouge_l",
    "citation_precision", "cited_share", "unanswerable_refused", "tokens_per_second",
}
LOWER_IS_BETTER = {"answerable_refused", "unsupported_claims", "expect_none_violations",
                   "repeated_quotes", "latency_p50", "latency_p95"}
METRICS = sorted(HIGHER_IS_BETTER | LOWER_IS_BETTER)

_SCALES = {"k": "thousand", "thousand": "thousand", "m": "million", "mn": "million",
           "million": "million", "b": "billion", "bn": "billion", "billion": "billion",
           "t": "trillion", "tn": "trillion", "trillion": "trillion"}


def norm(text: str) -> str:
    """Lower case, one spelling for amounts: "$50 billion", "50 billion dollars"
    and "50bn" all read "50 billion"; "1,000" reads "1000"; "40 percent" "40%"."""
    t = unicodedata.normalize("NFKC", text).lower()
    t = re.sub(r"[\u2018\u2019]", "'", t)
    t = re.sub(r"(?<=\d),(?=\d{3})", "", t)
    t = re.sub(r"(?<=\d)\s*(?:per\s*cent|percent)\b", "%", t)
    t = re.sub(r"(?:us)?\$\s*(?=\d)", "", t)
    t = re.sub(r"(\d(?:[\d.]*\d)?)\s*(thousand|million|billion|trillion|bn|mn|tn|[kmbt])\b",
               lambda m: f"{m.group(1)} {_SCALES[m.group(2)]}", t)
    t = re.sub(r"\s*\b(?:us\s+)?dollars?\b|\busd\b", "", t)
    return " ".join(t.split())


def fact_found(fact: str, text: str) -> bool:
    """Whole-word occurrence of a fact in a text, both normalised."""
    f = norm(fact)
    return bool(f) and re.search(r"(?<![\w])" + re.escape(f) + r"(?![\w]|\.\d)", norm(text)) is not None


def fact_correct(text: str, expect_all: list[str], expect_any: list[str]) -> bool:
    return all(fact_found(f, text) for f in expect_all) and (
        not expect_any or any(fact_found(f, text) for f in expect_any))


# A quoted passage closes at the curly quote that a citation mark (or the end) follows:
# the passage may hold curly quotes of its own ("smart ID").
_QUOTED = re.compile(r"\u201c(.+?)\u201d(?=\s*\[\d+(?:\s*,\s*\d+)*\]|\s*$)", re.S)
_MARKS = re.compile(r"(?:\s*\[\d+(?:\s*,\s*\d+)*\])+")


def claims(text: str) -> list[tuple[str, list[int]]]:
    """(claim, the source numbers it cites) for every stretch of an answer that a
    run of [n] marks closes (marks inside a curly-quoted passage belong to the
    passage); a last stretch with no mark cites nothing."""
    out, start = [], 0
    quoted = [(q.start(), q.end()) for q in _QUOTED.finditer(text)]
    for m in _MARKS.finditer(text):
        if any(a <= m.start() < b for a, b in quoted):
            continue  # a quoted source's own reference mark ("PoW and PoS [5]")
        claim = text[start:m.start()].strip(" .;,")
        if claim:
            out.append((claim, sorted({int(n) for n in re.findall(r"\d+", m.group(0))})))
        start = m.end()
    rest = text[start:].strip(" .;,")
    if re.search(r"\w", rest):
        out.append((rest, []))
    return out


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+(?:[._/-][a-z0-9]+)*", norm(text))


def _flat(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).split())


_LIGHT = frozenset("the a an of to in on and or is are was were be by for with as at it its this "
                   "that from has have had will can".split())


def supported(claim: str, chunks: list[str]) -> bool:
    """Whether a claim stands in the chunks it cites: quotes verbatim, the
    model's own words by token alignment (see the module docstring)."""
    if not chunks:
        return False
    quotes = _QUOTED.findall(claim)
    if quotes:
        return all(any(_flat(q).strip() in _flat(c) for c in chunks) for q in quotes)
    have = set(_tokens(" ".join(chunks)))
    words = claim.split()
    strict = {t for i, w in enumerate(words) for t in _tokens(w)
              if re.search(r"\d", w) or (i > 0 and w[:1].isupper())}
    if not strict <= have:
        return False
    rest = [t[:5] for t in _tokens(claim) if t not in strict and t not in _LIGHT]
    prefixes = {t[:5] for t in have}  # "invests" and "investing" align
    return not rest or sum(t in prefixes for t in rest) / len(rest) >= 0.7


def citation_pairs(answer: dict) -> tuple[int, int]:
    """(precise, total) over every (claim, cited source) pair of an answer: a
    pair is precise when that source alone supports the claim (a claim that
    cites several needs their union to support it and each to hold some of it)."""
    chunks = {c["n"]: c["chunk"]["text"] for c in answer.get("citations", [])}
    precise = total = 0
    for claim, marks in claims(answer.get("text", "")):
        for n in marks:
            total += 1
            text = chunks.get(n)
            if text is None:
                continue  # a mark naming no listed source is imprecise
            if len(marks) == 1:
                precise += supported(claim, [text])
            else:
                both = [chunks[m] for m in marks if m in chunks]
                precise += supported(claim, both) and bool(
                    set(_tokens(claim)) - _LIGHT & set(_tokens(text)))
    return precise, total


def unsupported(answer: dict) -> list[str]:
    """Claims of an answer (not a refusal) that their cited chunks do not support;
    a claim without a mark must be supported by the retrieved chunks together."""
    if answer.get("mode") == "refused":
        return []
    chunks = {c["n"]: c["chunk"]["text"] for c in answer.get("citations", [])}
    retrieved = [h["chunk"]["text"] for h in answer.get("retrieved", [])]
    out = []
    for claim, marks in claims(answer.get("text", "")):
        cited = [chunks[n] for n in marks if n in chunks] if marks else retrieved
        if not supported(claim, cited):
            out.append(claim)
    return out


def repeated_quotes(answer: dict) -> int:
    """How many quoted sentences of an answer repeat an earlier one of it, or
    stand inside another quote of it (a line quoted alone and again after the
    sentence that introduced it)."""
    quotes = [_flat(q).lower() for q in _QUOTED.findall(answer.get("text", ""))]
    unique = set(quotes)
    inside = sum(any(q != other and f" {q} " in f" {other} " for other in unique) for q in unique)
    return len(quotes) - len(unique) + inside


def expect_none_found(text: str, expect_none: list[str]) -> list[str]:
    return [f for f in expect_none if fact_found(f, text)]


def _shingles(text: str, n: int = 3) -> set[tuple[str, ...]]:
    # a word broken across a PDF line ("re-\nsults") reads as one word on both sides:
    # reference contexts keep the break where ragchat's reader joins it
    text = re.sub(r"(?<=[a-z])-[ \t]*\n[ \t]*(?=[a-z])", "", unicodedata.normalize("NFKC", text))
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


def score_case(case: Case, answer: dict, embedder=None) -> dict:
    """Per-case figures for one answer (the Answer as a dict)."""
    refused = answer.get("mode") == "refused"
    retrieved = [h["chunk"]["text"] for h in answer.get("retrieved", [])]
    row: dict = {"refused": refused, "unsupported": unsupported(answer),
                 "repeated_quotes": repeated_quotes(answer)}
    if case.expect_none and not refused:
        row["expect_none_found"] = expect_none_found(answer.get("text", ""), case.expect_none)
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
        "expect_none_violations": _mean([bool(r["expect_none_found"]) for r in rows
                                         if "expect_none_found" in r]),
        "repeated_quotes": _mean([bool(r.get("repeated_quotes")) for r in answered]),
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
