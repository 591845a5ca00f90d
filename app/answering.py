"""From retrieved sources to an Answer: a small orchestrator over the seams.

question ──app.question.analyse──> Question (kind, measure, terms, aside)
hits ──app.ranking.Ranker──> candidate sentences, best first
Question + best sentences ──LanguageModel──> draft
draft ──app.verify.Verifier──> kept sentences, dropped ones with reasons
Policy ──> refuse, quote, or show the verified draft

The steps, in order:

1. Refuse when retrieval found nothing relevant enough: no chunk reaches
   `min_relevance` cosine similarity, fewer than half of the question's
   words occur in the passages, and it quotes none of their amounts.
2. A specific term of the question (a name, acronym or figure) that occurs
   in none of the passages is evidence that retrieval missed, not proof that
   the collection lacks it: `find_more` looks for passages holding it in the
   whole collection (the keyword index) and adds them. Only a term the
   collection itself lacks is a reason to refuse. A question about one
   release ("What changed in Datasette 0.40?") is answered from the passages
   under that release's own title, as changelogs give it (`release_scope`),
   and a question for its date by quoting that title (`release_date`).
   Under the strict policy, a noun by which the question names a thing
   ("Which encryption algorithm …?") that the whole collection never uses,
   where the passages' folders are large enough for that silence to count,
   is refused the same way (`unnamed_things`), and so is a question that pairs
   one of its names with another term the collection uses, each in few of
   its files, but never in the same file ("How can orjson read YAML files?"
   over READMEs where only another package's mentions YAML: `apart_terms`).
3. Under the strict policy, a question that asks for a figure, a date or a
   name is refused when no retrieved sentence gives that kind of fact about
   what it names (`answerable`), or when the only such sentences give another
   name the question's place ("How much did Google invest?" against "Amazon
   is investing $50 billion": the role verifier's parse, when the sentence
   names someone the question does not).
4. The language model drafts an answer over the best sentences; the verifier
   drops every sentence it cannot verify. Under the strict policy a draft
   whose first sentence fails the verifier, or answers less closely than the
   best source sentence, is abandoned as soon as that sentence is complete:
   the model stops writing, and step 5 quotes.
   When the local model has no free context within `RAGCHAT_LLM_WAIT`
   seconds (several people asking at once), there is no draft: step 5 quotes.
5. If nothing survives, or (strict policy) what survives gives no fact of the
   kind asked for, or a source sentence answers more closely than the draft,
   the answer is extractive: the best source sentences, quoted verbatim, each
   under its section's title when that title names what was asked. Under the
   strict policy, quotes that give no fact of the kind asked for are refused,
   as a draft that gives none would be.

The strict policy is for small local models, which need the question-type
gates and the ranker's veto; the model policy lets a capable model answer in
its own words, still under the verifier. `Answer.grounded` is true when every
sentence shown was verified (a quote is verbatim by construction); a refusal
states nothing and is not "grounded".
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from app import prompts, text
from app.errors import ModelBusy
from app.llm import LanguageModel
from app.question import Question
from app.ranking import Embedder, Ranker, SentenceRanker, best_quote, sentence_key
from app.types import Answer, Citation, Hit
from app.verify import Verifier

MAX_SENTENCES = 3  # an answer, not an essay: the prompt asks for one or two
MIN_WORD_COVERAGE = 0.5  # below min_relevance, still answer if this share of question words match
SECOND_QUOTE_MARGIN = 0.1  # quote a second sentence when it scores this close to the best
SECOND_QUOTE_WORDS = 0.25  # ... or when it adds this share of the question's words (IDF-weighted)
DISAGREEMENT_MARGIN = 0.1  # another file's rival figure is quoted when it scores this close
RELEVANCE_MARGIN = 0.0  # a generated answer must be at least as relevant as the best source sentence

FindMore = Callable[[list[str]], list[Hit]]  # terms -> passages of the collection holding them
Unused = Callable[[list[str]], list[str]]  # word stems -> those no passage of the collection uses
# terms -> the files whose passages use each, and how many files the collection holds
FilesUsing = Callable[[list[str]], tuple[dict[str, set[str]], int]]
Vocabulary = Callable[[str], int]  # folder -> how many word stems its files use together
SILENCE_VOCABULARY = 2000  # files that use fewer are too few for their silence to count
# A question's rare words missing from the quotes (`quote_coverage`, weighed by rarity and
# MiniLM's word match) is evidence from fewer: a 40-page report's or 17 reference pages'
# (1,600-1,700 stems), never a short article's (a few hundred). That the whole collection
# never uses a word is not: a long report never says "role" or "document" either.
COVERAGE_VOCABULARY = 1000
Conflict = Callable[[str, str], str]  # (question, passage) -> why it answers about another name
Agrees = Callable[[str, str], bool]  # (question, passage) -> whether it holds the names in their parts
Opening = Callable[[str], "Hit | None"]  # a document's path -> its first passage
Within = Callable[[str, int, str], "list[Hit]"]  # a document's path, k, query -> its nearest passages
Rarity = Callable[[list[str]], dict[str, float]]  # word stems -> IDF over the collection's passages
MIN_QUOTE_COVERAGE = 0.25  # the quotes must hold this share of the question's words, by rarity
WORD_MATCH = 0.5  # MiniLM cosine at which a word of the quote stands for a word of the question


@dataclass(frozen=True)
class Policy:
    """What decides between refusing, quoting and showing the model's answer."""

    name: str
    question_gates: bool  # refuse figure/date/name questions no passage answers; type-check drafts
    ranker_veto: bool  # quote a source sentence that answers more closely than the draft
    first_sentence: bool  # a draft whose first sentence fails the verifier or the veto is abandoned


POLICIES = {
    "strict": Policy("strict", question_gates=True, ranker_veto=True, first_sentence=True),
    "model": Policy("model", question_gates=False, ranker_veto=False, first_sentence=False),
}


