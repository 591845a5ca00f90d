"""Rankers: which sentences of the retrieved passages answer the question.

A `Ranker` is built per question over the retrieved hits and gives the
candidate sentences best first, the passages the model is shown, and a
score for any text (so a draft can be compared with the best source
sentence). `SentenceRanker` is today's one implementation: cosine similarity
from MiniLM (the mean of the sentence's alone and under its section's title),
plus the IDF-weighted share of the question's content words a
sentence holds (with the sentence before it, which often names what "it"
refers to), plus a bonus when it gives the kind of fact asked for (or,
for a question that asks for something to type, "Which option …?", "How do
I …?", when it gives code: `text.gives_code`). A
cross-encoder would be another implementation of the same protocol.

A sentence that holds a paper's own reference marks ("[3]") is cut at them
into verbatim pieces, each a candidate of its own.
Each candidate knows the sentences around it in its chunk (`following`,
`preceding`), which a quote of it may carry: what a colon introduces, what
"This …" refers to.
A sentence that several overlapping chunks hold is one candidate, credited to
the best-ranked chunk that holds it: an answer never quotes it twice. A
sentence that gives orders to whoever answers (`text.is_instruction`) is never
a candidate: documents are data, not instructions.
Left out: cross-encoders (none installs offline here) and learned weights.
"""

from __future__ import annotations

import math
import re
from typing import Protocol

import numpy as np

from app import text
from app.question import Question
from app.types import Hit

PROMPT_CHARS = 1200  # about 300 tokens of sources: ~0.9 s of prompt reading on 2 cores
LEXICAL_WEIGHT = 0.5  # weight of question-word coverage beside embedding similarity
TYPE_BONUS = 0.2  # for a sentence that gives the kind of fact the question asks for
FOLLOW_UP_WEIGHT = 0.85  # share of the newest question (vs the condensed query) in similarity
ELLIPTICAL_WEIGHT = 0.5  # ... for a follow-up of two content words or fewer ("And using pipx?")
TITLE_WEIGHT = 0.5  # share of a sentence's similarity read under its section's title


