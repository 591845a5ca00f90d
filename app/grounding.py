"""The grounding check: keep only draft sentences their cited sources support.

A draft from the language model is split into sentences. A sentence is kept
when (1) it carries at least one [n] mark naming a retrieved source, (2)
every number, amount, percentage, year and proper name in it occurs in the
text of the sources it cites, compared after normalising money ("$50 billion",
"50 billion dollars", "50bn"), thousands separators, "percent"/"%" and case,
all of them within one sentence of a cited source (with the sentence before
it; a true figure beside a true name is a false claim when the source never
relates them), and (3) at least 60% of its other content words occur in
that same sentence window (compared by their Snowball stems), which catches
invented claims that carry no figure or name and claims stitched together
from several places.

Small models often write no [n] at all. A sentence without a mark that
states at least one figure or name is attributed, in code, to the source
that holds all of them (the one sharing most words, if several do) and then
checked as if the model had cited it; `SentenceVerdict.attributed` says so.
A sentence with neither a mark nor a checkable fact is dropped.

This module is pure text logic: it knows nothing of particular questions or
documents, loads no model and does no I/O. It does not judge whether a kept
sentence answers the question (see `answering.answers_question_type`) nor
paraphrased claims whose words all occur in the source; only figures and names
are checked, which is where small models invent things.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

CITE_RE = re.compile(r"\[\s*(?:sources?\s*)?(\d+(?:\s*(?:,|and|&)\s*\d+)*)\s*\]", re.I)
# A sentence ends at . ! or ? (and any closing quotes or brackets) followed by
# space and something that can start a sentence.
_SENT_END = re.compile(r"[.!?][\"'\u201d\u2019)\]]*(\s+)(?=[\[\"'\u201c\u2018(A-Z0-9$])")
# A line break ends a sentence only before a citation mark, a bullet or a blank line;
# elsewhere (PDF text, wrapped paragraphs) it is a space.
_SOFT_BREAK = re.compile(r"(?<!\n)\n(?!\s*(?:\n|\[\d|[-*\u2022]\s|\d+[.)]\s))")
_LEAD_CITES = re.compile(r"^((?:\[[^\]]{1,20}\]\s*)+)")

_CURRENCIES = frozenset({"usd", "eur", "gbp", "jpy", "cny", "chf"})
_SCALE = {
    "k": "thousand", "thousand": "thousand",
    "m": "million", "mn": "million", "mln": "million", "million": "million",
    "b": "billion", "bn": "billion", "billion": "billion",
    "t": "trillion", "tn": "trillion", "trillion": "trillion",
}
# An amount: optional currency, digits (with separators/decimals), optional scale.
_NUM_RE = re.compile(
    r"(?:(?:us)?\$\s*|usd\s*|€|£)?"
    r"(?<![\w.])(\d+(?:[.,]\d+)*)"
    r"(?:\s*(%|percent\b|per\s+cent\b|(?:thousand|million|billion|trillion|mln|mn|bn|tn)\b|[kmbt]\b))?",
    re.I,
)

# Words that start sentences in capitals without being names.
_COMMON = frozenset(
    """a an the this that these those it its it's he she they we you i his her their our
    your my there here what which who whom whose when where why how yes no not and but or
    so if then than also however additionally furthermore moreover meanwhile in on at by
    for from with without about as of to into over under after before during since until
    while because although though both each every all some any many most more much few
    several one two three four five six seven eight nine ten first second third last next
    new according based overall finally thus therefore hence instead including according
    is are was were be been being has have had do does did will would can could should may
    might must shall let note answer source sources sentence question context unfortunately
    sorry please besides apart except other another such like also yet still even just only
    describe explain list name give tell summarize summarise compare discuss outline identify
    define state mention consider regarding concerning""".split()
)


def normalise(text: str) -> str:
    """Lower-case text with amounts in one canonical spelling ("50 billion")."""
    t = text.lower().replace("\u00a0", " ")
    t = re.sub(r"(?<=\d),(?=\d{3}\b)", "", t)  # thousands separators
    t = re.sub(r"(?<=\d)\s*(?:per\s+cent|percent)\b", "%", t)

    def amount(m: re.Match) -> str:
        num, scale = m.group(1), (m.group(2) or "").lower()
        num = num.replace(",", "")
        if scale in ("%", "percent") or scale.startswith("per"):
            return f"{num}%"
        word = _SCALE.get(scale)
        return f"{num} {word}" if word else num

    t = _NUM_RE.sub(amount, t)
    t = re.sub(r"\b(?:us\s+)?dollars?\b|\busd\b", "", t)
    return re.sub(r"\s+", " ", t)


def _split_line(line: str) -> list[str]:
    pieces, start = [], 0
    for m in _SENT_END.finditer(line):
        pieces.append(line[start:m.start(1)])
        start = m.end(1)
    return pieces + [line[start:]]


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences (and list lines). Citation marks are moved to the
    end of the sentence they belong to: a draft that opens with a mark puts
    marks before sentences ("[1] A. [2] B."), otherwise a mark that opens a
    piece after a full stop ("A. [1] B.") belongs to the sentence before it."""
    text = _SOFT_BREAK.sub(" ", text.strip())
    parts = [p.strip() for line in text.splitlines() for p in _split_line(line) if p.strip()]
    prefix_style = bool(parts) and bool(_LEAD_CITES.match(parts[0]))
    out: list[str] = []
    for p in parts:
        m = _LEAD_CITES.match(p)
        if m and CITE_RE.search(m.group(1)):
            marks, rest = m.group(1).strip(), p[m.end():].strip()
            if prefix_style or not out:
                p = _with_mark(rest, marks) if rest else marks
            else:
                out[-1] = f"{out[-1]} {marks}"
                p = rest
        if p:
            out.append(p)
    return out