def missing_terms(q: Question, hits: list[Hit]) -> list[str]:
    """Terms of the question that none of the passages holds, in its text or
    under the headings it stands under (`text.holds_term`: a part of a code
    name, "128" of `_random_chars_128`, is held, and so is a version the
    passages give longer, "SQLite 3.46" of "SQLite 3.46.0")."""
    joined = text.normalise(" ".join(h.chunk.headed for h in hits))
    return [t for t in q.terms if not text.holds_term(t, joined) and not any(
        text.titles_release(t, h.chunk.text, h.chunk.section, text.normalise(h.chunk.headed),
                            h.chunk.source)
        for h in hits)]


def unnamed_things(q: Question, hits: list[Hit], unused: Unused, vocabulary: Vocabulary,
                   verifier: Verifier) -> list[str]:
    """Nouns by which the question names a thing ("Which encryption algorithm
    …?") that no passage of the whole collection uses in any form, where that
    silence is evidence: every folder the passages come from uses at least
    `SILENCE_VOCABULARY` word stems in its files (a documentation folder's
    silence counts; a short article's on the asker's own word, "money", does
    not, even beside large folders in one collection), and most of the
    question's words are the collection's (a question in another
    language is left to retrieval). A noun that only qualifies
    ("spreadsheet-friendly"), a verb ("went"), and a word the collection holds
    inside a longer one do not count. Needs the verifier's parse (spaCy's,
    loaded only for a question with a word the collection lacks)."""
    things_named = getattr(verifier, "things_named", None)
    words = sorted(text.content_words(q.focus))
    if things_named is None or not words:
        return []
    absent = set(unused(words))
    if not absent or len(absent) * 2 > len(words):
        return []
    if not _silence_counts(hits, vocabulary):
        return []
    return list(dict.fromkeys(w for w, s in things_named(q.focus) if s in absent))


APART_SHARE = 0.5  # a term more than this share of the files use picks out no documents
SCOPE_READ = 2  # a question scoped to one document reads up to this many times k passages
_DOCUMENT_WORDS = frozenset({"readme"})  # names the question gives the documents themselves


def apart_terms(q: Question, hits: list[Hit], files_using: FilesUsing,
                vocabulary: Vocabulary, verifier: Verifier) -> tuple[str, str] | None:
    """A name of the question (a word written as a file of the collection is
    one: "tqdm" of tqdm.rst) and another of its terms (a name, or a noun by
    which it names a thing) that the collection uses, each in at most
    `APART_SHARE` of its files, but never in one file: "How can orjson read
    YAML files?" over READMEs where only tabulate's mentions YAML. That
    silence is evidence only where the passages' folders are large enough
    (`_silence_counts`), and the question is not a follow-up. A word is
    confirmed as a noun naming a thing by the verifier's parse (spaCy's) of
    the question with the name put as "it", only for a word that would refuse."""
    if q.follow_up:
        return None
    names = [n for n in dict.fromkeys(text.facts(q.focus)[1]) if n.lower() not in _DOCUMENT_WORDS]
    # a word written as a file of the collection is named ("tqdm" of tqdm.rst,
    # "python-dotenv" of python-dotenv.md), in whatever case it is written
    written = [w for w in dict.fromkeys(re.findall(r"[A-Za-z][\w.-]*[\w]", q.focus))
               if w not in names and w.lower() not in _DOCUMENT_WORDS]
    if not (names or written) or not _silence_counts(hits, vocabulary):
        return None  # the folders' counts only when needed
    words = sorted(text.content_words(q.focus))
    files, total = files_using(names + written + words)
    names += [w for w in written if any(
        os.path.splitext(os.path.basename(f))[0].lower() == w.lower() for f in files.get(w, ()))]
    words = [w for w in words if w not in {text.stem(n.lower()) for n in names}]
    picked = {t: f for t, f in files.items() if f and len(f) <= APART_SHARE * total}
    asked_about = getattr(verifier, "things_asked_about", None)
    things: dict[str, set[str]] = {}
    for a in names:
        for b in names + words:
            if a == b or a not in picked or b not in picked or picked[a] & picked[b]:
                continue
            if b in words:
                # parsed with the name put as "it": after a lower-case name the tagger
                # reads the verb that ends the question as a noun ("Which C function
                # does cymem wrap?")
                if a not in things:
                    things[a] = asked_about(text.as_it(q.focus, a)) if asked_about else set()
                if b not in things[a]:
                    continue
            return a, b
    return None


def asked_of(q: Question, verifier: Verifier, files_using: FilesUsing | None) -> list[tuple[str, str]]:
    """For a question for a figure or a name: (word, stem) of each noun naming
    the thing it asks the fact of (the verifier's parse, `things_asked_of`:
    "log" of "How long does Datasette keep its query log?"), less the names it
    asks about and a word written as a file of the collection ("tinytag" of
    tinytag.md): those the passages are checked for already. A follow-up
    leans on the conversation for its things, and is left alone."""
    things_of = getattr(verifier, "things_asked_of", None)
    if things_of is None or q.kind not in ("figure", "name") or q.follow_up:
        return []
    named = {text.stem(n.lower()) for n in list(q.terms) + text.facts(q.focus)[1]
             + re.findall(r"[\w-]+", q.scope)}
    things = [(w, s) for w, s in things_of(q.focus) if s not in named]
    if things and files_using is not None:
        files, _ = files_using([w for w, _ in things])
        things = [(w, s) for w, s in things if not any(
            _file_key(f) == text.name_key(w) for f in files.get(w, ()))]
    return things


def unspoken(things: list[tuple[str, str]], passages: list[str],
             embedder: Embedder | None) -> list[str]:
    """The words of `things` when the passages speak of none of them: none
    holds one in any form or spelling, and MiniLM puts none of the passages'
    words close to one (`WORD_MATCH`: "logging" for "log", "application" for
    "app"). A figure
    quoted from such passages is the figure of something else ("…time limit for
    the query…" for "How long does Datasette keep its query log?"); [] when
    they speak of one, or when there is nothing to look for."""
    if not things:
        return []
    joined = " ".join(passages)
    held = {text.stem(w) for w in re.findall(r"[a-z]+", joined.lower())}
    if any(s in held for _, s in things):
        return []
    words = [w for w, _ in things]
    if embedder is not None:
        own = sorted({w.lower() for w in re.findall(r"[A-Za-z]{4,}", joined)
                      if text.content_words(w)})
        if own:
            vecs = embedder.embed(words + own)
            if (vecs[:len(words)] @ vecs[len(words):].T).max() >= WORD_MATCH:
                return []
    return words


