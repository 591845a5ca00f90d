"""The evaluation suite: loaders, metric functions on hand-made cases, and an
end-to-end run of a few seed cases with the real local model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from app.evaluation import datasets, metrics
from app.evaluation.datasets import Case, DatasetError
from conftest import ROOT, SEED_SOURCE, run_cli

SHARED_SET = ROOT.parent / "shared" / "datasets" / "blockchain_solana"


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_jsonl_loader_reads_cases_follow_ups_and_sources(tmp_path):
    (tmp_path / "doc.txt").write_text("The bridge opened in 1932.")
    path = _write(tmp_path / "set.jsonl", [
        {"id": "a", "question": "When did the bridge open?", "expect_all": ["1932"], "source": "doc.txt"},
        {"id": "b", "question": "And who built it?", "unanswerable": True, "follows": "a"},
    ])
    data = datasets.load(path)
    assert [c.id for c in data.cases] == ["a", "b"] and data.cases[1].follows == "a"
    assert data.sources == [tmp_path / "doc.txt"] and data.collection == "eval-set"


@pytest.mark.parametrize("rows, message", [
    ([{"id": "a"}], "needs 'id' and 'question'"),
    ([{"id": "a", "question": "q?", "expect_all": ["x"], "colour": "red"}], "unknown field"),
    ([{"id": "a", "question": "q?"}], "expects nothing"),
    ([{"id": "a", "question": "q?", "unanswerable": True, "follows": "z"}], "follows 'z'"),
    ([{"id": "a", "question": "q?", "expect_all": ["x"], "source": "nowhere.txt"}], "not found"),
])
def test_jsonl_loader_errors_name_the_problem(tmp_path, rows, message):
    with pytest.raises(DatasetError, match=message):
        datasets.load(_write(tmp_path / "bad.jsonl", rows))


def test_jsonl_loader_reports_the_bad_line(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"id": "a", "question": "q?", "unanswerable": true}\n{not json\n')
    with pytest.raises(DatasetError, match=r"broken.jsonl line 2: not JSON"):
        datasets.load(path)


def test_labelled_rag_dataset_loader_on_a_small_file(tmp_path):
    folder = tmp_path / "tiny_set"
    (folder / "source_files").mkdir(parents=True)
    (folder / "source_files" / "notes.txt").write_text("Otters hold hands while sleeping.")
    (folder / "rag_dataset.json").write_text(json.dumps({"examples": [{
        "query": "What do otters do while sleeping?", "query_by": {"type": "ai"},
        "reference_contexts": ["Otters hold hands while sleeping."],
        "reference_answer": "They hold hands.", "reference_answer_by": {"type": "ai"}}]}))
    data = datasets.load(folder)
    assert data.name == "tiny_set" and len(data.cases) == 1
    case = data.cases[0]
    assert case.reference_answer == "They hold hands." and case.reference_contexts
    assert data.sources == [folder / "source_files" / "notes.txt"]


def test_the_shipped_seed_set():
    data = datasets.load(ROOT / "eval" / "seed_qa.jsonl")
    assert len(data.cases) >= 40
    assert sum(c.unanswerable for c in data.cases) >= 10
    assert sum(c.follows is not None for c in data.cases) >= 4
    assert [p.resolve() for p in data.sources] == [(ROOT / SEED_SOURCE).resolve()]


@pytest.mark.skipif(not SHARED_SET.is_dir(), reason="shared/ datasets are not beside this checkout")
def test_every_shipped_set_loads_and_every_source_it_names_exists():
    """Each frozen set in eval/ (written by hand) parses, names real files and
    folders, and has unanswerable as well as answerable cases, each answerable
    one with a fact to check; `make eval` runs each of them."""
    makefile = (ROOT / "Makefile").read_text()
    listed = set(re.findall(r"eval/(\w+)\.jsonl", makefile)) | set(
        re.findall(r"\b(\w+_holdout\d+)\b", makefile))
    listed |= {f"docs_holdout{n}" for n in re.search(r"for n in ([\d ]+);", makefile).group(1).split()}
    sets = sorted((ROOT / "eval").glob("*.jsonl"))
    assert len(sets) >= 30
    for path in sets:
        data = datasets.load(path)  # raises on a bad line or a source that is not there
        assert data.cases and all(p.exists() for p in data.sources), path.name
        assert any(c.unanswerable for c in data.cases) and any(not c.unanswerable for c in data.cases)
        assert all(c.unanswerable or c.facts for c in data.cases), path.name
        assert path.stem in listed, f"make eval does not run {path.name}"


@pytest.mark.skipif(not SHARED_SET.is_dir(), reason="shared/ datasets are not beside this checkout")
def test_the_shared_llamaindex_set():
    data = datasets.load(SHARED_SET)
    assert len(data.cases) == 58 and data.sources[0].name == "BlockchainSolana.pdf"
    assert all(c.reference_answer and c.reference_contexts for c in data.cases)
    assert data.card["baselines"][0]["metrics"]["contextSimilarity"] == 0.945


def test_money_normalisation_in_fact_accuracy():
    for text in ("Amazon is investing $50 billion.", "It puts 50 billion dollars in.",
                 "A 50bn deal.", "$50 Billion in total"):
        assert metrics.fact_correct(text, ["$50 billion"], [])
    assert not metrics.fact_correct("Amazon is investing $15 billion.", ["$50 billion"], [])
    assert not metrics.fact_correct("$500 billion", ["$50 billion"], [])
    assert metrics.fact_correct("Maryland, in 2026", ["Maryland", "2026"], [])
    assert metrics.fact_correct("interns", [], ["upskilling", "interns"])
    assert not metrics.fact_correct("nothing here", [], ["upskilling", "interns"])


def test_token_f1_and_rouge_l_on_known_values():
    assert metrics.token_f1("The cat sat.", "the cat sat") == 1.0
    assert metrics.token_f1("a dog", "the cat") == 0.0
    assert metrics.token_f1("cat sat on mat", "cat sat") == pytest.approx(2 / 3)
    assert metrics.rouge_l("cat sat", "cat sat") == 1.0
    assert 0 < metrics.rouge_l("the cat sat down", "a cat sat") < 1


def _answer(text: str, cites: dict[int, str], retrieved: list[str] | None = None,
            mode: str = "generated") -> dict:
    return {"text": text, "mode": mode,
            "citations": [{"n": n, "chunk": {"text": t}} for n, t in cites.items()],
            "retrieved": [{"chunk": {"text": t}} for t in (retrieved or list(cites.values()))]}


def test_citation_precision_catches_a_citation_to_the_wrong_source():
    right = "Amazon is investing $50 billion in OpenAI."
    other = "Maryland launched a $4 million programme."
    assert metrics.citation_pairs(_answer("Amazon invests $50 billion [1].", {1: right})) == (1, 1)
    assert metrics.citation_pairs(_answer("Amazon invests $50 billion [2].", {1: right, 2: other})) == (0, 1)
    both = _answer("Amazon invests $50 billion and Maryland $4 million [1][2].", {1: right, 2: other})
    assert metrics.citation_pairs(both) == (2, 2)
    assert metrics.citation_pairs(_answer("No marks here.", {1: right})) == (0, 0)


def test_unsupported_claims_are_checked_against_what_they_cite():
    a = _answer("Amazon invests $50 billion [1]. Sam Altman agrees [1].", {1: "Amazon invests $50 billion."})
    assert metrics.unsupported(a) == ["Sam Altman agrees"]
    assert metrics.unsupported({**a, "mode": "refused"}) == []
    # a quote must stand verbatim in the chunk it cites, not merely in some retrieved one
    quoted = _answer("\u201cAmazon invests $50 billion.\u201d [1]", {1: "Maryland: $4 million."},
                     retrieved=["Maryland: $4 million.", "Amazon invests $50 billion."])
    assert metrics.unsupported(quoted) == ["\u201cAmazon invests $50 billion.\u201d"]
    # an uncited claim is checked against everything retrieved
    loose = _answer("Amazon invests $50 billion.", {}, retrieved=["Amazon invests $50 billion."])
    assert metrics.unsupported(loose) == []


def test_expect_none_and_repeated_quotes():
    assert metrics.expect_none_found("The default is 200ms.", ["50ms", "200 ms"]) == []
    assert metrics.expect_none_found("The default is 50ms.", ["50ms"]) == ["50ms"]
    twice = {"text": "\u201cA is B.\u201d [1] \u201cA is  B.\u201d [2]"}
    assert metrics.repeated_quotes(twice) == 1
    assert metrics.repeated_quotes({"text": "\u201cA is B.\u201d [1]"}) == 0
    # a line quoted after the sentence that introduced it, and again on its own
    inside = {"text": "\u201cIt is set like so: x = 1\u201d [1] \u201cx = 1\u201d [1]"}
    assert metrics.repeated_quotes(inside) == 1
    assert metrics.repeated_quotes({"text": "\u201cx = 10\u201d [1] \u201cx = 1\u201d [1]"}) == 0


def test_metrics_share_no_code_with_the_checks_they_grade():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(metrics))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not imported & {"app.verify", "app.text", "app.answering", "app.ranking", "app.question"}


def test_retrieval_hits_by_fact_or_by_reference_overlap():
    case = Case(id="x", question="q", expect_all=["$50 billion"])
    assert metrics.is_hit("with Amazon investing $50 billion in OpenAI", case)
    ref = Case(id="y", question="q", reference_contexts=[
        "Solana uses proof of history to order transactions before consensus, which cuts latency."])
    assert metrics.is_hit("Solana uses proof of history to order transactions before consensus", ref)
    assert not metrics.is_hit("Bitcoin uses proof of work to secure its chain", ref)


def test_summary_and_gate_from_rows():
    rows = [
        {"unanswerable": False, "refused": False, "fact_correct": True, "retrieval_hit": True,
         "reciprocal_rank": 1.0, "citation_precise": 1, "citation_total": 1, "cited": True,
         "unsupported": [], "latency": 1.0, "tokens": 10, "generate_seconds": 0.5,
         "answer": {"mode": "generated"}},
        {"unanswerable": False, "refused": True, "fact_correct": False, "retrieval_hit": True,
         "reciprocal_rank": 0.5, "citation_precise": 0, "citation_total": 0, "unsupported": [],
         "latency": 3.0, "tokens": 0, "generate_seconds": 0.0, "answer": {"mode": "refused"}},
        {"unanswerable": True, "refused": True, "citation_precise": 0, "citation_total": 0,
         "unsupported": [], "latency": 2.0, "tokens": 0, "generate_seconds": 0.0,
         "answer": {"mode": "refused"}},
    ]
    s = metrics.summarise(rows)
    assert s["fact_accuracy"] == 0.5 and s["mrr"] == 0.75 and s["answerable_refused"] == 0.5
    assert s["unanswerable_refused"] == 1.0 and s["latency_p50"] == 2.0
    assert s["tokens_per_second"] == 20.0 and s["modes"] == {"generated": 1, "extractive": 0, "refused": 2}
    gate = metrics.parse_gate(["fact_accuracy=0.9", "answerable_refused=0.05"])
    assert metrics.failures(s, gate) == ["fact_accuracy 0.500 is below 0.9",
                                         "answerable_refused 0.500 is above 0.05"]
    with pytest.raises(ValueError, match="METRIC=VALUE"):
        metrics.parse_gate(["accuracy=1"])


def test_eval_end_to_end_on_a_few_seed_cases(seed_project, tmp_path):
    out = tmp_path / "report"
    r = run_cli("eval", str(ROOT / "eval" / "seed_qa.jsonl"), "--limit", "3", "--out", str(out),
                "--fail-under", "citation_precision=1", cwd_dir=seed_project, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "Gate passed" in r.stdout and "fact accuracy" in r.stdout
    assert {p.name for p in out.iterdir()} == {"report.md", "results.jsonl", "chart.png"}
    assert (out / "chart.png").read_bytes()[:4] == b"\x89PNG"
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["fact-01", "fact-02", "fact-03"]
    assert all(r["answer"]["citations"] and r["answer"]["retrieved"] for r in rows)
    summary = metrics.summarise(rows)
    report = (out / "report.md").read_text()
    for key, label in (("fact_accuracy", "fact accuracy"), ("hit_rate", "retrieval hit rate"),
                       ("latency_p50", "latency p50")):
        line = next(ln for ln in report.splitlines() if ln.startswith(f"| {label}"))
        assert f"{summary[key]:.3f}" in line
    # A gate the run cannot meet fails it, with one line per miss.
    r = run_cli("eval", str(ROOT / "eval" / "seed_qa.jsonl"), "--limit", "1", "--out", str(out),
                "--fail-under", "latency_p50=0.001", cwd_dir=seed_project, timeout=600)
    assert r.returncode == 1 and "Error: latency_p50" in r.stderr


def test_a_quoted_sources_own_reference_marks_stay_in_the_quote():
    a = _answer("\u201cTwo algorithms, PoW and PoS [5], bring issues.\u201d [1]",
                {1: "Two algorithms, PoW and PoS [5], bring issues."})
    assert metrics.claims(a["text"]) == [
        ("\u201cTwo algorithms, PoW and PoS [5], bring issues.\u201d", [1])]
    assert metrics.unsupported(a) == [] and metrics.citation_pairs(a) == (1, 1)


def test_a_quote_may_hold_curly_quotes_and_marks_of_its_own():
    src = "Improvements use identity (\u201csmart ID\u201d[ 29]) and patterns [31] here."
    a = _answer(f"\u201c{src}\u201d [1]", {1: src})
    assert metrics.claims(a["text"]) == [(f"\u201c{src}\u201d", [1])]
    assert metrics.unsupported(a) == [] and metrics.citation_pairs(a) == (1, 1)


# -- scripted drafts, labelled by hand, put to the verifiers -------------------------------

DRAFT_SETS = sorted((ROOT / "eval" / "drafts").glob("*.jsonl"))


def _shares(output: str) -> tuple[float, float]:
    m = re.search(r"faithful drafts kept ([\d.]+) of \d+, wrong drafts rejected ([\d.]+)", output)
    assert m, output
    return float(m.group(1)), float(m.group(2))


# (faithful kept, wrong rejected) floors of the role verifier per set, under its
# first-run figures (eval/README.md); a new set needs its own line.
DRAFT_FLOORS = {"roles_holdout1": (0.7, 0.85), "roles_holdout2": (0.7, 0.85),
                "cross_holdout1": (0.6, 0.65)}


def test_the_role_verifier_on_the_frozen_draft_sets(tmp_path):
    """`ragchat eval-drafts` on each hand-labelled set (eval/README.md): the role
    verifier keeps most faithful drafts and rejects most wrong ones, and rejects
    more wrong ones than the lexical verifier, which reads words only (on the
    sets of role swaps within one sentence, it rejects none of them), so the
    measure can tell the two apart. The floors sit under the first-run figures."""
    from app.evaluation import drafts

    assert len(DRAFT_SETS) >= 2 and {p.stem for p in DRAFT_SETS} == set(DRAFT_FLOORS)
    for path in DRAFT_SETS:
        cases = drafts.load(path)
        assert any(c.faithful for c in cases) and any(not c.faithful for c in cases)
        roles = run_cli("eval-drafts", str(path), cwd_dir=ROOT)
        lexical = run_cli("eval-drafts", str(path), "--verifier", "lexical", cwd_dir=ROOT)
        assert roles.returncode == 0 and lexical.returncode == 0, roles.stderr + lexical.stderr
        kept, rejected = _shares(roles.stdout)
        floor_kept, floor_rejected = DRAFT_FLOORS[path.stem]
        assert kept >= floor_kept and rejected >= floor_rejected, roles.stdout
        assert _shares(lexical.stdout)[1] < rejected, lexical.stdout
        if path.stem.startswith("roles_"):
            assert _shares(lexical.stdout)[1] < 0.2, lexical.stdout
    bad = _write(tmp_path / "bad.jsonl", [{"id": "x", "draft": "A [1].", "faithful": True}])
    result = run_cli("eval-drafts", str(bad), cwd_dir=ROOT)
    assert result.returncode != 0 and "bad.jsonl:1" in result.stderr and "sources" in result.stderr