def cited_numbers(sentence: str) -> list[int]:
    """The [n] marks of a sentence, outside “quoted” passages (a quoted source may
    carry reference marks of its own, like a paper's "[27]")."""
    nums: list[int] = []
    for m in CITE_RE.finditer(re.sub(r"\u201c[^\u201d]*\u201d", "", sentence)):
        nums += [int(n) for n in re.findall(r"\d+", m.group(1))]
    return nums


def strip_citations(sentence: str) -> str:
    return re.sub(r"\s+([.,;:!?])", r"\1", CITE_RE.sub("", sentence)).strip()


def facts(sentence: str) -> tuple[list[str], list[str]]:
    """The figures (normalised) and proper names a sentence asserts."""
    plain = strip_citations(sentence)
    figures = re.findall(r"(?<![a-z\d.])\d+(?:\.\d+)?(?: (?:thousand|million|billion|trillion)|%)?",
                         normalise(plain))
    names: list[str] = []
    words = re.findall(r"[A-Za-z][A-Za-z0-9&'’.-]*", plain)
    for i, w in enumerate(words):
        w = re.sub(r"(?:['’]s|['’])$", "", w).strip(".-")
        for part in w.split("-"):
            if not part or not (part[0].isupper() or sum(c.isupper() for c in part) > 1):
                continue
            if part.lower() in _COMMON and (i == 0 or not part[1:].isupper() or len(part) == 1):
                continue
            if i == 0 and part.lower() in _COMMON or part.lower() in _CURRENCIES:
                continue
            names.append(part)
    return figures, names


def occurs(fact: str, normalised_text: str) -> bool:
    """Whole-word occurrence of a normalised fact in normalised text."""
    pat = r"(?<![\w.])" + re.escape(fact.lower()) + r"(?![\w]|\.\d)"
    return re.search(pat, normalised_text) is not None


_STOP = _COMMON | frozenset(
    """about above across also among another because been being between both but
    can did does doing done down each else even ever from further get gets got had
    into just like made make makes more most much must near now off once only other
    own per same should such than that their them then there these they this those
    through too under upon very was way well were what when where which while who
    will with within would yet thousand million billion trillion percent dollar dollars""".split()
)


_stemmer = None


def stem(word: str) -> str:
    """English Snowball stem ("investing", "investment" -> "invest")."""
    global _stemmer
    if _stemmer is None:
        import Stemmer  # PyStemmer: the stemmer the BM25 index uses too

        _stemmer = Stemmer.Stemmer("english")
    return _stemmer.stemWord(word)