class Embedder(Protocol):
    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length vectors, one row per text."""
        ...


class Ranker(Protocol):
    question: Question
    cands: list[tuple[int, str, str]]  # (source n, sentence, its section title and the one before)
    following: dict[tuple[int, str], str]  # (n, sentence) -> the sentence after it in its chunk
    preceding: dict[tuple[int, str], str]  # (n, sentence) -> the sentence before it in its chunk
    only: set[str]  # keys of the sentences that alone may answer (`answering.answerable`), or none

    def ranked(self) -> list[tuple[float, int, str]]:
        """(score, source n, sentence), best first."""
        ...

    def passages(self, n_hits: int, budget: int, max_chars: int = PROMPT_CHARS) -> list[str]:
        ...

    def score_text(self, text: str) -> float:
        ...

    def own_lexical(self, sentence: str, besides: frozenset[str] = frozenset()) -> float:
        ...

    def section(self, n: int, sentence: str) -> str:
        ...


def _words(s: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9$%]+", s.lower()) if len(w) > 2}


REFERENCE_MARK = text.REFERENCE_MARK  # a paper's own "[3]" (PDFs are read with superscripts)


def without_reference_marks(sentence: str) -> list[str]:
    """The verbatim stretches of a sentence between its reference marks. An
    answer cites sources as [n]: a quote holding a paper's own "[3]" would read
    as a citation of source 3, to people and to every client that parses [n]."""
    if not REFERENCE_MARK.search(sentence):
        return [sentence]
    pieces = (p.strip().lstrip("),;:").strip() for p in REFERENCE_MARK.split(sentence))
    return [p for p in pieces if p and not re.fullmatch(r"[\W_]+", p)]


def is_candidate(piece: str, titled: bool = False) -> bool:
    """Whether a sentence (or a piece of one) is long enough to answer anything:
    three words of three letters or more, or, for the first line under a
    heading (`titled`), which it is read with, any word, unless the line ends
    in a colon and so only introduces what follows ("MIT licensed." under
    "License", "Apache 2", "Python 3.9+" under "Supported Python Versions")."""
    words = _words(piece)
    return len(words) >= 3 or titled and bool(words) and not piece.rstrip().endswith(":")


def sentences_of(chunk_text: str) -> list[str]:
    """A chunk's candidate sentences, as a ranker reads them (headings left out,
    cut at reference marks, too short pieces dropped)."""
    out, prev = [], ""
    for sent in text.split_sentences(chunk_text):
        if not text.is_heading(sent):
            out += [p for p in without_reference_marks(sent)
                    if is_candidate(p, titled=p == sent and text.is_heading(prev))]
        prev = sent
    return out


def sentence_key(sentence: str) -> str:
    """Two sentences are the same when their words are (overlapping chunks cut
    the same sentence with other white space or a lost closing quote)."""
    return " ".join(re.findall(r"\w+", sentence.lower()))


def best_quote(chunk_text: str, claim: str) -> str:
    """The sentence of a chunk that shares most words with a claim."""
    sents = text.split_sentences(chunk_text) or [chunk_text]
    target = _words(text.strip_citations(claim))
    return max(sents, key=lambda s: len(_words(s) & target) / (1 + 0.01 * len(s)))


class SentenceRanker:
    """Scores sentences against a question (see the module docstring). What a
    question sets aside ("Besides the workforce money, ...") counts against a
    sentence by its similarity to that part."""

    def __init__(self, question: Question, hits: list[Hit], embedder: Embedder,
                 only: list[str] | None = None):
        self.question, self.kind, self.embedder = question, question.kind, embedder
        # the sentences that alone hold what the question asks about (`answering.answerable`'s
        # admitted ones): only they take part in the ranking, when any is a candidate
        self.only = {sentence_key(s) for s in only or []}
        self.measure = question.measure
        asks = question.focus
        query = asks if not question.follow_up else question.query
        self.cands: list[tuple[int, str, str]] = []
        self.headings: dict[tuple[int, str], str] = {}  # (n, sentence) -> its section's title
        self.following: dict[tuple[int, str], str] = {}  # (n, sentence) -> the sentence after it
        # (n, sentence) -> the sentence before it in its chunk, when that is neither
        # a heading, nor orders to whoever answers, nor too short to be a sentence
        # ("---"), nor holds a paper's reference marks (read as citations in a quote)
        self.preceding: dict[tuple[int, str], str] = {}
        # (n, sentence) of the lines a sentence ending in a colon introduces (a command)
        self.introduced: set[tuple[int, str]] = set()
        seen: dict[str, int] = {}  # sentence -> the chunk it was first found in
        for n, h in enumerate(hits, start=1):
            prev, heading = "", h.chunk.section
            before = ""  # the sentence before, when it can be quoted with this one
            last: tuple[int, str] | None = None
            ordered = False  # the sentence before gave orders and ended in a colon
            for sent in text.split_sentences(h.chunk.text):
                if last is not None:
                    self.following[last] = sent
                last = None
                if text.is_heading(sent):
                    heading = sent.lstrip("# ").strip()
                    prev, before = sent, ""
                    continue
                # orders to whoever answers are a document's content, not an answer
                if ordered or text.is_instruction(sent):
                    ordered = text.is_instruction(sent) and sent.rstrip().endswith(":")
                    prev, before = sent, ""
                    continue
                for piece in without_reference_marks(sent):
                    key = sentence_key(piece)
                    # overlapping chunks hold the same sentence: it is one candidate,
                    # credited to the best-ranked chunk (the same words twice in one
                    # chunk are two passages, as in two sections of a settings page)
                    # the first line under a heading is read with it: a short one counts
                    titled = piece == sent and text.is_heading(prev)
                    if is_candidate(piece, titled) and seen.get(key, n) == n:
                        seen[key] = n
                        # the section's title scopes every sentence under it
                        self.cands.append((n, piece, f"{heading} {prev} {piece}"))
                        last = (n, piece)
                        if prev.rstrip().endswith(":") and not text.is_heading(prev):
                            self.introduced.add((n, piece))
                        if heading:
                            self.headings[(n, piece)] = heading
                        if (before and piece == sent and is_candidate(before)
                                and not REFERENCE_MARK.search(before)):
                            self.preceding[(n, piece)] = before
                prev = before = sent
        # A follow-up was retrieved with the conversation around it, but its
        # answer is what the newest question asks: weigh that one most.
        # An elliptical follow-up ("And using pipx?") asks what the question before
        # it asked: its words and the conversation's count alike.
        # The question's words as analysed: a question scoped to the document
        # about a thing it names no longer counts that name (every passage is
        # about it: "Does your company use DiskCache?" is no answer to its licence).
        self.terms = set(question.words) or text.content_words(query)
        if question.elliptical:
            self.terms = self.terms | text.content_words(query)
        docs = [text.content_words(c) for _, _, c in self.cands] or [set()]
        self.idf = {t: math.log(1 + len(docs) / (1 + sum(t in d for d in docs))) for t in self.terms}
        self.coverable = {t for t in self.terms if any(t in d for d in docs)}
        # A sentence is read alone and under its section's title, which scopes it
        # ("Port for server, defaults to 8001." under "datasette serve"): its
        # similarity is the mean of the two.
        titled = [i for i, (n, s, _) in enumerate(self.cands) if (n, s) in self.headings]
        sents = [s for _, s, _ in self.cands]
        # Within the document about what the question names, the name tells its
        # sentences apart no more than "it" does: the question is read without it
        # ("Under which licence is it distributed?"), or sentences that merely
        # name the thing come first.
        if question.scope:
            asks = text.as_it(asks, question.scope)
            query = asks if not question.follow_up else query
        vecs = embedder.embed([asks, query, question.aside or asks] + sents + [
            f"{self.headings[self.cands[i][:2]]}: {sents[i]}" for i in titled])
        w = 1.0 if query == asks else ELLIPTICAL_WEIGHT if question.elliptical else FOLLOW_UP_WEIGHT
        self.qvec = w * vecs[0] + (1 - w) * vecs[1]
        plain = vecs[3:3 + len(sents)]
        self.sims = plain @ self.qvec
        if titled:
            self.sims[titled] = TITLE_WEIGHT * (vecs[3 + len(sents):] @ self.qvec) + (
                1 - TITLE_WEIGHT) * self.sims[titled]
        if question.aside:  # what the question sets aside counts against a sentence
            self.sims = self.sims - plain @ vecs[2]
        self._ranked: list[tuple[float, int, str]] | None = None

    def _score(self, sim: float, sentence: str, context: str, code: bool = False) -> float:
        total = sum(self.idf.values())
        words = text.content_words(context)
        lexical = sum(w for t, w in self.idf.items() if t in words) / total if total else 0.0
        typed = TYPE_BONUS if self.kind and text.gives_kind(
            sentence, self.kind, self.question.focus) or code else 0.0
        return float(sim) + LEXICAL_WEIGHT * lexical + typed

    def gives_code(self, n: int, sentence: str) -> bool:
        """For a question that asks for something to type, whether a candidate
        gives code: itself, in the line its colon
        introduces, or as such a line ("brew install datasette" after "… run
        this command in your terminal:")."""
        if not self.question.wants_code:
            return False
        after = self.following.get((n, sentence), "")
        example = after if sentence.rstrip().endswith(":") and not text.is_heading(after) else ""
        if (n, sentence) in self.introduced:
            example = sentence
        return text.gives_code(sentence, example)

    def own_lexical(self, sentence: str, besides: frozenset[str] = frozenset()) -> float:
        """IDF-weighted share of the question's words in the sentence itself
        (leaving out the content words `besides`), out of those that occur in
        some candidate: a word no source holds cannot be covered."""
        total = sum(self.idf[t] for t in self.coverable)
        words = text.content_words(sentence) - besides
        return sum(w for t, w in self.idf.items() if t in words) / total if total else 0.0

    def ranked(self) -> list[tuple[float, int, str]]:
        """(score, source n, sentence), best first. For a question about one
        measure ("revenue"), only sentences that name it (with the sentence
        before) take part, when there are any; and only the `only` sentences,
        when any is a candidate."""
        if self._ranked is None:
            pairs = list(zip(self.sims, self.cands))
            if self.measure and any(text.mentions(c, self.measure) for _, (_, _, c) in pairs):
                pairs = [p for p in pairs if text.mentions(p[1][2], self.measure)]
            if self.only and any(sentence_key(s) in self.only for _, (_, s, _) in pairs):
                pairs = [p for p in pairs if sentence_key(p[1][1]) in self.only]
            self._ranked = sorted(((self._score(sim, s, c, self.gives_code(n, s)), n, s)
                                   for sim, (n, s, c) in pairs), reverse=True)
        return self._ranked

    def passages(self, n_hits: int, budget: int, max_chars: int = PROMPT_CHARS) -> list[str]:
        """Per source, its `budget` best sentences overall kept in reading order
        (an empty string for a source with none), at most `max_chars` in all
        and each cut to a quarter of that: what the model is shown. PDF text can
        run for a page without a full stop."""
        best, used = set(), 0
        for _, n, s in self.ranked()[:budget]:
            s = s[: max_chars // 4]
            if used + len(s) > max_chars and best:
                break
            best.add((n, s))
            used += len(s)
        out = [[] for _ in range(n_hits)]
        for n, s, _ in self.cands:
            if (n, s[: max_chars // 4]) in best:
                out[n - 1].append(s[: max_chars // 4])
        return [" ".join(dict.fromkeys(p)) for p in out]

    def section(self, n: int, sentence: str) -> str:
        """The title of the section a candidate stands in, when the title
        shares a word or code name with the question and the sentence does not
        repeat it ("/-/versions" over "Shows the version of Datasette"), else ""."""
        title = self.headings.get((n, sentence), "")
        if not title or title.lower() in sentence.lower():
            return ""
        q = self.question
        shared = text.content_words(title) & (set(q.words) | text.content_words(q.query))
        # "Which setting …?" answered by a sentence under the setting's own heading
        named = q.wants_thing and bool(text.identifiers(title)) and not text.adds_fact(sentence, q.text)
        return title if shared or named or set(text.identifiers(title)) & set(q.terms) else ""

    def score_text(self, draft: str) -> float:
        plain = text.strip_citations(draft)
        code = self.question.wants_code and text.gives_code(plain)
        return self._score(float(self.embedder.embed([plain])[0] @ self.qvec), plain, plain, code)