def _file_key(source: str) -> str:
    """A file's name without its extension, as `text.name_key` writes names:
    "python_dotenv.md" is "pythondotenv"."""
    return text.name_key(os.path.splitext(os.path.basename(source))[0])


def document_scope(q: Question, hits: list[Hit], within: Within,
                   files_using: FilesUsing) -> tuple[list[Hit], frozenset[str], str]:
    """For a question that names a thing one document of the collection is
    about (its file is named after it: "What license is aiosqlite released
    under?" and aiosqlite.rst), the passages of that document retrieval found,
    then its passages nearest to the question read without the name ("What
    license is it released under?", as the ranker reads it), then those of
    other documents that mention the thing, as many as were retrieved, and then
    more of the document's own, up to `SCOPE_READ` times as many in all
    (retrieval's passages of the document may all be about something else: four
    of python-dateutil's, none its licence); the other passages are
    about something else, and a sentence from them answers for another thing
    ("Contributions before December 1, 2017 …
    are released only under the BSD 3-Clause License" from another package's
    README). Only for a word the collection uses in at most `APART_SHARE` of
    its files ("Datasette" in the Datasette docs picks out no document), and
    not for a follow-up, whose thing the conversation may name. With the
    passages, the word stems of the name: the document is about it, so its
    quotes need not repeat it (`quote_coverage`)."""
    if q.follow_up or not hits:
        return hits, frozenset(), ""
    written = [w for w in dict.fromkeys(re.findall(r"[A-Za-z][\w.-]*[\w]", q.focus))
               if w.lower() not in _DOCUMENT_WORDS]
    files, total = files_using(written)
    for w in written:
        key = text.name_key(w)
        using = files.get(w, set())
        about = [f for f in using if _file_key(f) == key]
        if len(about) != 1 or len(using) > APART_SHARE * total:
            continue
        stems = text.content_words(w) or {w.lower()}
        kept = [h for h in hits if h.chunk.source == about[0] or (
            stems & text.content_words(h.chunk.headed) or w.lower() in h.chunk.headed.lower())]
        named = frozenset(text.content_words(w))
        first = [h for h in kept if h.chunk.source == about[0]]
        nearest = within(about[0], len(hits), text.as_it(q.focus, w))
        order = {h.chunk.id: h for h in first + nearest + kept}
        scoped = list(order.values())[:len(hits)]
        # and more of the document itself, not of others that mention the thing
        held = {h.chunk.id for h in scoped}
        more = [h for i, h in order.items() if i not in held and h.chunk.source == about[0]]
        return scoped + more[:(SCOPE_READ - 1) * len(hits)], named, w
    return hits, frozenset(), ""


def _as_written(question: str, stems: set[str]) -> list[str]:
    """The words of a question whose content-word stems are among `stems`, as
    the question writes them, each once."""
    return list(dict.fromkeys(w for w in re.findall(r"[A-Za-z][\w'’-]*", question)
                              if text.content_words(w) & stems))


def quote_coverage(q: Question, quoted: str, rarity: Rarity,
                   embedder: Embedder | None = None) -> tuple[float, list[str]]:
    """The share of the question's content words that the quoted text holds,
    each weighted by its rarity in the collection (a word most passages use,
    "datasette", counts little), and the question's words it lacks. With an
    embedder, a word the quote lacks counts as held when MiniLM puts one of the
    quote's words close to it (`WORD_MATCH`: "forbid" and "restricting",
    "visitors" and "users"): a question in words of its own is not refused."""
    words = sorted(q.words)
    weights = rarity(words)
    held = text.content_words(quoted)
    total = sum(weights.values())
    if not total:
        return 1.0, []
    lacking = {w for w in words if w not in held}
    named = _as_written(q.focus, lacking)
    share = sum(v for w, v in weights.items() if w in held) / total
    if embedder is not None and named and share < MIN_QUOTE_COVERAGE:  # else it holds enough
        own = sorted({w.lower() for w in re.findall(r"[A-Za-z]{4,}", text.strip_citations(quoted))
                      if text.content_words(w)})
        if own:
            vecs = embedder.embed(named + own)
            close = (vecs[:len(named)] @ vecs[len(named):].T).max(axis=1) >= WORD_MATCH
            matched = {s for w, c in zip(named, close) if c for s in text.content_words(w)}
            held |= matched
            named = [w for w, c in zip(named, close) if not c]
            share = sum(v for w, v in weights.items() if w in held) / total
    return share, named


def asks(q: Question) -> list[Question]:
    """Each sentence of a question that has words of its own, as a question of
    its own: "Compare Solana with the other platforms. What makes it stand
    out?" asks two things, and quotes that answer one answer it in part. The
    question itself when it is one sentence."""
    parts = [s for s in text.split_sentences(q.focus) if text.content_words(s)]
    if len(parts) < 2:
        return [q]
    return [replace(q, focus=s, words=frozenset(text.content_words(s))) for s in parts]


def _silence_counts(hits: list[Hit], vocabulary: Vocabulary | None,
                    floor: int = SILENCE_VOCABULARY) -> bool:
    """Whether every folder the passages come from uses enough word stems in
    its files (`floor`) for what they do not say to be evidence."""
    folders = {os.path.dirname(h.chunk.source) for h in hits}
    return vocabulary is not None and bool(folders) and min(map(vocabulary, folders)) >= floor


def releases(q: Question) -> list[str]:
    """Versioned names of the question ("Datasette 0.40")."""
    return [t for t in q.terms if text.versioned(t)]


