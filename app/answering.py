"""From retrieved sources to an Answer: refuse, generate and check, or quote.

1. Refuse when retrieval found nothing relevant enough: no chunk reaches
   `min_relevance` cosine similarity, or a specific term of the question (a
   name, acronym or figure) occurs in none of the sources, or the question
   asks for a figure, date or name that no retrieved sentence gives (a
   "how much revenue" question needs a sentence with a figure and the word
   revenue; see `answerable`). The refusal lists the closest sources.
2. Otherwise the language model drafts an answer over the numbered sources;
   the grounding check (`grounding.check`) drops every sentence without a
   valid [n] or with a figure or name its sources lack.
3. If nothing useful survives (nothing at all, or nothing of the kind the
   question asks for: a figure for "how much", a date for "when", a name for
   "who"), the answer is extractive: the source sentences closest to the
   question, quoted verbatim with their [n] (two when two rank close, or when
   another sentence holds a quarter of the question's words the first lacks).

All of it is general text logic plus one embedding call; nothing here knows
particular questions or documents. The question-type cues are English.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable

from app import grounding, prompts
from app.embedding import OnnxEmbedder
from app.llm import LanguageModel
from app.types import Answer, Citation, Hit

MAX_SENTENCES = 3  # an answer, not an essay: the prompt asks for one or two
_MONTHS = ("january february march april may june july august september october "
           "november december").split()


def specific_terms(question: str) -> list[str]:
    """Names, acronyms and figures a question asks about. The first word of
    each of its sentences counts only when it is an acronym or CamelCase: a
    capital there is grammar ("Describe", "Provide", "Besides"), not a name."""
    terms: list[str] = []
    for sentence in grounding.split_sentences(question) or [question]:
        figures, names = grounding.facts(sentence)
        first = re.match(r"\W*([A-Za-z][\w'’-]*)", sentence)
        if first and names and names[0] == re.sub(r"['’]s?$", "", first.group(1)).split("-")[0]:
            if sum(c.isupper() for c in names[0]) < 2:
                names = names[1:]
        terms += [t for t in figures + names if t not in terms]
    return terms


def missing_terms(question: str, hits: list[Hit]) -> list[str]:
    text = grounding.normalise(" ".join(h.chunk.text for h in hits))
    return [t for t in specific_terms(question) if not grounding.occurs(t, text)]


def amounts(text: str) -> list[str]:
    """The figures of a text other than bare years ("50 billion", "40%", "12")."""
    return [f for f in grounding.facts(text)[0] if not re.fullmatch(r"(19|20)\d\d", f)]


def quoted_amounts(question: str, hits: list[Hit]) -> list[str]:
    """Amounts the question quotes ("$50 billion", "40%"; not bare years) that
    the passages hold: a question quoting the documents' own figure is on topic,
    however far its other words are from theirs."""
    text = grounding.normalise(" ".join(h.chunk.text for h in hits))
    return [f for f in amounts(question) if grounding.occurs(f, text)]


def word_coverage(question: str, hits: list[Hit]) -> float:
    """Share of the question's content words found in the retrieved passages."""
    words = grounding.content_words(question)
    if not words:
        return 0.0
    found = grounding.content_words(" ".join(h.chunk.text for h in hits))
    return len(words & found) / len(words)


_QUANTITY_NOUNS = ("valuation|value|price|cost|revenue|size|amount|number|budget|salary|"
                   "population|count|total|sum|percentage|rate|share|worth|fee|profit|income")
# Measures that name one particular quantity: a question asking for a valuation is
# not answered by a sentence that gives an investment, however many words it shares.
# (Generic ones - size, amount, number, total, value - are left out: they paraphrase.)
_SPECIFIC_MEASURES = frozenset(
    "valuation revenue revenues profit profits income salary salaries wage wages population "
    "price prices fee fees sales margin debt tax taxes loss losses earnings turnover".split())
_SPECIFIC_RE = "|".join(sorted(_SPECIFIC_MEASURES))
_NUMBER_WORDS = frozenset("one two three four five six seven eight nine ten eleven twelve "
                          "twenty thirty forty fifty hundred thousand dozen half".split())


