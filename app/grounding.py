"""The grounding check: keep only draft sentences their cited sources support.

A draft from the language model is split into sentences. A sentence is kept
when (1) it carries at least one [n] mark naming a retrieved source, (2)
every number, amount, percentage, year and proper name in it occurs in the
text of the sources it cites, compared after normalising money ("$50 billion",
"50 billion dollars", "50bn"), thousands separators, "percent"/"%" and case,
all of them within one sentence of a cited source (a true figure beside a
true name is a false claim when the source never relates them), and (3) at least half of its other content words occur there too (compared
by their first five letters, a crude stem), which catches invented claims
that carry no figure or name.

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
_SENT_SPLIT = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\[\"'(A-Z0-9$])")
_LEAD_CITES = re.compile(r"^((?:\[[^\]]{1,20}\]\s*)+)")

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
    sorry yes, please according to""".split()
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


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences (and lines). Citation marks are moved to the
    end of the sentence they belong to: a draft that opens with a mark puts
    marks before sentences ("[1] A. [2] B."), otherwise a mark that opens a
    piece after a full stop ("A. [1] B.") belongs to the sentence before it."""
    parts = [p.strip() for line in text.strip().splitlines()
             for p in _SENT_SPLIT.split(line) if p.strip()]
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
    nums: list[int] = []
    for m in CITE_RE.finditer(sentence):
        nums += [int(n) for n in re.findall(r"\d+", m.group(1))]
    return nums


def strip_citations(sentence: str) -> str:
    return re.sub(r"\s+([.,;:!?])", r"\1", CITE_RE.sub("", sentence)).strip()


def facts(sentence: str) -> tuple[list[str], list[str]]:
    """The figures (normalised) and proper names a sentence asserts."""
    plain = strip_citations(sentence)
    figures = [f for f in re.findall(r"\d+(?:\.\d+)?(?: (?:thousand|million|billion|trillion)|%)?",
                                     normalise(plain))]
    names: list[str] = []
    words = re.findall(r"[A-Za-z][A-Za-z0-9&'’.-]*", plain)
    for i, w in enumerate(words):
        w = re.sub(r"(?:['’]s|['’])$", "", w).strip(".-")
        for part in w.split("-"):
            if not part or not (part[0].isupper() or sum(c.isupper() for c in part) > 1):
                continue
            if part.lower() in _COMMON and (i == 0 or not part[1:].isupper() or len(part) == 1):
                continue
            if i == 0 and part.lower() in _COMMON:
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
    will with within would yet""".split()
)


def content_words(text: str) -> set[str]:
    """Lower-case words of four letters or more that carry meaning, cut to five letters."""
    return {w[:5] for w in re.findall(r"[a-z]{4,}", strip_citations(text).lower()) if w not in _STOP}


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


def _together(fact_list: list[str], texts: list[str]) -> bool:
    """Whether one sentence of the texts holds every fact: a true figure next to
    a true name is still a false claim if the source never relates them."""
    for text in texts:
        for sent in split_sentences(text):
            norm = normalise(sent)
            if all(occurs(f, norm) for f in fact_list):
                return True
    return False


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


def check(draft: str, sources: list[str], min_word_support: float = 0.5) -> CheckResult:
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
        else:
            cited_text = " ".join(norm[n - 1] for n in v.cites)
            figures, names = facts(sent)
            v.missing = [f for f in figures if not occurs(f, cited_text)]
            v.missing += [n for n in names if not occurs(n, cited_text)]
            words = content_words(sent)
            support = content_words(" ".join(sources[n - 1] for n in v.cites))
            unsupported = sorted(words - support)
            if v.missing:
                v.reason = "not in cited sources: " + ", ".join(v.missing)
            elif (figures or names) and not _together(figures + names, [sources[n - 1] for n in v.cites]):
                v.reason = ("its figures and names never stand together in one sentence of "
                            "the cited sources")
            elif words and len(unsupported) > (1 - min_word_support) * len(words):
                v.reason = "mostly words the cited sources lack: " + ", ".join(unsupported[:6])
        (kept if v.kept else dropped).append(v)
    return CheckResult(kept=kept, dropped=dropped)