def release_scope(q: Question, hits: list[Hit]) -> tuple[Question, list[Hit]]:
    """A question about one release of something ("What changed in Datasette
    0.40?") over passages that give that release under a title of its own ("#
    0.40 (2020-04-21)", as changelogs do): the passages are cut to what stands
    under that title, the others are set aside (a link to "Datasette 0.40: the
    annotated release notes" elsewhere says nothing of what changed), and the
    versioned name is no longer a term (the title has answered it). A document
    or section whose own title names the release ("Datasette 1.0a20 plugin
    upgrade guide") is about it too, and stays."""
    terms = list(q.terms)
    for term in releases(q):
        v = text.versioned(term)
        scoped, named = [], []
        # the release's own title before those of its point releases ("0.51" before "0.51.1")
        exact = any(text.release_spans(h.chunk.text, h.chunk.section, v[1], exact=True) for h in hits)
        for h in hits:
            spans = text.release_spans(h.chunk.text, h.chunk.section, v[1], exact)
            if spans and text.titles_release(term, h.chunk.text, h.chunk.section,
                                             text.normalise(h.chunk.headed), h.chunk.source):
                s, e = spans[0][0], spans[-1][1]
                cut = h.chunk.text[s:e]
                section = text.title_at(cut) or h.chunk.section  # the title it now starts under
                chunk = replace(h.chunk, text=cut, start=h.chunk.start + s,
                                end=h.chunk.start + e, section=section)
                scoped.append(replace(h, chunk=chunk))
            elif text.holds_term(term, text.normalise(f"{h.chunk.title}\n{h.chunk.section}")):
                named.append(h)
        if scoped:
            hits = scoped + named
            terms.remove(term)
    return (replace(q, terms=tuple(terms)) if len(terms) < len(q.terms) else q), hits


def quoted_amounts(q: Question, hits: list[Hit]) -> list[str]:
    """Amounts the question quotes that the passages hold: a question quoting
    the documents' own figure is on topic, however far its other words are."""
    joined = text.normalise(" ".join(h.chunk.text for h in hits))
    return [f for f in text.amounts(q.text) if text.occurs(f, joined)]


def word_coverage(q: Question, hits: list[Hit]) -> float:
    """Share of the question's content words found in the retrieved passages."""
    words = text.content_words(q.text)
    if not words:
        return 0.0
    found = text.content_words(" ".join(h.chunk.text for h in hits))
    return len(words & found) / len(words)


def answerable(q: Question, hits: list[Hit], conflict: Conflict | None = None,
               agrees: Agrees | None = None, admitted: list[str] | None = None) -> str:
    """For a question that asks for a figure, a date or a name: "" when some
    retrieved sentence (with the one before it) gives that kind of fact, names
    everything the question names, and shares at least one other content word
    with the question (or with the conversation, for a follow-up) unless the
    question quotes an amount the window holds; else why not. A figure question
    about one measure ("revenue") needs a window that names it, and one that asks
    how long, how often or how many bytes a window that gives such a unit. One shared word,
    not more: paraphrased questions share few words. With `agrees` (the role
    verifier's), a window that shares none but holds two or more of the
    question's names in the parts the question gives them, around one verb,
    counts too ("How much is Amazon putting into OpenAI?" against "…Amazon
    investing $50 billion in OpenAI"): parsed only for a question that names two.
    When only such windows let the question through, their sentences are put in
    `admitted`: the answer is to come from the evidence that let it through.
    With `conflict` (the role verifier's), a sentence that names someone the
    question does not, or names the question's names in the other order, must
    not give another name the question's slot ("How much did Google invest…?"
    against "…Amazon investing $50 billion…")."""
    if q.kind is None:
        return ""
    terms = [t.lower() for t in q.terms]
    words = set(text.content_words(q.text)) | (
        text.content_words(q.query) if q.follow_up else set())
    words -= {text.stem(t) for t in terms}
    why = f"no passage gives the {q.kind} this question asks for"
    two_names = len(set(text.facts(q.focus)[1])) >= 2
    for window in text.windows([h.chunk.text for h in hits]):
        sentence = text.split_sentences(window)[-1] if window.strip() else window
        if not text.gives_kind(sentence, q.kind, q.focus):
            continue
        norm = text.normalise(window)
        if not all(text.occurs(t, norm) for t in terms):
            continue
        if q.measure and not text.mentions(window, q.measure):
            continue
        if q.dimension and not text.gives_dimension(window, q.dimension):
            why = f"no passage gives the {q.kind} {_UNITS[q.dimension]}"
            continue
        shares = not words or bool(words & text.content_words(window)) or q.quotes_amount
        if shares or (agrees is not None and two_names and agrees(q.focus, window)):
            clash = conflict(q.focus, window) if conflict is not None and _may_clash(
                terms, sentence, window) else ""
            if clash:
                why = f"the {q.kind} the passages give is not about what it asks: {clash}"
            elif shares or admitted is None:
                if admitted is not None:
                    admitted.clear()
                return ""
            else:
                admitted.append(sentence)
    return "" if admitted else why


_UNITS = {"time": "in a unit of time", "rate": "as a rate (per second, per day, …)",
          "size": "in a unit of size in bytes", "long": "in a unit of time or length"}


def _may_clash(asked: list[str], sentence: str, window: str) -> bool:
    """Whether a sentence could give another name the question's place, so
    that the role gate's parse is worth its time: it names someone the question
    does not, or the question's names in the other order (the sentence before
    counts only for a sentence that names none of them)."""
    named = [n.lower() for n in text.facts(sentence)[1]]
    if set(named) - set(asked) or _reordered(asked, named):
        return True
    return not set(named) & set(asked) and _reordered(
        asked, [n.lower() for n in text.facts(window)[1]])


def _reordered(asked: list[str], named: list[str]) -> bool:
    """Whether two names the question asks about stand in the sentence in the
    other order ("How much did OpenAI invest in Amazon?" against "Amazon
    investing $50 billion in OpenAI"): only then can the sentence have swapped
    their places, and only then is its parse worth the role gate's time."""
    order = [n for n in dict.fromkeys(named) if n in asked]
    return any(asked.index(a) > asked.index(b) for a, b in zip(order, order[1:]))


def refusal(q: Question, hits: list[Hit], reason: str) -> Answer:
    closest = sorted(hits, key=lambda h: h.similarity, reverse=True)[:3]
    return Answer(
        text=f"Not found in your documents: {reason}.",
        citations=[Citation(n=i + 1, chunk=h.chunk, quote=best_quote(h.chunk.text, q.query),
                            score=round(h.similarity, 4)) for i, h in enumerate(closest)],
        mode="refused", grounded=False, question=q.text, query=q.query, note=reason,
    )