def expected_type(question: str) -> str | None:
    """The kind of fact a question asks for, from English question words."""
    q = question.lower()
    if re.search(r"\bhow (much|many|large|big|long|often)\b|\bby how\b", q) or re.search(
            rf"\bwhat (is|was|are|were) (the |its |their |[\w-]+'s )?({_QUANTITY_NOUNS})\b", q) or re.search(
            rf"\bwhat (is|was|are|were) (the |its |their |this |that )?([\w-]+['’]s )?"
            rf"((?!of |in |for )[a-z-]+ ){{0,2}}({_SPECIFIC_RE})\b", q) or re.search(
            rf"\bwhat ({_QUANTITY_NOUNS})\b", q):
        return "figure"
    # who/when/where open the question (after "and", "so"...); inside it they
    # are conjunctions or relative pronouns ("issues to weigh when deploying").
    opening = r"^\W*(?:(?:and|so|then|but|also)\W+)?"
    if re.search(opening + r"when\b", q) or re.search(
            r"\b(what|which) (year|date|month|day)\b|\bin what year\b", q):
        return "date"
    if re.search(opening + r"(who|whom|whose|where)\b", q) or re.search(
            r"\bwhat(?:'s|’s| is| was| are| were) the names? of\b", q) or re.search(
            opening + r"(in |at |from |for |to )?which [a-z]+", q):
        return "name"
    return None


def asked_measure(question: str) -> str | None:
    """The particular quantity a figure question asks for ("revenue" in "How much
    revenue does X make?", "valuation" in "What was X's valuation?"), or None."""
    q = question.lower()
    for m in re.finditer(r"\b[a-z]+\b", q):
        if m.group(0) in _SPECIFIC_MEASURES:
            return m.group(0)
    m = re.search(r"\bhow many ([a-z]+)", q)  # "how many employees"
    return m.group(1) if m and grounding.content_words(m.group(1)) else None


def mentions(window: str, word: str) -> bool:
    """Whether a word, or one of its forms ("valuation": "valued", "value"),
    occurs in a text: the same Snowball stem or the same first five letters."""
    target = grounding.stem(word)
    for w in re.findall(r"[a-z]+", window.lower()):
        if grounding.stem(w) == target or (len(w) >= 5 and len(word) >= 5 and w[:5] == word[:5]):
            return True
    return False


_MONEY_OR_SHARE = re.compile(
    r"(?:[$€£¥]|\b(?:us\$|usd|eur|gbp)\s?)\s*\d[\d,.]*(?:\s*(?:thousand|million|billion|trillion|"
    r"[kmb]n?)\b)?|\d[\d,.]*\s*(?:(?:thousand|million|billion|trillion)\s+)?(?:dollars?|euros?|"
    r"pounds?|yen)\b|\d[\d,.]*\s*(?:%|per\s?cent)", re.I)
_CURRENCY_WORDS = frozenset("dollars euros pounds yen cents".split())


def answers_type(text: str, kind: str | None, question: str = "") -> bool:
    if kind is None:
        return True
    figures, names = grounding.facts(text)
    if kind == "figure":  # an amount or count; a bare year is not "how much"
        counted = re.search(r"\bhow many ([a-z]+)", question.lower())
        if counted and counted.group(1) not in _CURRENCY_WORDS:
            # "how many teachers" is not answered by "$2 million" or "40%"
            text = _MONEY_OR_SHARE.sub(" ", text)
        return bool(amounts(text)) or bool(
            _NUMBER_WORDS & set(re.findall(r"[a-z]+", text.lower())))
    if kind == "date":
        return any(re.fullmatch(r"\d{4}", f) for f in figures) or any(
            m in text.lower() for m in _MONTHS)
    asked = {n.lower() for n in grounding.facts(question)[1]}
    return any(n.lower() not in asked for n in names)


