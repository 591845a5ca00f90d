"""Reports of an evaluation run: a table in the terminal (rich), report.md and
a PNG chart (matplotlib), with systems side by side and, for a LlamaIndex
dataset, the baseline figures its card publishes."""

from __future__ import annotations

from pathlib import Path

from app.evaluation.runner import RunResult

ROWS = [
    ("hit_rate", "retrieval hit rate @k"),
    ("mrr", "retrieval MRR @k"),
    ("context_similarity", "context similarity (MiniLM cosine)"),
    ("fact_accuracy", "fact accuracy"),
    ("token_f1", "token F1 vs reference answer"),
    ("rouge_l", "ROUGE-L vs reference answer"),
    ("citation_precision", "citation precision"),
    ("cited_share", "answers with a citation"),
    ("unanswerable_refused", "unanswerable cases refused"),
    ("answerable_refused", "answerable cases refused (lower is better)"),
    ("unsupported_claims", "answers with unsupported claims (lower is better)"),
    ("expect_none_violations", "answers holding a phrase they must not (lower is better)"),
    ("repeated_quotes", "answers quoting one sentence twice (lower is better)"),
    ("latency_p50", "latency p50 (s)"),
    ("latency_p95", "latency p95 (s)"),
    ("tokens_per_second", "generated tokens per second"),
]
CARD_KEYS = {"context_similarity": "contextSimilarity"}
NOTES = [
    "Context similarity is the cosine between the mean all-MiniLM-L6-v2 embedding of the "
    "retrieved chunks and that of the reference contexts (LlamaIndex's card uses "
    "text-embedding-ada-002 on the joined texts), so it is only roughly comparable.",
    "A retrieval hit is a retrieved chunk that holds an expected fact or shares at least half "
    "of its word trigrams with a reference context.",
    "The naive baseline is LlamaIndex's default query engine (VectorStoreIndex, top-k 2, default "
    "prompts) over the same Chroma collection, embedder and GGUF; its answers carry no [n] marks.",
]


def fmt(value) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _columns(result: RunResult) -> list[tuple[str, dict]]:
    cols = list(result.summaries.items())
    card = result.dataset.card
    if card and card.get("baselines"):
        b = card["baselines"][0]
        published = {ours: b["metrics"].get(theirs) for ours, theirs in CARD_KEYS.items()}
        cfg = b.get("config", {})
        label = f"published ({b.get('name', 'card')}: {cfg.get('llm', '?')}, {cfg.get('embedModel', '?')})"
        extra = {k: v for k, v in b["metrics"].items() if k != "contextSimilarity"}
        published["_extra"] = extra
        cols.append((label, published))
    return cols


def markdown(result: RunResult) -> str:
    cols = _columns(result)
    lines = [f"# Evaluation: {result.dataset.name}", "",
             f"{len(result.rows['ragchat'])} cases from `{result.dataset.path}`; sources "
             f"ingested into collection `{result.dataset.collection}` ({result.ingest_summary}).", "",
             "| metric | " + " | ".join(name for name, _ in cols) + " |",
             "| --- |" + " --- |" * len(cols)]
    for key, label in ROWS:
        lines.append(f"| {label} | " + " | ".join(fmt(s.get(key)) for _, s in cols) + " |")
    lines.append("| modes (generated / extractive / refused) | " + " | ".join(
        "/".join(str(s["modes"][m]) for m in ("generated", "extractive", "refused"))
        if "modes" in s else "–" for _, s in cols) + " |")
    for name, s in cols:
        if s.get("_extra"):
            lines += ["", f"{name} also reports, judged by an LLM: " + ", ".join(
                f"{k} {v}" for k, v in s["_extra"].items()) + " (not measured here)."]
    lines += ["", *[f"- {n}" for n in NOTES], "", "![metrics](chart.png)", ""]
    return "\n".join(lines)


def print_table(result: RunResult) -> None:
    from rich.console import Console
    from rich.table import Table

    cols = _columns(result)
    table = Table(title=f"{result.dataset.name}: {len(result.rows['ragchat'])} cases")
    table.add_column("metric")
    for name, _ in cols:
        table.add_column(name, justify="right")
    for key, label in ROWS:
        table.add_row(label, *[fmt(s.get(key)) for _, s in cols])
    table.add_row("modes gen/ext/ref", *[
        "/".join(str(s["modes"][m]) for m in ("generated", "extractive", "refused"))
        if "modes" in s else "–" for _, s in cols])
    Console().print(table)


def chart(result: RunResult, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    score_keys = [k for k, _ in ROWS if not k.startswith(("latency", "tokens"))]
    systems = list(result.summaries.items())
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [4, 1]})
    width = 0.8 / max(1, len(systems))
    for i, (name, s) in enumerate(systems):
        values = [s.get(k) or 0.0 for k in score_keys]
        ax1.bar([x + i * width for x in range(len(score_keys))], values, width, label=name)
        ax2.bar([x + i * width for x in range(2)],
                [s.get("latency_p50") or 0.0, s.get("latency_p95") or 0.0], width, label=name)
    ax1.set_xticks([x + width * (len(systems) - 1) / 2 for x in range(len(score_keys))])
    ax1.set_xticklabels([k.replace("_", "\n") for k in score_keys], fontsize=8)
    ax1.set_ylim(0, 1.05)
    ax1.set_title(f"{result.dataset.name}: scores")
    ax1.legend()
    ax2.set_xticks([x + width * (len(systems) - 1) / 2 for x in range(2)])
    ax2.set_xticklabels(["p50", "p95"])
    ax2.set_title("latency (s)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