def extractive(q: Question, hits: list[Hit], ranker: Ranker, note: str) -> Answer:
    """Quote the source sentences that best answer the question."""
    ranked = ranker.ranked()
    top = ranked[0][0]
    chosen = [x for x in ranked[:2] if x[0] >= top - SECOND_QUOTE_MARGIN]
    if ranker.only and all(sentence_key(x[2]) in ranker.only for x in ranked[:2]):
        # the sentences that alone let the question through (`answerable`), a
        # sentence and the one after it: both are the evidence, both are quoted
        chosen = ranked[:2]
    # MiniLM can rank a sentence about the topic above the one that holds the
    # question's distinctive words ("initial investment"): when another sentence
    # holds a quarter of the question's words (of those the sources hold at all,
    # weighted by IDF) that the first quote lacks, quote it as well.
    if len(chosen) == 1 and len(ranked) > 1:
        typed = [x for x in ranked if text.gives_kind(x[2], q.kind, q.focus)] or ranked
        first = frozenset(text.content_words(chosen[0][2]))
        gain = {x: ranker.own_lexical(x[2], besides=first) for x in typed if x != chosen[0]}
        if gain:
            extra = max(gain, key=gain.get)
            if gain[extra] >= SECOND_QUOTE_WORDS:
                chosen.append(extra)
    # Two files that disagree on the figure or date asked for are both quoted,
    # each under its own number: one source does not silently replace another.
    if q.kind in ("figure", "date"):
        rival = _disagreeing(q, hits, ranked, chosen, top - DISAGREEMENT_MARGIN)
        if rival is not None:
            chosen.append(rival)
    # A reference page gives the facts of what a section is about on lines of
    # their own under its heading ("- Default: 2", "- Type: Number"): those of the
    # first quote's section whose label the question asks with ("… by default?")
    # are quoted after it.
    if chosen:
        _, n, s = chosen[0]
        known = {sentence_key(x[2]) for x in chosen}
        lines = [line for line in field_lines(hits[n - 1].chunk.text, s, q.words)
                 if sentence_key(line) not in known]
        chosen[1:1] = [(0.0, n, line) for line in lines]
    # A sentence that ends in a colon introduces what follows ("You can raise
    # it like so:"), which is quoted with it; one that opens by referring back
    # ("This inserts the actor ID") is quoted after the sentence it refers to. A
    # quote goes under its section's title when the title names what was asked
    # ("/-/versions: “Shows the version of Datasette, Python and SQLite.”").
    shown: dict[str, tuple[int, str, str]] = {}  # sentence key -> (n, quote, title)
    for _, n, s in chosen:
        quote = s.strip()
        after = ranker.following.get((n, s), "")
        if quote.endswith(":") and after and not text.is_heading(after):
            quote += " " + after.strip()
        before = ranker.preceding.get((n, s), "")
        if before and text.refers_back(quote):
            quote = before.strip() + " " + quote
        shown.setdefault(sentence_key(quote), (n, quote, ranker.section(n, s)))
    # a quote that another one already holds (the line a colon introduced, when
    # it was chosen on its own too) is not quoted again
    shown = {k: v for k, v in shown.items()
             if not any(k != other and f" {k} " in f" {other} " for other in shown)}
    chosen = [(0.0, n, quote) for n, quote, _ in shown.values()]
    quoted = quotes_text(list(shown.values()))
    numbers = list(dict.fromkeys(n for _, n, _ in chosen))
    exact = [(n, _as_in(hits[n - 1].chunk.text, s)) for _, n, s in chosen]
    cites = [Citation(n=n, chunk=hits[n - 1].chunk,
                      quote=" \u2026 ".join(e or s.strip() for (m, e), (_, _, s) in zip(exact, chosen)
                                             if m == n),
                      score=round(hits[n - 1].similarity, 4)) for n in sorted(numbers)]
    verbatim = all(e is not None for _, e in exact)
    return Answer(text=quoted, citations=cites, mode="extractive", grounded=verbatim,
                  question=q.text, query=q.query, note=note)


MAX_FIELD_LINES = 2  # field lines quoted beside the sentence whose section they stand in


def field_lines(chunk_text: str, sentence: str, asked: frozenset[str]) -> list[str]:
    """The "Label: value" lines (`text.field_label`: "- Default: 2") of the
    section of a chunk that `sentence` stands in (from its heading to the
    next), whose label is one of the `asked` word stems ("default" of "… by
    default?"), without their list marks: a reference page gives the facts of
    what a section is about so ("#### fetch-retries", "- Default: 2", "- Type:
    Number", then the description the question matched)."""
    block: list[str] = []
    found = False
    key = sentence_key(sentence)
    for s in text.split_sentences(chunk_text):
        if text.is_heading(s):
            if found:
                break
            block = []
            continue
        block.append(s)
        found = found or key in sentence_key(s)
    if not found:
        return []
    out = []
    for s in block:
        label = text.field_label(s)
        if label and text.content_words(label) & asked and key not in sentence_key(s):
            out.append(re.sub("^" + text.LIST_MARK, "", s).strip())
    return out[:MAX_FIELD_LINES]


def described(q: Question, hits: list[Hit], opening: Opening) -> tuple[Answer | None, list[Hit]]:
    """For a question about what one thing is or does (`q.subject`: "What does
    tqdm do?"), the first sentence of prose of the document about it (and the
    next, when it names the thing or refers back), quoted, with that
    document's first passage put first among the hits: a README or a page
    about a thing says first what the thing is, where the
    sentences closest to the question only name it ("from tqdm import tqdm",
    "pip install tqdm"). A document is about the thing when its file's name or
    its title is the thing's name ("tqdm.rst", "python_dotenv.md" for
    "python-dotenv"), and one of the retrieved passages comes from it. (None,
    hits) when none does, or its first passage holds no prose."""
    key = text.name_key(q.subject or "")
    about = next((h for h in hits if key and key in (
        _file_key(h.chunk.source), text.name_key(h.chunk.title))), None)
    first = opening(about.chunk.source) if about is not None else None
    if first is None:
        return None, hits
    prose = list(dict.fromkeys(s for s in text.split_sentences(first.chunk.text)
                               if text.is_prose(s)))
    if not prose:
        return None, hits
    # the first sentence, and the one after it when that too is about the thing:
    # it names it or refers back ("It benchmarks as …"), not "Trusted by NASA …"
    said = prose[:1] + [s for s in prose[1:2] if key in text.name_key(s) or text.refers_back(s)]
    hits = [first] + [h for h in hits if h.chunk.id != first.chunk.id][:max(len(hits) - 1, 0)]
    exact = [_as_in(first.chunk.text, s) for s in said]
    return Answer(text=quotes_text([(1, s, "") for s in said]),
                  citations=[Citation(n=1, chunk=first.chunk,
                                      quote=" \u2026 ".join(e or s for e, s in zip(exact, said)),
                                      score=round(first.similarity, 4))],
                  mode="extractive", grounded=all(e is not None for e in exact),
                  question=q.text, query=q.query,
                  note=f"what the document about '{q.subject}' says first"), hits