def content_words(text: str) -> set[str]:
    """Stems of the lower-case words of four letters or more that carry meaning,
    and acronyms ("AI", "AWS"), however short."""
    text = strip_citations(text)
    return {stem(w) for w in re.findall(r"[a-z]{4,}", text.lower()) if w not in _STOP} | {
        a.lower() for a in re.findall(r"\b[A-Z]{2,5}s?\b", text) if a.lower() not in _STOP}


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
            key = " ".join(sorted(content_words(v.sentence)))
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


def windows(texts: list[str]) -> list[str]:
    """Each sentence of the texts with the sentence before it (which often
    names what "it" or "the state" refers to)."""
    out = []
    for text in texts:
        prev = ""
        for sent in split_sentences(text):
            out.append(f"{prev} {sent}")
            prev = sent
    return out


def _support(fact_list: list[str], words: set[str], texts: list[str]) -> tuple[bool, float]:
    """Whether one source sentence (with the one before it) holds every fact,
    and the best share of `words` such a sentence holds: a true figure next to
    a true name, or true words from three places, still make a false claim."""
    together, best = False, 0.0
    for window in windows(texts):
        norm = normalise(window)
        if all(occurs(f, norm) for f in fact_list):
            together = True
            if words:
                best = max(best, len(words & content_words(window)) / len(words))
    return together, (best if words else 1.0)


def _attribute(sentence: str, norm: list[str], raw: list[str]) -> int | None:
    """The source holding every figure and name of an uncited sentence."""
    figures, names = facts(sentence)
    if not figures and not names:
        return None
    holders = [i for i, text in enumerate(norm)
               if all(occurs(f, text) for f in figures + names)]
    if not holders:
        return None
    words = content_words(sentence)
    return max(holders, key=lambda i: len(words & content_words(raw[i]))) + 1


def _with_mark(sentence: str, mark: int | str) -> str:
    """Put a citation mark before the sentence's closing punctuation."""
    mark = f"[{mark}]" if isinstance(mark, int) else mark
    m = re.search(r"[.!?]*[\"'”]*$", sentence)
    return f"{sentence[:m.start()].rstrip()} {mark}{sentence[m.start():]}"


def check(draft: str, sources: list[str], min_word_support: float = 0.6) -> CheckResult:
    """Check `draft` against `sources` (source [n] is sources[n-1])."""
    norm = [normalise(s) for s in sources]
    kept: list[SentenceVerdict] = []
    dropped: list[SentenceVerdict] = []
    for sent in split_sentences(draft):
        marks = cited_numbers(sent)
        cites = sorted({n for n in marks if 1 <= n <= len(sources)})
        v = SentenceVerdict(sentence=sent, cites=cites)
        if not marks:
            n = _attribute(sent, norm, sources)
            if n is not None:
                v.sentence, v.cites, v.attributed = _with_mark(sent, n), [n], True
        if len(cites) < len(set(marks)):
            v.reason = "cites a source that was not retrieved: " + ", ".join(
                f"[{n}]" for n in sorted(set(marks) - set(cites)))
        elif not v.cites:
            v.reason = ("no retrieved source holds its figures and names" if any(facts(sent))
                        else "cites no retrieved source")
        elif not strip_citations(sent).strip(" .,;:!?"):
            v.reason = "only citation marks"
        elif strip_citations(sent).rstrip().endswith("?") or re.match(r"\W*(question|q)\s*:", sent, re.I):
            v.reason = "a question, not an answer"
        elif not content_words(sent):  # "The answer is: $4 million." relates nothing
            v.reason = "no words that tie its figures and names to anything"
        else:
            cited_text = " ".join(norm[n - 1] for n in v.cites)
            figures, names = facts(sent)
            v.missing = [f for f in figures if not occurs(f, cited_text)]
            v.missing += [n for n in names if not occurs(n, cited_text)]
            # Names are rule 2's business; rule 3 weighs the words around them.
            words = content_words(sent) - {stem(n.lower()) for n in names}
            together, share = _support(figures + names, words, [sources[n - 1] for n in v.cites])
            if v.missing:
                v.reason = "not in cited sources: " + ", ".join(v.missing)
            elif not together:
                v.reason = ("its figures and names never stand together in one sentence of "
                            "the cited sources")
            elif share < min_word_support:
                v.reason = ("mostly words that no single sentence of the cited sources "
                            f"holds ({share:.0%} found)")
        (kept if v.kept else dropped).append(v)
    return CheckResult(kept=kept, dropped=dropped)