def answerable(question: str, query: str, hits: list[Hit]) -> bool:
    """For a question that asks for a figure, a date or a name: whether some
    retrieved sentence (with the one before it) gives that kind of fact, names
    everything the question names, and shares at least one other content word
    with the question (or with the conversation, for a follow-up) unless the
    question quotes an amount and the sentence window holds it. A figure question
    about one measure ("revenue") needs a window that names it. A "how many
    employees" question over passages whose figures are all about money fails.
    One shared word, not more: paraphrased questions share few words."""
    kind = expected_type(question)
    if kind is None:
        return True
    terms = [t.lower() for t in specific_terms(question)]
    measure = asked_measure(question) if kind == "figure" else None
    quotes_amount = bool(amounts(question))
    words = grounding.content_words(question) | (
        grounding.content_words(query) if query != question else set())
    words -= {grounding.stem(t) for t in terms}
    for window in grounding.windows([h.chunk.text for h in hits]):
        sentence = grounding.split_sentences(window)[-1] if window.strip() else window
        if not answers_type(sentence, kind, question):
            continue
        norm = grounding.normalise(window)
        if not all(grounding.occurs(t, norm) for t in terms):
            continue
        if measure and not mentions(window, measure):
            continue
        if not words or words & grounding.content_words(window) or quotes_amount:
            return True
    return False


_EXCLUDING = re.compile(
    r"^\W*(?:besides|apart from|aside from|other than|except for|excluding|beyond|"
    r"not counting|leaving aside)\b(?P<aside>[^,;:?]{1,80})[,;:]\s*(?P<rest>.+)$", re.I)


def focus(question: str) -> tuple[str, str]:
    """The part of a question that asks something, and the part it sets aside:
    "Besides the workforce money, what has Maryland set up?" asks "what has
    Maryland set up?" and names the workforce money only to exclude it."""
    m = _EXCLUDING.match(question)
    return (m.group("rest"), m.group("aside")) if m else (question, "")


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9$%]+", text.lower()) if len(w) > 2}


def best_quote(chunk_text: str, claim: str) -> str:
    """The sentence of a chunk that shares most words with a claim."""
    sents = grounding.split_sentences(chunk_text) or [chunk_text]
    target = _words(grounding.strip_citations(claim))
    return max(sents, key=lambda s: len(_words(s) & target) / (1 + 0.01 * len(s)))


def _citations(hits: list[Hit], numbers: list[int], claims: dict[int, str]) -> list[Citation]:
    return [
        Citation(n=n, chunk=hits[n - 1].chunk, quote=best_quote(hits[n - 1].chunk.text, claims.get(n, "")),
                 score=round(hits[n - 1].similarity, 4))
        for n in numbers
    ]


def refusal(question: str, query: str, hits: list[Hit], reason: str) -> Answer:
    closest = sorted(hits, key=lambda h: h.similarity, reverse=True)[:3]
    return Answer(
        text=f"Not found in your documents: {reason}.",
        citations=[Citation(n=i + 1, chunk=h.chunk, quote=best_quote(h.chunk.text, query),
                            score=round(h.similarity, 4)) for i, h in enumerate(closest)],
        mode="refused", grounded=True, question=question, query=query, note=reason,
    )


PROMPT_CHARS = 1200  # about 300 tokens of sources: ~0.9 s of prompt reading on 2 cores
MIN_WORD_COVERAGE = 0.5  # below min_relevance, still answer if this share of question words match
LEXICAL_WEIGHT = 0.5  # weight of question-word coverage beside embedding similarity
TYPE_BONUS = 0.2  # for a sentence that gives the kind of fact the question asks for
FOLLOW_UP_WEIGHT = 0.85  # share of the newest question (vs the condensed query) in similarity
SECOND_QUOTE_MARGIN = 0.1  # quote a second sentence when it scores this close to the best
SECOND_QUOTE_WORDS = 0.25  # ... or when it adds this share of the question's words (IDF-weighted)
RELEVANCE_MARGIN = 0.0  # a generated answer must be at least as relevant as the best source sentence