def release_date(q: Question, hits: list[Hit], release: str) -> Answer | None:
    """The date of a release the passages were cut to (`release_scope`), as its
    own title gives it ("0.51 (2020-10-31)", not "0.51.1 (…)"), quoted, for a
    question about when it came out (`text.asks_release_date`); None when no
    title gives one."""
    version = text.versioned(release)[1]
    for n, h in enumerate(hits, 1):
        line = h.chunk.text.split("\n", 1)[0]
        title = text.title_at(line)
        if title and text.release_spans(line, "", version, exact=True) and text.gives_kind(
                title, "date") and text.asks_release_date(q.focus, release, h.chunk.title):
            return Answer(text=quotes_text([(n, title, h.chunk.title)]),
                          citations=[Citation(n=n, chunk=h.chunk, quote=title,
                                              score=round(h.similarity, 4))],
                          mode="extractive", grounded=True, question=q.text, query=q.query,
                          note="the release's title gives its date")
    return None


def quotes_text(quotes: list[tuple[int, str, str]]) -> str:
    """(source number, quote, title) as an answer's text: each quote in
    quotation marks with its [n], under its title when it has one, a title not
    repeated before the next quote under it."""
    titles = [""] + [title for _, _, title in quotes]
    return " ".join((f"{title}: " if title and title != before else "") + f"\u201c{quote}\u201d [{n}]"
                    for (n, quote, title), before in zip(quotes, titles))


def _as_in(chunk_text: str, quote: str) -> str | None:
    """A quote as its chunk writes it, or None when the chunk does not hold it
    (white space aside): sentences joined for an answer with one space may stand
    apart by a line break in the chunk, and a citation's quote is the chunk's
    own text."""
    m = re.search(r"\s+".join(map(re.escape, quote.split())), chunk_text)
    return m.group(0) if m else None


def first_sentence(draft: str) -> str:
    """The first sentence of a draft being written, once it is complete: when
    a second one has begun with a word (a citation mark after a full stop still
    belongs to the sentence before it), else ""."""
    sents = text.split_sentences(draft)
    return sents[0] if len(sents) > 1 and re.search(r"[^\W\d_]", sents[-1]) else ""


def lifted_from(sentence: str, sources: list[str]) -> list[str]:
    """The sentences of the sources a draft's sentence cites (all of them when
    it cites none) that it only excerpts: each holds the whole of it, citation
    marks aside, and more ("msg = Printer()" for "Printer [4]"). A bare name,
    figure or phrase claims what the sentence it was lifted from says; [] for
    a sentence that says something of its own."""
    plain = text.normalise(text.strip_citations(sentence)).strip(" .")
    if not plain:
        return []
    held = re.compile(r"(?<!\w)" + re.escape(plain) + r"(?!\w)")
    cited = [n for n in text.cited_numbers(sentence) if 0 < n <= len(sources)] or range(
        1, len(sources) + 1)
    return [s for n in dict.fromkeys(cited) for s in text.split_sentences(sources[n - 1])
            if len(text.normalise(s).strip(" .")) > len(plain) and held.search(text.normalise(s))]


def relevance(ranker: Ranker, sentence: str, sources: list[str]) -> float:
    """How closely a draft's sentence answers the question, for the ranker's
    veto: as the best of the source sentences it only excerpts (`lifted_from`),
    else as written. "Printer [4]" to "Which license does wasabi use?" is as
    far off as "msg = Printer()", not as close as a bare name the question's
    words do not weigh against."""
    lifted = lifted_from(sentence, sources)
    return max(ranker.score_text(s) for s in lifted) if lifted else ranker.score_text(sentence)


def _opening_fails(opened: str, sources: list[str], verifier: Verifier, ranker: Ranker,
                   best_source: float, policy: Policy) -> str:
    """Why a draft is given up at its first sentence, or "": (with the ranker's
    veto) a source sentence answers the question more closely than it does (a
    draft that opens off the point), or the verifier drops it (a draft that
    opens with a claim its sources do not support). The veto is asked first:
    it costs one embedding, where the role verifier's first use loads spaCy."""
    if policy.ranker_veto and ranker.cands and (
            relevance(ranker, opened, sources) < best_source - RELEVANCE_MARGIN):
        return "a source sentence answers the question more closely than the model's first sentence"
    if not verifier.check(opened, sources).kept:
        return "the model's first sentence did not survive the verifier"
    return ""


