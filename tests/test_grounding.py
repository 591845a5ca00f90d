"""The grounding check, with scripted drafts (unit tests of logic), and the
answer it leads to with a scripted model over the real seed index."""

from __future__ import annotations

from collections.abc import Iterator

from app import answering, grounding
from conftest import SEED

SRC = SEED.read_text()
INVEST = ("This partnership's financial commitment is one of the largest in tech history, "
          "with Amazon investing $50 billion in OpenAI.")
WORKFORCE = ("Governor Wes Moore's administration has launched a $4 million investment to "
             "prepare workers for an AI-driven economy.")


def test_normalise_money_separators_percent_case():
    for spelling in ("$50 billion", "50 billion dollars", "50bn", "$50bn", "US$50 billion",
                     "50 Billion", "$50 BN"):
        assert grounding.normalise(spelling).strip() == "50 billion", spelling
    assert grounding.normalise("1,500 jobs") == "1500 jobs"
    assert grounding.normalise("15 percent").strip() == "15%"
    assert grounding.normalise("15 per cent").strip() == "15%"


def test_grounded_sentence_is_kept_unchanged():
    draft = "Amazon is investing $50 billion in OpenAI [1]."
    result = grounding.check(draft, [INVEST])
    assert result.text == draft and not result.dropped


def test_invented_figure_is_dropped_and_true_one_kept():
    draft = "Amazon is investing 50 billion dollars in OpenAI [1]. The first tranche is 1.5 billion [1]."
    result = grounding.check(draft, [INVEST])
    assert result.text == "Amazon is investing 50 billion dollars in OpenAI [1]."
    assert result.dropped[0].missing == ["1.5 billion"]


def test_invented_name_is_dropped():
    result = grounding.check("OpenAI is led by Sam Altman [1].", [INVEST])
    assert not result.kept
    assert set(result.dropped[0].missing) == {"Sam", "Altman"}


def test_fact_cited_to_the_wrong_source_is_dropped():
    # "$4 million" stands in source 2, but the sentence cites source 1.
    result = grounding.check("Maryland is spending $4 million on training [1].", [INVEST, WORKFORCE])
    assert not result.kept and "4 million" in result.dropped[0].missing


def test_citation_of_a_source_that_was_not_retrieved_is_dropped():
    result = grounding.check("Amazon is investing $50 billion in OpenAI [3].", [INVEST])
    assert not result.kept and "not retrieved" in result.dropped[0].reason


def test_sentence_without_mark_is_attributed_only_when_a_source_holds_its_facts():
    result = grounding.check("Amazon is investing $50 billion in OpenAI. It also pays $9 billion.",
                             [WORKFORCE, INVEST])
    assert [v.sentence for v in result.kept] == ["Amazon is investing $50 billion in OpenAI [2]."]
    assert result.kept[0].attributed
    assert "9 billion" in result.dropped[0].sentence


def test_claim_in_words_the_source_lacks_is_dropped():
    result = grounding.check("Amazon bought several football stadiums and breweries [1].", [INVEST])
    assert not result.kept and "mostly words" in result.dropped[0].reason


def test_marks_before_sentences_are_moved_to_their_end():
    assert grounding.split_sentences("[1] Amazon invests. [2] OpenAI agrees.") == [
        "Amazon invests [1].", "OpenAI agrees [2]."]
    assert grounding.split_sentences("Amazon invests. [1] OpenAI agrees [2].") == [
        "Amazon invests. [1]", "OpenAI agrees [2]."]


def test_repeated_sentences_are_kept_once():
    draft = "Amazon is investing $50 billion in OpenAI [1]. Amazon is investing $50 billion in OpenAI [1]."
    assert grounding.check(draft, [INVEST]).first(3).text == "Amazon is investing $50 billion in OpenAI [1]."


class ScriptedLLM:
    """A language model that replies with a fixed draft, token by token."""

    name = "scripted"

    def __init__(self, draft: str):
        self.draft = draft
        self.calls: list[list[dict]] = []

    def stream(self, messages, max_tokens, temperature) -> Iterator[str]:
        self.calls.append(messages)
        for word in self.draft.split(" "):
            yield word + " "


def _answer(engine, question: str, draft: str):
    hits = engine.retrieve(question)
    llm = ScriptedLLM(draft)
    a = answering.answer(question, question, hits, llm, engine.embedder, 0.25, 100, 0.0)
    return a, hits, llm


def test_grounded_draft_passes_as_generated(engine):
    q = "How much is Amazon investing in OpenAI?"
    hits = engine.retrieve(q)
    n = next(i for i, h in enumerate(hits, 1) if "$50 billion" in h.chunk.text)
    draft = f"Amazon is investing $50 billion in OpenAI [{n}]."
    a, _, llm = _answer(engine, q, draft)
    assert a.mode == "generated" and a.grounded and a.text == draft
    assert [c.n for c in a.citations] == [n] and "$50 billion" in a.citations[0].quote
    assert f"[{n}]" in llm.calls[0][-1]["content"]  # the prompt numbers the sources


def test_draft_without_valid_citation_falls_back_to_extractive(engine):
    q = "How much is Amazon investing in OpenAI?"
    a, hits, _ = _answer(engine, q, "Amazon is investing 1.5 billion in OpenAI [9].")
    assert a.mode == "extractive" and a.dropped
    assert "$50 billion" in a.text
    for c in a.citations:  # every quote stands verbatim in the chunk it cites
        for part in c.quote.split(" \u2026 "):
            assert part in hits[c.n - 1].chunk.text
        assert f"[{c.n}]" in a.text


def test_question_about_something_absent_is_refused_with_closest_sources(engine):
    q = "Who is the CEO of OpenAI?"
    a, _, llm = _answer(engine, q, "Sam Altman [1].")
    assert a.mode == "refused" and a.text.startswith("Not found in your documents")
    assert "CEO" in a.note and a.citations and not llm.calls


def test_unrelated_question_is_refused_by_relevance(engine):
    a, _, llm = _answer(engine, "What is a good recipe for sourdough bread?", "Flour [1].")
    assert a.mode == "refused" and "close enough" in a.note and not llm.calls
