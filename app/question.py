"""What a question asks for, analysed once per question.

`analyse` reads the question (and the query it was retrieved with, which for
a follow-up carries the conversation) into a `Question`: the kind of fact it
asks for (a figure, a date, a name, or nothing in particular), the one
measure a figure question is about ("revenue"), the dimension whose unit it
asks in ("How many days…": time), the specific terms it names
(names, acronyms, figures), the part it sets aside ("Besides X, ...") and its
content words. The ranker, the refusal gates and the verifier's type check all
read this one object instead of parsing the question again.

All the language knowledge comes from `app.text`; a question in another
language gets kind None and no measure, so it is answered from retrieval
alone or refused for a reason that names the real cause.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from app import text


@dataclass(frozen=True)
class Question:
    text: str  # as asked
    query: str  # as retrieved (with the conversation, for a follow-up)
    focus: str  # the part that asks ("what has Maryland set up?")
    aside: str  # the part set aside ("the workforce money"), or ""
    kind: str | None  # "figure", "date", "name" or None
    measure: str | None  # "revenue" in "How much revenue ...", or None
    dimension: str | None  # "time", "rate", "size" or "long" ("How many days…"), or None
    terms: tuple[str, ...]  # names, acronyms and figures it asks about
    words: frozenset[str] = field(default_factory=frozenset)  # content-word stems
    quotes_amount: bool = False  # it quotes an amount ("of the $25 billion")
    wants_thing: bool = False  # "Which option …?": the answer must name something new
    wants_code: bool = False  # "Which option …?", "How do I …?": something to type (no other kind)
    subject: str | None = None  # "tqdm" of "What does tqdm do?": what it is or does, nothing more
    scope: str = ""  # the name of the one document it is answered from ("colorama"), or ""

    @property
    def follow_up(self) -> bool:
        return self.query != self.text

    @property
    def elliptical(self) -> bool:
        """A follow-up that leans on the conversation for what it asks ("And
        using pipx?"): two content words or fewer of its own."""
        return self.follow_up and len(self.words) <= 2


def specific_terms(question: str) -> list[str]:
    """Names, acronyms, figures and versioned names ("Python 3.8") a question
    asks about. The first word of each of its sentences counts only when it is
    an acronym or CamelCase, or a dotted version follows it ("Datasette 0.48:
    when …?"): a capital there is grammar ("Describe", "Provide", "Besides"),
    not a name."""
    terms: list[str] = []
    for sentence in text.split_sentences(question) or [question]:
        figures, names = text.facts(sentence)
        first = re.match(r"\W*([^\W\d_][\w'’-]*)", sentence)
        if first and names and names[0] == re.sub(r"['’]s?$", "", first.group(1)).split("-")[0]:
            if sum(c.isupper() for c in names[0]) < 2 and not text.opening_release(
                    sentence, names[0]):
                names = names[1:]
        # a number right after a name is that name's version or model ("Python 2",
        # "SQLite 3.46"): looked for together, since "2" alone is in any document
        versions = text.versioned_names(sentence, names)
        numbers = [v.rsplit(" ", 1)[1] for v in versions]
        figures = [f for f in figures if not any(re.match(re.escape(f) + r"(?!\d)", n) for n in numbers)]
        terms += figures + versions + names
    return list(dict.fromkeys(terms))


def focus(question: str) -> tuple[str, str]:
    """The part of a question that asks something, and the part it sets aside:
    "Besides the workforce money, what has Maryland set up?" asks "what has
    Maryland set up?" and names the workforce money only to exclude it."""
    m = text.EXCLUDING.match(question)
    return (m.group("rest"), m.group("aside")) if m else (question, "")


def analyse(question: str, query: str | None = None) -> Question:
    query = query or question
    asks, aside = focus(question)
    kind = text.question_kind(asks)
    return Question(
        text=question, query=query, focus=asks, aside=aside.strip(), kind=kind,
        measure=text.asked_measure(asks) if kind == "figure" else None,
        dimension=text.asked_dimension(asks) if kind == "figure" else None,
        terms=tuple(specific_terms(question)),
        words=frozenset(text.content_words(asks)),
        quotes_amount=bool(text.amounts(question)),
        wants_thing=text.asks_for_thing(asks),
        wants_code=kind is None and text.asks_for_code(asks),
        subject=text.asked_subject(asks) if kind is None else None,
    )