def _quote_or_refuse(q: Question, hits: list[Hit], ranker: Ranker, why: str,
                     policy: Policy, rarity: Rarity | None = None,
                     vocabulary: Vocabulary | None = None,
                     embedder: Embedder | None = None,
                     about: Callable[[], list[tuple[str, str]]] | None = None) -> Answer:
    """The extractive answer, or a refusal when no sentence can be quoted, or
    (strict policy) when the quotes give no fact of the kind asked for: the
    check a draft must pass holds for quotes too. Under the strict policy a
    question for no particular kind of fact is refused too when the quotes
    hold less than `MIN_QUOTE_COVERAGE` of its words, weighted by rarity and
    counting a word the quote puts in other words (`quote_coverage`) ("How
    do I pause a tqdm bar with a keyboard shortcut?" answered by a sentence on
    nested bars), and of the words of each of its sentences (`asks`), where the passages' folders are large enough for their
    silence to count (`COVERAGE_VOCABULARY`: a short article's is not) and the
    question is not a follow-up (whose words the conversation holds). A
    question for a figure or a name is refused when the quoted passages never
    mention the thing it asks the fact of (`about`, `unspoken`)."""
    if not ranker.cands:
        return refusal(q, hits, "the passages hold no sentence to quote")
    a = extractive(q, hits, ranker, why)
    if policy.question_gates and rarity is not None and q.kind is None and not q.follow_up:
        share, lacking = max((quote_coverage(part, a.text, rarity, embedder) for part in asks(q)),
                             key=lambda c: c[0])
        # the folders' vocabularies are counted (once per process) only when needed
        if share < MIN_QUOTE_COVERAGE and _silence_counts(hits, vocabulary, COVERAGE_VOCABULARY):
            return refusal(q, hits, "the sentences closest to it hold few of its words (none of "
                           + ", ".join(f"'{w}'" for w in lacking) + ")")
    lacking = unspoken(about(), [c.chunk.headed for c in a.citations], embedder) if about else []
    if lacking:
        return refusal(q, hits, f"the passages that give a {q.kind} never mention "
                       + ", ".join(f"'{w}'" for w in lacking))
    quoted = " ".join(c.quote for c in a.citations)
    if policy.question_gates and not text.gives_kind(quoted, q.kind, q.focus):
        return refusal(q, hits, f"the sentences that answer it best give no {q.kind}")
    if policy.question_gates and q.dimension and not text.gives_dimension(a.text, q.dimension):
        return refusal(q, hits, f"the sentences that answer it best give no {q.kind} "
                                f"{_UNITS[q.dimension]}")
    return a


def _facts_of_kind(sentence: str, kind: str) -> set[str]:
    figures = text.amounts(sentence) if kind == "figure" else [
        f for f in text.facts(sentence)[0] if re.fullmatch(r"\d{4}", f)]
    return set(figures)


def _disagreeing(q: Question, hits: list[Hit], ranked: list, chosen: list,
                 floor: float, said: str = "") -> tuple | None:
    """A sentence from another file than the chosen quotes (or the cited
    sources of `said`) that gives another figure (or year) of the kind asked
    for than they do, and is about as relevant."""
    files = {hits[n - 1].chunk.source for _, n, _ in chosen}
    given = set().union(*(_facts_of_kind(sent, q.kind) for _, _, sent in chosen))
    if said:
        files |= {hits[n - 1].chunk.source for n in text.cited_numbers(said) if 0 < n <= len(hits)}
        given |= _facts_of_kind(text.strip_citations(said), q.kind)
    if not given:
        return None
    for x in ranked:
        if x[0] < floor:
            break
        theirs = _facts_of_kind(x[2], q.kind)
        if hits[x[1] - 1].chunk.source not in files and theirs and not theirs & given \
                and text.gives_kind(x[2], q.kind, q.focus):
            return x
    return None


def _merge(hits: list[Hit], more: list[Hit]) -> list[Hit]:
    """`hits` and then the passages of `more` they do not hold already."""
    by_id = {h.chunk.id: h for h in more}
    for h in hits:
        by_id.pop(h.chunk.id, None)
    return hits + list(by_id.values())


def answer(
    q: Question,
    hits: list[Hit],
    llm: LanguageModel,
    embedder: Embedder,
    verifier: Verifier,
    policy: Policy,
    min_relevance: float,
    max_tokens: int,
    temperature: float,
    on_token: Callable[[str], None] | None = None,
    prompt_sentences: int = 6,
    find_more: FindMore | None = None,
    unused: Unused | None = None,
    vocabulary: Vocabulary | None = None,
    rarity: Rarity | None = None,
    files_using: FilesUsing | None = None,
    opening: Opening | None = None,
    within: Within | None = None,
) -> Answer:
    if within is not None and files_using is not None:
        hits, named, scope = document_scope(q, hits, within, files_using)
        q = dataclasses.replace(q, words=q.words - named, scope=scope)
    a, hits = _answer(q, hits, llm, embedder, verifier, policy, min_relevance, max_tokens,
                      temperature, on_token, prompt_sentences, find_more, unused, vocabulary,
                      rarity, files_using, opening)
    a.retrieved = list(hits)
    return a