class SentenceRanker:
    """Scores text against a question: cosine similarity (MiniLM) plus the
    IDF-weighted share of the question's content words it contains (with the
    sentence before it, which often names what "it" or "the state" is) plus a
    bonus when it holds the kind of fact asked for. What a question sets aside
    ("Besides the workforce money, ...") counts against a sentence by its
    similarity to that part."""

    def __init__(self, question: str, query: str, hits: list[Hit], embedder: OnnxEmbedder):
        same = query == question
        question, aside = focus(question)
        query = question if same else query
        self.question, self.kind, self.embedder = question, expected_type(question), embedder
        self.measure = asked_measure(question) if self.kind == "figure" else None
        self.cands: list[tuple[int, str, str]] = []  # (source n, sentence, sentence with context)
        for n, h in enumerate(hits, start=1):
            prev = ""
            for sent in grounding.split_sentences(h.chunk.text):
                if len(_words(sent)) >= 3:
                    self.cands.append((n, sent, f"{prev} {sent}"))
                prev = sent
        # A follow-up was retrieved with the conversation around it, but its
        # answer is what the newest question asks: weigh that one most.
        self.terms = grounding.content_words(question) or grounding.content_words(query)
        docs = [grounding.content_words(c) for _, _, c in self.cands] or [set()]
        self.idf = {t: math.log(1 + len(docs) / (1 + sum(t in d for d in docs))) for t in self.terms}
        self.coverable = {t for t in self.terms if any(t in d for d in docs)}
        vecs = embedder.embed([question, query, aside or question] + [s for _, s, _ in self.cands])
        w = 1.0 if query == question else FOLLOW_UP_WEIGHT
        self.qvec = w * vecs[0] + (1 - w) * vecs[1]
        self.sims = vecs[3:] @ self.qvec
        if aside:  # what the question sets aside counts against a sentence
            self.sims = self.sims - vecs[3:] @ vecs[2]
        self._ranked: list[tuple[float, int, str]] | None = None

    def _score(self, sim: float, sentence: str, context: str) -> float:
        total = sum(self.idf.values())
        words = grounding.content_words(context)
        lexical = sum(w for t, w in self.idf.items() if t in words) / total if total else 0.0
        typed = TYPE_BONUS if self.kind and answers_type(sentence, self.kind, self.question) else 0.0
        return float(sim) + LEXICAL_WEIGHT * lexical + typed

    def own_lexical(self, sentence: str, besides: frozenset[str] = frozenset()) -> float:
        """IDF-weighted share of the question's words in the sentence itself
        (leaving out the content words `besides`), out of those that occur in
        some candidate: a word no source holds cannot be covered."""
        total = sum(self.idf[t] for t in self.coverable)
        words = grounding.content_words(sentence) - besides
        return sum(w for t, w in self.idf.items() if t in words) / total if total else 0.0

    def ranked(self) -> list[tuple[float, int, str]]:
        """(score, source n, sentence), best first. For a question about one
        measure ("revenue"), only sentences that name it (with the sentence
        before) take part, when there are any."""
        if self._ranked is None:
            pairs = list(zip(self.sims, self.cands))
            if self.measure and any(mentions(c, self.measure) for _, (_, _, c) in pairs):
                pairs = [p for p in pairs if mentions(p[1][2], self.measure)]
            self._ranked = sorted(((self._score(sim, s, c), n, s) for sim, (n, s, c) in pairs),
                                  reverse=True)
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

    def score_text(self, text: str) -> float:
        plain = grounding.strip_citations(text)
        return self._score(float(self.embedder.embed([plain])[0] @ self.qvec), plain, plain)


