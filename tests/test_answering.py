"""Answer selection and refusal on hand-made passages, with the real MiniLM
query embedder and no language model (every answer is refused or quoted).
The passages are invented here, not the seed article: the rules are general."""

from __future__ import annotations

from app import answering, grounding
from app.types import Chunk, Hit

MUSEUM = ("The museum's renovation is one of the largest building projects in the city's history, "
          "with the council spending $80 million on the museum. The museum will reopen in 2027.")
SCHOOLS = ("The city spent $2 million training teachers to use laptops in class. "
           "The city also paid for a public library with a maker space in 2020. "
           "Officials said the programme was popular.")
AIRLINE = ("This purchase is one of the largest in aviation history, with Qantas ordering Airbus "
           "jets worth $25 billion. The deal is structured with an initial tranche of $5 billion, "
           "with an additional $20 billion to follow. The planes will fly long routes.")


class SilentLLM:
    """Writes nothing, so the answer is the refusal or the extractive quote."""

    name = "silent"

    def stream(self, messages, max_tokens, temperature):
        return iter(())


def _hits(*texts: str, similarity: float = 0.6) -> list[Hit]:
    return [Hit(Chunk(id=f"c{i}", text=t, source=f"doc{i}.txt", title="", start=0, end=len(t),
                      content_hash=""), score=1 / (i + 1), similarity=similarity)
            for i, t in enumerate(texts)]


def _ask(engine, question: str, *texts: str, similarity: float = 0.6):
    return answering.answer(question, question, _hits(*texts, similarity=similarity), SilentLLM(),
                            engine.embedder, 0.25, 60, 0.0)


def test_measure_and_focus_are_read_from_the_question():
    assert answering.asked_measure("How much revenue does AWS make each year?") == "revenue"
    assert answering.asked_measure("What was the startup's valuation in 2024?") == "valuation"
    assert answering.asked_measure("How many employees does it have?") == "employees"
    assert answering.asked_measure("How much is Amazon investing?") is None
    assert answering.expected_type("What is the museum's annual revenue?") == "figure"
    assert answering.expected_type("What is the name of the museum's director?") == "name"
    assert answering.focus("Besides the workforce money, what has Maryland set up?") == (
        "what has Maryland set up?", " the workforce money")
    assert answering.focus("What has Maryland set up?") == ("What has Maryland set up?", "")
    assert {"aws", "ai"} <= grounding.content_words("AWS sells AI chips")


def test_figure_for_a_measure_no_passage_names_is_refused(engine):
    a = _ask(engine, "How much revenue does the museum make each year?", MUSEUM)
    assert a.mode == "refused" and "figure" in a.note


def test_figure_for_a_measure_quotes_only_sentences_that_name_it(engine):
    a = _ask(engine, "What is the museum's annual revenue?",
             MUSEUM + " Ticket revenue reached $3 million last year.")
    assert a.mode == "extractive"
    assert "$3 million" in a.text and "$80 million" not in a.text


def test_how_many_is_not_answered_by_a_money_amount(engine):
    a = _ask(engine, "How many teachers were trained?", SCHOOLS)
    assert a.mode == "refused"
    a = _ask(engine, "How many teachers were trained?",
             "The city spent $2 million training 300 teachers to use laptops.")
    assert a.mode == "extractive" and "300 teachers" in a.text


def test_what_the_question_sets_aside_is_not_quoted(engine):
    a = _ask(engine, "Apart from teacher training, what did the city spend money on?", SCHOOLS)
    assert a.mode == "extractive"
    assert "public library" in a.text and "training" not in a.text


def test_sentence_holding_the_questions_distinctive_words_is_quoted(engine):
    # MiniLM puts the "largest ... Qantas ... Airbus" sentence first; the one that
    # holds "initial tranche" is quoted beside it.
    a = _ask(engine, "How large is Qantas's initial Airbus tranche?", AIRLINE)
    assert a.mode == "extractive" and "initial tranche of $5 billion" in a.text
    a = _ask(engine, "How much is Qantas spending on Airbus jets?", AIRLINE)
    assert "$25 billion" in a.text and "tranche" not in a.text  # no second quote without cause
    for c in a.citations:  # quotes stay verbatim
        for part in c.quote.split(" \u2026 "):
            assert part in AIRLINE


def test_question_quoting_the_documents_amount_is_on_topic(engine):
    # Retrieval found nothing close (similarity 0.1) and no question word matches,
    # but the question quotes the passage's own "$25 billion".
    a = _ask(engine, "How much of the $25 billion comes later?", AIRLINE, similarity=0.1)
    assert a.mode == "extractive" and "$20 billion" in a.text
    a = _ask(engine, "How much of the money comes later?", AIRLINE, similarity=0.1)
    assert a.mode == "refused" and "close enough" in a.note


def test_name_question_without_a_name_in_the_passages_is_refused(engine):
    a = _ask(engine, "What is the name of the museum's director?", MUSEUM)
    assert a.mode == "refused" and "name" in a.note