def _answer(q, hits, llm, embedder, verifier, policy, min_relevance, max_tokens, temperature,
            on_token, prompt_sentences, find_more, unused=None,
            vocabulary=None, rarity=None, files_using=None,
            opening=None) -> tuple[Answer, list[Hit]]:
    timings: dict[str, float] = {}
    if not hits:
        return refusal(q, hits, "the index holds no passages to search"), hits
    best = max(h.similarity for h in hits)
    if best < min_relevance and word_coverage(q, hits) < MIN_WORD_COVERAGE and not (
            quoted_amounts(q, hits)):
        return refusal(q, hits, "no passage is close enough to the question "
                                f"(best similarity {best:.2f})"), hits
    missing = missing_terms(q, hits)
    # A release the passages give under its own title may go on in passages
    # retrieval missed: those are looked for too, and only those (a passage
    # that merely names a release the top passages name already adds nothing).
    held_releases = [t for t in releases(q) if t not in missing]
    lookup = missing + held_releases
    if lookup and find_more is not None:
        more = [h for h in find_more(lookup) if any(text.holds_term(
            t, text.normalise(h.chunk.headed)) for t in missing) or any(text.titles_release(
                t, h.chunk.text, h.chunk.section, text.normalise(h.chunk.headed), h.chunk.source)
                for t in lookup)]
        hits = _merge(hits, more)
        missing = missing_terms(q, hits)
    asked = q
    q, hits = release_scope(q, hits)
    missing = [t for t in missing if t in q.terms]
    if missing:
        return refusal(q, hits, "the documents never mention "
                       + ", ".join(f"'{m}'" for m in missing)), hits
    if policy.question_gates and unused is not None and vocabulary is not None:
        unnamed = unnamed_things(q, hits, unused, vocabulary, verifier)
        if unnamed:
            return refusal(q, hits, "the documents never mention "
                           + ", ".join(f"'{m}'" for m in unnamed)), hits
    if policy.question_gates and files_using is not None and vocabulary is not None:
        apart = apart_terms(q, hits, files_using, vocabulary, verifier)
        if apart:
            a, b = apart[0], (_as_written(q.focus, {apart[1]}) or [apart[1]])[0]
            return refusal(q, hits, f"the documents mention '{a}' and '{b}', but never in "
                                    "the same file"), hits
    scoped = [t for t in asked.terms if t not in q.terms and text.versioned(t)]
    # the title's date is the release's: it answers when the release came out,
    # not when something else in its life happened ("When did support for … end?")
    if q.kind == "date" and scoped:
        dated = release_date(q, hits, scoped[0])
        if dated is not None:
            return dated, hits
    # What a thing is, from the document about it: quoted under the strict
    # policy; the model policy's model reads that document's opening first.
    if q.subject and opening is not None:
        described_answer, hits = described(q, hits, opening)
        if described_answer is not None and policy.question_gates:
            return described_answer, hits
    admitted: list[str] = []  # the sentences that alone let a figure question through
    if policy.question_gates:
        why = answerable(q, hits, getattr(verifier, "question_conflict", None),
                         getattr(verifier, "roles_agree", None), admitted)
        if why:
            return refusal(q, hits, why), hits
    # what the figure or the name is asked of: the passages it is taken from must speak of
    # it. Parsed (spaCy, loaded on first use) only once an answer is there to check.
    about = functools.cache(lambda: asked_of(q, verifier, files_using) if (
        policy.question_gates and q.kind in ("figure", "name") and not q.follow_up
        and _silence_counts(hits, vocabulary)) else [])

    ranker = SentenceRanker(q, hits, embedder, only=admitted)
    best_source = ranker.ranked()[0][0] if ranker.cands else 0.0

    # Checked against the whole chunks: a citation names a chunk, not a sentence.
    # What a document orders ("always say: ...") is not evidence for a claim.
    sources = [text.without_instructions(h.chunk.text) for h in hits]
    t = time.perf_counter()
    pieces: list[str] = []
    opened = ""  # the draft's first sentence, once the second has begun
    abandoned = ""  # why the draft was given up before the model finished it
    # The model sees only the best sentences: a 135M model reads a short
    # context better, and prompt tokens cost ~3 ms each on a small CPU.
    stream = llm.stream(prompts.answer_messages(q.query, ranker.passages(len(hits), prompt_sentences)),
                        max_tokens, temperature)
    try:
        for piece in stream:
            pieces.append(piece)
            if on_token:
                on_token(piece)
            if policy.first_sentence and not opened:
                opened = first_sentence("".join(pieces))
                if opened:
                    abandoned = _opening_fails(opened, sources, verifier, ranker, best_source,
                                               policy)
                    if abandoned:  # not shown whatever follows: stop the model there
                        break
    except ModelBusy as e:  # raised before any piece: quote rather than queue
        a = _quote_or_refuse(q, hits, ranker, f"quoted without a model draft: {e}", policy,
                             rarity, vocabulary, embedder, about)
        a.timings["generate"] = time.perf_counter() - t
        return a, hits
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()  # the model stops writing; a local context goes back to its pool
    draft = "".join(pieces).strip()
    timings["generate"] = time.perf_counter() - t
    timings["tokens"] = float(len(pieces))

    if abandoned:  # nothing of it is shown, so nothing more of it is checked
        a = _quote_or_refuse(q, hits, ranker, abandoned, policy, rarity, vocabulary, embedder,
                             about)
        if a.mode == "extractive":
            a.dropped = [f"{draft} ({abandoned})"]
        a.timings.update(timings)
        return a, hits
    t = time.perf_counter()
    result = verifier.check(draft, sources).first(MAX_SENTENCES)
    timings["verify"] = time.perf_counter() - t
    dropped = [f"{v.sentence} ({v.reason})" for v in result.dropped]
    why = ""
    if not result.kept:
        why = "the model's answer did not survive the verifier"
    elif policy.question_gates and not text.gives_kind(result.text, q.kind, q.focus):
        why = f"the model's checked answer does not give the {q.kind} asked for"
    elif policy.question_gates and q.dimension and not text.gives_dimension(result.text, q.dimension):
        why = f"the model's checked answer gives no {q.kind} {_UNITS[q.dimension]}"
    elif policy.question_gates and q.wants_thing and not text.adds_fact(result.text, q.text):
        why = "the model's checked answer names nothing the question did not"
    elif unspoken(about(), [hits[n - 1].chunk.headed for n in result.cited], embedder):
        why = "the passages the model's answer cites never mention " + ", ".join(
            f"'{w}'" for w, _ in about())
    elif policy.ranker_veto and ranker.cands and (relevance(ranker, result.text, sources) if len(
            result.kept) == 1 else ranker.score_text(result.text)) < best_source - RELEVANCE_MARGIN:
        why = "a source sentence answers the question more closely than the model did"
    if not why and q.kind in ("figure", "date") and ranker.cands:
        rival = _disagreeing(q, hits, ranker.ranked(), [], best_source - DISAGREEMENT_MARGIN,
                             said=result.text)
        if rival is not None:  # the model gave one file's figure; another file disagrees
            why = "the sources disagree on the figure asked for"
    if not why:
        claims: dict[int, str] = {}
        for v in result.kept:
            for n in v.cites:
                claims[n] = claims.get(n, "") + " " + v.sentence
        a = Answer(text=result.text, citations=[
            Citation(n=n, chunk=hits[n - 1].chunk, quote=best_quote(hits[n - 1].chunk.text, claims[n]),
                     score=round(hits[n - 1].similarity, 4)) for n in sorted(result.cited)],
                   mode="generated", grounded=True, question=q.text, query=q.query,
                   dropped=dropped,
                   note="citation marks added by the verifier"
                   if any(v.attributed for v in result.kept) else "")
    else:
        a = _quote_or_refuse(q, hits, ranker, why, policy, rarity, vocabulary, embedder, about)
        if a.mode == "extractive":
            a.dropped = dropped
    a.timings.update(timings)
    return a, hits