def extractive(question: str, query: str, hits: list[Hit], ranker: SentenceRanker,
               note: str) -> Answer:
    """Quote the source sentences that best answer the question."""
    ranked = ranker.ranked()
    top = ranked[0][0]
    chosen = [x for x in ranked[:2] if x[0] >= top - SECOND_QUOTE_MARGIN]
    # MiniLM can rank a sentence about the topic above the one that holds the
    # question's distinctive words ("initial investment"): when another sentence
    # holds a quarter of the question's words (of those the sources hold at all,
    # weighted by IDF) that the first quote lacks, quote it as well.
    if len(chosen) == 1 and len(ranked) > 1:
        typed = [x for x in ranked if answers_type(x[2], ranker.kind, ranker.question)] or ranked
        first = frozenset(grounding.content_words(chosen[0][2]))
        gain = {x: ranker.own_lexical(x[2], besides=first) for x in typed if x != chosen[0]}
        if gain:
            extra = max(gain, key=gain.get)
            if gain[extra] >= SECOND_QUOTE_WORDS:
                chosen.append(extra)
    text = " ".join(f"\u201c{s.strip()}\u201d [{n}]" for _, n, s in chosen)
    numbers = list(dict.fromkeys(n for _, n, _ in chosen))
    cites = [Citation(n=n, chunk=hits[n - 1].chunk,
                      quote=" \u2026 ".join(s.strip() for _, m, s in chosen if m == n),
                      score=round(hits[n - 1].similarity, 4)) for n in sorted(numbers)]
    return Answer(text=text, citations=cites, mode="extractive", grounded=True,
                  question=question, query=query, note=note)


def answer(
    question: str,
    query: str,
    hits: list[Hit],
    llm: LanguageModel,
    embedder: OnnxEmbedder,
    min_relevance: float,
    max_tokens: int,
    temperature: float,
    on_token: Callable[[str], None] | None = None,
    prompt_sentences: int = 6,
) -> Answer:
    a = _answer(question, query, hits, llm, embedder, min_relevance, max_tokens, temperature,
                on_token, prompt_sentences)
    a.retrieved = list(hits)
    return a


def _answer(question, query, hits, llm, embedder, min_relevance, max_tokens, temperature,
            on_token, prompt_sentences) -> Answer:
    timings: dict[str, float] = {}
    if not hits:
        return refusal(question, query, hits, "the index holds no passages to search")
    best = max(h.similarity for h in hits)
    if best < min_relevance and word_coverage(question, hits) < MIN_WORD_COVERAGE and not (
            quoted_amounts(question, hits)):
        return refusal(question, query, hits,
                       f"no passage is close enough to the question (best similarity {best:.2f})")
    missing = missing_terms(question, hits)
    if missing:
        return refusal(question, query, hits,
                       "the sources never mention " + ", ".join(f"'{m}'" for m in missing))
    if not answerable(question, query, hits):
        return refusal(question, query, hits,
                       f"no passage gives the {expected_type(question)} this question asks for")

    ranker = SentenceRanker(question, query, hits, embedder)
    kind = ranker.kind
    best_source = ranker.ranked()[0][0] if ranker.cands else 0.0

    t = time.perf_counter()
    pieces: list[str] = []
    # The model sees only the best sentences: a 135M model reads a short
    # context better, and prompt tokens cost ~3 ms each on a small CPU.
    for piece in llm.stream(prompts.answer_messages(query, ranker.passages(len(hits), prompt_sentences)),
                            max_tokens, temperature):
        pieces.append(piece)
        if on_token:
            on_token(piece)
    draft = "".join(pieces).strip()
    timings["generate"] = time.perf_counter() - t
    timings["tokens"] = float(len(pieces))

    # Checked against the whole chunks: a citation names a chunk, not a sentence.
    result = grounding.check(draft, [h.chunk.text for h in hits]).first(MAX_SENTENCES)
    dropped = [f"{v.sentence} ({v.reason})" for v in result.dropped]
    why = ""
    if not result.kept:
        why = "the model's answer did not survive the grounding check"
    elif not answers_type(result.text, kind, question):
        why = f"the model's checked answer does not give the {kind} asked for"
    elif ranker.cands and ranker.score_text(result.text) < best_source - RELEVANCE_MARGIN:
        why = "a source sentence answers the question more closely than the model did"
    if not why:
        claims: dict[int, str] = {}
        for v in result.kept:
            for n in v.cites:
                claims[n] = claims.get(n, "") + " " + v.sentence
        a = Answer(text=result.text, citations=_citations(hits, sorted(result.cited), claims),
                   mode="generated", grounded=True, question=question, query=query,
                   dropped=dropped,
                   note="citation marks added by the grounding check"
                   if any(v.attributed for v in result.kept) else "")
    else:
        a = extractive(question, query, hits, ranker, why)
        a.dropped = dropped
    a.timings.update(timings)
    return a
