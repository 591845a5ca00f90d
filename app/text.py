"""The language-specific text toolkit: everything that knows English.

Normalising figures ("$50 billion", "50bn", "50 billion dollars" read alike),
splitting prose into sentences, finding the figures and proper names a
sentence asserts, content words and their Snowball stems, and the word lists
the question analysis and the follow-up rule use. Other modules call these
functions and keep no word list of their own, so that another language is
one more module of this shape (`LANGUAGE` names the one here).

Left out: any language but English. Text in another language still splits,
normalises and yields its figures and names; its question words are simply
not recognised (`app.question` then asks for no particular kind of fact).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

LANGUAGE = "english"  # Snowball stemmer and word lists below

# Terminal escape sequences (colour, cursor, clear-screen, window-title OSC) and other
# control characters, which documents, file names and questions must never pass on.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?"
                      r"|\x9b[0-?]*[ -/]*[@-~]|\x9d[^\x07\x9c]*(?:\x07|\x9c)?"
                      r"|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def without_controls(text: str) -> str:
    """Text with terminal escape sequences and control characters removed (line
    breaks and tabs kept)."""
    return _ESCAPES.sub("", text)

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


# Abbreviations whose full stop does not end a sentence ("e.g. JSON API requests").
ABBREVIATIONS = re.compile(r"(?:\b(?:e\.g|i\.e|etc|vs|cf|approx|incl|Mr|Mrs|Ms|Dr|Prof|St|No|Fig|"
                           r"Eq|Sec|Vol|al)\.)$", re.I)


def _sentence_breaks(text: str) -> Iterator[re.Match]:
    """Each sentence end of `text` (group 1 is the white space after it), a
    full stop that ends an abbreviation ("e.g.") aside."""
    start = 0
    for m in _SENT_END.finditer(text):
        if ABBREVIATIONS.search(text[max(start, m.start() - 8):m.start() + 1]):
            continue
        yield m
        start = m.end(1)


def _split_line(line: str) -> list[str]:
    pieces, start = [], 0
    for m in _sentence_breaks(line):
        pieces.append(line[start:m.start(1)])
        start = m.end(1)
    return pieces + [line[start:]]


def sentence_spans(text: str) -> list[str]:
    """`text` cut after each sentence's end and the white space after it, so
    that the pieces joined are `text` again: what the chunker splits on (the
    same sentence ends as `split_sentences`)."""
    bounds = [0] + [m.end(1) for m in _sentence_breaks(text)] + [len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:]) if b > a] or [text]


def is_heading(sentence: str) -> bool:
    """A heading line ("# Settings"): context for what follows, not a claim."""
    return sentence.lstrip().startswith("#")


# A paper's own reference marks ("enforceable” [3].", "(“smart ID”[29])", "[5, 6]",
# "[12–14]"): after a space, a closing quote or bracket, so code such as rows[0] is
# left alone.
_MARK_BODY = r"\d{1,3}(?:\s*[,\u2013-]\s*\d{1,3})*"
REFERENCE_MARK = re.compile(rf"(?<=[\s\u201d\"')])\[{_MARK_BODY}\]")
_MARK_IN_LINE = re.compile(rf"(?:[ \t]+|(?<=[\u201d\"')]))\[({_MARK_BODY})\]")
_SUPERSCRIPT = str.maketrans("0123456789-\u2013", "\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076"
                                                 "\u2077\u2078\u2079\u207b\u207b")


def superscript_references(text: str) -> str:
    """A paper's reference marks within its lines written as superscripts, as
    papers print them, in superscript brackets that keep the word before them a
    word of its own: "(EOA) [14] and" -> "(EOA)\u207d\u00b9\u2074\u207e and". An answer
    cites its sources as [n], so a mark left as "[14]" would read as a citation of
    source 14, and cut out it would split the sentence it stands in."""
    return _MARK_IN_LINE.sub(lambda m: superscript_mark(m.group(1)), text)


def superscript_mark(mark: str) -> str:
    """"[14]" or "14" -> "\u207d\u00b9\u2074\u207e"; "[5, 6]" -> "\u207d\u2075,\u2076\u207e"."""
    return "\u207d" + re.sub(r"[\s\[\]]+", "", mark).translate(_SUPERSCRIPT) + "\u207e"


def is_reference_mark(s: str) -> bool:
    """Whether a text is a reference mark alone: "[14]", "[5, 6]", "[12–14]"."""
    return bool(re.fullmatch(rf"\[{_MARK_BODY}\]", s.strip()))


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences (and list lines; a heading line stands alone). Citation marks are moved to the
    end of the sentence they belong to: a draft that opens with a mark puts
    marks before sentences ("[1] A. [2] B."), otherwise a mark that opens a
    piece after a full stop ("A. [1] B.") belongs to the sentence before it."""
    text = re.sub(r"(?m)^(#+ [^\n]*)\n(?!\n)", r"\1\n\n", text.strip())  # a heading stands alone
    text = _SOFT_BREAK.sub(" ", text)
    parts = [p.strip() for line in text.splitlines() for p in _split_line(line) if p.strip()]
    prefix_style = bool(parts) and bool(_LEAD_CITES.match(parts[0]))
    out: list[str] = []
    for p in parts:
        m = _LEAD_CITES.match(p)
        if m and CITE_RE.search(m.group(1)):
            marks, rest = m.group(1).strip(), p[m.end():].strip()
            if prefix_style or not out:
                p = with_mark(rest, marks) if rest else marks
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


# Names that documentation gives in code: options (--load-extension, -i), identifiers
# (max_returned_rows, _shape), routes (/-/versions) and file paths
# (templates/pages/about.html; "private/consortium" is prose, not a path).
IDENTIFIER = re.compile(
    r"(?<![\w/.=-])(?:--?[A-Za-z][\w-]*|_[A-Za-z]\w*(?:=\w+)?|[A-Za-z]\w*_\w+(?:=\w+)?"
    r"|/[-\w.]*/[-\w./]*|[A-Za-z][\w-]*(?:/[\w-]+)*/[\w-]+\.[A-Za-z]\w*)(?![\w/-])")


def identifiers(text: str) -> list[str]:
    """Code names in a text, as written ("--load-extension", "max_csv_mb")."""
    return [m.group(0).rstrip(".") for m in IDENTIFIER.finditer(text)]


def facts(sentence: str) -> tuple[list[str], list[str]]:
    """The figures (normalised) and proper names a sentence asserts; code names
    (options, identifiers, paths) count as names."""
    plain = strip_citations(sentence)
    # a number inside a code name ("_random_chars_128") is part of that name
    figures = re.findall(r"(?<![a-z\d._])\d+(?:\.\d+)?(?: (?:thousand|million|billion|trillion)|%)?",
                         normalise(plain))
    names: list[str] = []
    words = re.findall(r"[^\W\d_][\w&'’.-]*", plain)
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
    names += [n for n in identifiers(plain) if n not in names]
    return figures, names


def versioned_names(sentence: str, names: list[str]) -> list[str]:
    """A name followed at once by a version or model number, as one term
    ("Python 2.7", "SQLite 3.46.0", "Windows 11"); a month's day or year is a
    date, not a version, and an abbreviation's number ("Fig. 15", written
    "Fig.15" as often) is left a figure of its own."""
    out = []
    for m in re.finditer(r"\b([^\W\d_][\w.-]*)\s+(\d+(?:\.\d+)*(?:(?:a|b|rc)\d+)?)(?![\w%]|\.\d|"
                         r"\s*(?:%|percent|thousand|million|billion|trillion)\b)",
                         strip_citations(sentence)):
        name, number = m.group(1), m.group(2)
        if name.lower() in MONTHS:
            continue
        # a package's own name is often written in lower case ("charset-normalizer
        # 3.3.0"): it counts before a number that can only be a version
        if name in names or (re.fullmatch(_UNMISTAKABLE_VERSION, number) and len(name) > 2
                             and name.lower() not in _STOP | _VERSION_WORDS):
            out.append(f"{name} {number}")
    return out


def opening_release(sentence: str, word: str) -> str | None:
    """The release a sentence opens with ("Datasette 0.48" of "Datasette 0.48:
    when did it come out?"): its first word followed at once by a dotted
    version. A capital there is otherwise grammar, and so is a grammar word
    before a number ("Since 1.2 …", "Version 2.0 …"); None for those."""
    if word.lower() in _STOP | _VERSION_WORDS:
        return None
    return next((v for v in versioned_names(sentence, [word])
                 if v.split(" ", 1)[0] == word and versioned(v)), None)


# the words in which a question asks when a release came out
_RELEASE_EVENT = frozenset("""release released releases come came comes out ship shipped ships
    shipping publish published publication launch launched available availability become
    became date dates day year""".split())


def asks_release_date(question: str, release: str, source_title: str = "") -> bool:
    """Whether a date question about a release ("Datasette 0.40") asks when it
    came out ("When was … released?", "… come out", "What day did … ship?"):
    besides the release and the document that gives it (`source_title`, "the
    changelog"), it names nothing but its coming out. "When did security
    support for … end?" and "the end-of-life date of …" ask for the date of
    something else in the release's life, which its title's date is not."""
    rest = content_words(question.replace(release, " ")) - content_words(release)
    return not rest - content_words(source_title) - {stem(w) for w in _RELEASE_EVENT}


_VERSION_WORDS = frozenset({"version", "versions", "release", "releases", "since", "until", "upgrade"})
_UNMISTAKABLE_VERSION = r"\d+(?:\.\d+){2,}(?:(?:a|b|rc)\d+)?|\d+(?:\.\d+)+(?:a|b|rc)\d+"


def occurs(fact: str, normalised_text: str) -> bool:
    """Whole-word occurrence of a normalised fact in normalised text. A full
    stop before it ends a word when no digit precedes the stop: "5" is not in
    "2.5", but "set_actor_cookie" is in "datasette.set_actor_cookie()"."""
    pat = r"(?<!\w)(?<!\d\.)" + re.escape(fact.lower()) + r"(?![\w]|\.\d)"
    return re.search(pat, normalised_text) is not None


def holds_term(term: str, normalised_text: str) -> bool:
    """Whether a text mentions a question's term: `occurs`, also as a part of a
    code name ("128" of `_random_chars_128`), or, for a term that ends in a
    dotted version ("SQLite 3.46", "3.46"), a longer version of it ("SQLite
    3.46.0")."""
    if occurs(term, normalised_text) or occurs(term, normalised_text.replace("_", " ")):
        return True
    t = term.lower()
    return bool(re.search(r"\d\.\d+$", t)) and re.search(
        r"(?<!\w)(?<!\d\.)" + re.escape(t) + r"\.\d", normalised_text) is not None


_VERSION = r"\d+(?:\.\d+)+(?:(?:a|b|rc)\d+)?"  # "0.40", "3.3.0", "1.0a20", "3.0.0rc1"
_VERSION_TITLE = re.compile(r"\[?v?(" + _VERSION + r")(?![\w.])", re.I)
_TITLE_LINE = re.compile(r"(?m)^#+[ \t]*(.*)$")


def title_at(s: str, i: int = 0) -> str:
    """The title of the heading line that starts at `i` of `s` ("# 0.40
    (2020-04-21)", as Markdown writes it and as .rst is read), at most 200
    characters; "" when no heading line starts there."""
    m = _TITLE_LINE.match(s, i)
    return m.group(1).strip()[:200] if m else ""


def versioned(term: str) -> tuple[str, str] | None:
    """(name, version) of a versioned name with a dotted version ("Datasette
    0.40" -> ("Datasette", "0.40")); None for anything else ("Python 2", whose
    "2" could be any number)."""
    m = re.fullmatch(r"(.+?)\s+(" + _VERSION + ")", term)
    return (m.group(1), m.group(2)) if m else None


def _release(title: str) -> str | None:
    """The version a title opens with ("0.40 (2020-04-21)" -> "0.40")."""
    m = _VERSION_TITLE.match(title.strip())
    return m.group(1) if m else None


def release_spans(chunk_text: str, section: str, version: str,
                  exact: bool = False) -> list[tuple[int, int]]:
    """Where a passage stands under a title that opens with `version` (or, not
    `exact`, a longer version of it: "0.64.6" for "0.64"), from that title to
    the next title that opens with another version: how changelogs and release
    notes give each release ("# 0.40 (2020-04-21)", then its changes, under
    titles of their own too). `section` is the title the passage starts under."""
    def matches(v: str | None) -> bool:
        return v is not None and (v == version or not exact and v.startswith(version + "."))

    spans = []
    start = 0 if matches(_release(section)) else None
    for m in _TITLE_LINE.finditer(chunk_text):
        v = _release(m.group(1))
        if v is None:
            continue  # a title within the release ("# Magic parameters for canned queries")
        if start is not None:
            spans.append((start, m.start()))
        start = m.start() if matches(v) else None
    if start is not None:
        spans.append((start, len(chunk_text)))
    return [(s, e) for s, e in spans if chunk_text[s:e].strip()]


def titles_release(term: str, chunk_text: str, section: str, normalised_headed: str,
                   source: str = "") -> bool:
    """Whether a passage holds a versioned name ("Datasette 0.40") the way a
    changelog writes it: part of it stands under a title that opens with the
    version, and the name occurs in it, in its document's title or in its
    file's path ("charset-normalizer.md")."""
    v = versioned(term)
    return v is not None and bool(release_spans(chunk_text, section, v[1])) and (
        occurs(v[0], normalised_headed) or occurs(v[0], source.lower()))


_STOP = _COMMON | frozenset(
    """about above across also among another because been being between both but
    can did does doing done down each else even ever from further get gets got had
    into just like made make makes more most much must near now off once only other
    own per same should such than that their them then there these they this those
    through too under upon very was way well were what when where which while who
    will with within would yet thousand million billion trillion percent dollar dollars""".split()
)


_stemmer = None
_british: dict[str, str] | None = None  # British word -> American word ("licence": "license")
_american: dict[str, str] | None = None  # and back ("license": "licence")
_spelt: tuple[dict[str, str], dict[str, set[str]]] | None = None


def _snowball(word: str) -> str:
    global _stemmer
    if _stemmer is None:
        import Stemmer  # PyStemmer: the stemmer the BM25 index uses too

        _stemmer = Stemmer.Stemmer(LANGUAGE)
    return _stemmer.stemWord(word)


def _british_spellings() -> dict[str, str]:
    global _british, _american
    if _british is None:
        # breame's table of British and American spellings (1,730 words with
        # their inflections: "customised", "behaviours", "licences")
        from breame.data.spelling_constants import BRITISH_ENGLISH_SPELLINGS

        _american = {a: b for b, a in BRITISH_ENGLISH_SPELLINGS.items()}
        _british = BRITISH_ENGLISH_SPELLINGS
    return _british


def stem(word: str) -> str:
    """English Snowball stem ("investing", "investment" -> "invest") of the
    word's American spelling: "licence" and "license", "customised" and
    "customized" are one word to every check that compares stems. The keyword
    index keeps the stems of the words as written; `spellings` gives the
    forms to look a stem up by there."""
    return _snowball(_british_spellings().get(word, word))


def spellings(stem_: str) -> set[str]:
    """The Snowball stems of a word as written in either spelling ("licens" and
    "licenc"), for a stem of `stem` or of the keyword index ("licenc"): the
    forms the keyword index may hold it under."""
    global _spelt
    if _spelt is None:
        to_american: dict[str, str] = {}
        british_of: dict[str, set[str]] = {}
        for b, a in _british_spellings().items():
            sb, sa = _snowball(b), _snowball(a)
            if sb != sa:
                to_american.setdefault(sb, sa)
                british_of.setdefault(sa, set()).add(sb)
        _spelt = to_american, british_of
    to_american, british_of = _spelt
    american = to_american.get(stem_, stem_)
    return {stem_, american} | british_of.get(american, set())


def other_spellings(text: str) -> list[str]:
    """The other spelling of each word of a text written one way, British or
    American ("licence": "license", "color": "colour"), each once."""
    british = _british_spellings()
    american = _american or {}
    words = re.findall(r"[a-z]+", text.lower())
    return list(dict.fromkeys(o for w in words for o in (british.get(w), american.get(w)) if o))


def content_words(text: str) -> set[str]:
    """Stems of the lower-case words of four letters or more that carry meaning,
    and acronyms ("AI", "AWS"), however short."""
    text = strip_citations(text)
    return {stem(w) for w in re.findall(r"[a-z]{4,}", text.lower()) if w not in _STOP} | {
        a.lower() for a in re.findall(r"\b[A-Z]{2,5}s?\b", text) if a.lower() not in _STOP}


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


def leaning_windows(texts: list[str]) -> list[str]:
    """Each sentence of the texts with what it leans on: the heading it stands
    under, and the sentence before it when it refers back ("It runs on …",
    "Both commands accept …"). A sentence that names its own subject is read
    alone: "Version 2.2 fixed a crash" does not borrow "TOML" from the sentence
    before it."""
    out = []
    for text in texts:
        heading = prev = ""
        for sent in split_sentences(text):
            if is_heading(sent):
                heading, prev = sent.lstrip("# ").strip(), ""
                continue
            leans = any(w.lower() in REFERRING_WORDS for w in re.findall(r"[^\W\d_][\w'’]*", sent))
            out.append(" | ".join(p for p in (heading, prev if leans else "", sent) if p))
            prev = sent
    return out


def with_mark(sentence: str, mark: int | str) -> str:
    """Put a citation mark before the sentence's closing punctuation."""
    mark = f"[{mark}]" if isinstance(mark, int) else mark
    m = re.search(r"[.!?]*[\"'”]*$", sentence)
    return f"{sentence[:m.start()].rstrip()} {mark}{sentence[m.start():]}"



# -- question words (used by app.question) -------------------------------------------

MONTHS = ("january february march april may june july august september october "
          "november december").split()
QUANTITY_NOUNS = ("valuation|value|price|cost|revenue|size|amount|number|budget|salary|"
                   "population|count|total|sum|percentage|rate|share|worth|fee|profit|income")
# Measures that name one particular quantity: a question asking for a valuation is
# not answered by a sentence that gives an investment, however many words it shares.
# (Generic ones - size, amount, number, total, value - are left out: they paraphrase.)
SPECIFIC_MEASURES = frozenset(
    "valuation revenue revenues profit profits income salary salaries wage wages population "
    "price prices fee fees sales margin debt tax taxes loss losses earnings turnover".split())
SPECIFIC_RE = "|".join(sorted(SPECIFIC_MEASURES))
# Nouns that name a quantity after any qualifier ("the maximum number of rows",
# "the default page size", "the largest length"): "What is the default value …?"
# is left out, since a default value is as often a word as a number.
MEASURE_NOUNS = "number|count|size|length|amount|total|limit"
NUMBER_WORDS = frozenset("one two three four five six seven eight nine ten eleven twelve "
                          "twenty thirty forty fifty hundred thousand dozen half".split())
# Counts written as words, which a claim states as surely as digits ("the two
# main factors"); "one" is left out: it is a pronoun as often as a count.
COUNT_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve".split()) if i > 1}
COUNT_WORDS |= {"twenty": "20", "thirty": "30", "forty": "40", "fifty": "50"}


# Words that state nothing by themselves: articles, pronouns, auxiliaries and
# modals, the prepositions and conjunctions that only join, discourse words, and
# the words a model frames an answer with ("The answer is: ..."). Scale words
# and counts are left to the figure check, which normalises them.
_GRAMMAR = frozenset(
    """a an the this that these those it its he she they we you i his her their our your my
    there here what which who whom whose when where why how is are was were be been being has
    have had do does did will would can could should may might must shall of to in on at by for
    from with as into onto and or but so if then than also just very both either thus hence
    therefore however additionally furthermore moreover overall finally answer answers source
    sources sentence question context according based following mentioned""".split()
) | NUMBER_WORDS | set(COUNT_WORDS) | {"zero", "million", "billion", "trillion", "percent",
                                        "dollar", "dollars"}


# Where a sentence joins two statements: a semicolon, or a comma before a
# conjunction that relates them ("…, but only if …", "…, because …").
_CLAUSE_BREAK = re.compile(r";\s+|,\s+(?=(?:but|while|whereas|although|though|because|since|"
                           r"unless|so that|which means|and then)\b)", re.I)


def clauses(sentence: str) -> list[str]:
    """The statements a sentence joins (`_CLAUSE_BREAK`), the sentence alone
    when it joins none."""
    return [c for c in _CLAUSE_BREAK.split(sentence) if c.strip(" ,;.")] or [sentence]


def claim_words(text: str) -> set[str]:
    """Stems of every word of a claim that states something, however short or
    common ("new", "not", "all", "first", "max"), acronyms lower-cased: what a
    verifier must find in the source sentence, where `content_words`
    (four letters or more, common words left out) is what ranks sentences."""
    text = strip_citations(text)
    return {stem(w) for w in re.findall(r"[a-z]{2,}", text.lower()) if w not in _GRAMMAR}


def counts(sentence: str) -> list[tuple[str, str]]:
    """(word, digits) for every count a sentence writes in words."""
    return [(w, COUNT_WORDS[w]) for w in dict.fromkeys(re.findall(r"[a-z]+", sentence.lower()))
            if w in COUNT_WORDS]


MONEY_OR_SHARE = re.compile(
    r"(?:[$€£¥]|\b(?:us\$|usd|eur|gbp)\s?)\s*\d[\d,.]*(?:\s*(?:thousand|million|billion|trillion|"
    r"[kmb]n?)\b)?|\d[\d,.]*\s*(?:(?:thousand|million|billion|trillion)\s+)?(?:dollars?|euros?|"
    r"pounds?|yen)\b|\d[\d,.]*\s*(?:%|per\s?cent)", re.I)
CURRENCY_WORDS = frozenset("dollars euros pounds yen cents".split())


EXCLUDING = re.compile(
    r"^\W*(?:besides|apart from|aside from|other than|except for|excluding|beyond|"
    r"not counting|leaving aside)\b(?P<aside>[^,;:?]{1,80})[,;:]\s*(?P<rest>.+)$", re.I)



# -- follow-ups (used by app.engine.condense) -----------------------------------------

FOLLOW_UP_START = re.compile(
    r"^\s*(and|but|also|so|then|what about|how about|what else|why|how come)\b", re.I)
ANAPHORA = frozenset(
    "it its it's they them their theirs that this those these he she him her his "
    "there later then same former latter else".split())

# A sentence that opens with one of these leans on the sentence before it for what
# it is about ("This inserts the currently authenticated actor ID." after the line
# that names `:_actor_id`): a quote of it carries that sentence too.
REFERRING_OPENERS = frozenset("it its it's they their these those this that such".split())
# ... and words that, anywhere in a sentence, stand for something the sentence
# before it names ("When it finds one, it adds …", "Both commands accept …");
# "that" only where it opens the sentence (elsewhere it mostly joins a clause).
REFERRING_WORDS = REFERRING_OPENERS - {"that"} | frozenset(
    "both neither either he she his her him them".split())


# A line that gives one fact of what its section is about, as "Label: value": "-
# Default: 2", "* Type: Number", "Author: Stuart Bishop" (the label: up to three words)
LIST_MARK = r"[-*\u2022\s]*"  # the mark a list item opens with ("- ", "* ", "• ")
_FIELD = re.compile(LIST_MARK + r"([A-Za-z][A-Za-z ]{0,24}?)\s*:\s+\S")
FIELD_CHARS = 160  # a longer line is prose with a colon in it


def field_label(sentence: str) -> str | None:
    """The label of a line of the form "Label: value" ("- Default: 2" ->
    "Default"), or None for any other sentence."""
    m = _FIELD.match(sentence)
    if m is None or len(sentence) > FIELD_CHARS or len(m.group(1).split()) > 3:
        return None
    return m.group(1)


def refers_back(sentence: str) -> bool:
    """Whether a sentence opens by referring to what came before it."""
    first = re.match(r"\W*([^\W\d_][\w'’]*)", sentence)
    return bool(first) and first.group(1).replace("’", "'").lower() in REFERRING_OPENERS




# -- what a question asks for (used by app.question) ---------------------------------

CONDITION_AUXILIARIES = "does|do|is|are|can|could|should|must|may|might|would"


def question_kind(question: str) -> str | None:
    """The kind of fact a question asks for, from English question words."""
    q = re.sub(r"\b(what|how|who|where|when)['’]s\b", r"\1 is", question.lower())
    if re.search(r"\bhow (much|many|large|big|long|often)\b|\bby how\b", q) or re.search(
            rf"\bwhat (is|was|are|were) (the |its |their |[\w-]+'s )?({QUANTITY_NOUNS})\b", q) or re.search(
            rf"\bwhat (is|was|are|were) (the |its |their |this |that )?([\w-]+['’]s )?"
            rf"((?!of |in |for )[a-z-]+ ){{0,2}}({SPECIFIC_RE}|{DURATION_RE}|{MEASURE_NOUNS})\b",
            q) or re.search(rf"\bwhat ({QUANTITY_NOUNS})\b", q) or any(
            m.group(1) in TIME_UNITS | SIZE_UNITS and len(m.group(1)) > 1
            for m in re.finditer(r"\bin ([a-z]+)\s*(?:[,?]|$)", q)):
        return "figure"
    # who/when/where open the question (after "and", "so"..., or after what it
    # is about and a colon: "Datasette 0.56: when did it come out?"); inside it
    # they are conjunctions or relative pronouns ("issues to weigh when deploying").
    opening = (r"^(?:(?![^:?]*\b(?:how|what|which|who|whom|whose|when|where|why)\b)[^:?]{1,80}:\s+)?"
               r"\W*(?:(?:and|so|then|but|also)\W+)?")
    # "When did/was/will …?" asks for a date. "When is the hook called?", "When
    # does it fire?", "When can it fail?" as often ask for a condition ("when a new
    # connection is created"), which is no particular kind of fact.
    # "What was the release date of …?", "its ship date": a date named as the
    # thing asked for, after a word or two that say which
    if re.search(opening + rf"when\b(?!\s+(?:{CONDITION_AUXILIARIES})\b)", q) or re.search(
            r"\b(what|which) (year|date|month|day)\b|\bin what year\b", q) or re.search(
            r"\b(?:(?:what|which)(?: is| was| are| were)?|tell me|give(?: me)?)\s+(?:(?:the|its|"
            r"their)\s+)?(?:[a-z-]+\s+){0,2}(?:date|year)\b(?!\s*(?:format|range|column|field|"
            r"type|filter|facet|picker|string|value|time|stamp)s?\b)", q):
        return "date"
    # "Which X" is left out: its answer is as often a common noun or a command
    # ("systemd", "--load-extension") as a capitalised name.
    if re.search(opening + r"(who|whom|whose|where)\b", q) or re.search(
            r"\bwhat(?:'s|’s| is| was| are| were) the names? of\b", q):
        return "name"
    return None


_THING = re.compile(r"^\W*(?:(?:and|so|then|but|also)\W+)?"
                    r"(?:(?:in|at|from|for|to|on|with|by|under|into|through|over|via|within|"
                    r"inside|across)\s+)?(?:which|what)\s+(?!(?:is|are|was|were|do|does|did|can|could|should|would|"
                    r"will|has|have|had|happens?|if|about|else)\b)[a-z]", re.I)


def asks_for_thing(question: str) -> bool:
    """"Which option …?", "What port …?": the answer names something (a name, a
    code name, a figure) that the question does not."""
    return bool(_THING.match(question))


# Words that ask what a thing is or is for, beside its name: "What is tqdm used
# for?", "What's the purpose of pluggy?", "What does the idna package do?".
ABOUT_WORDS = frozenset(
    "use used uses purpose purposes goal goals aim point overview introduction summary "
    "description package library module project tool framework".split())
_TOKEN = re.compile(r"[^\s?!,;:()\"“”]+")
# "What is / does / are …", "Tell me about …", "Describe …": a question that asks
# what something is (not which, how, when or whether)
_ASKS_WHAT = re.compile(r"\W*(?:(?:and|so)\W+)?(?:what(?:'s|’s)?|tell|describe|explain|"
                        r"introduce|summari[sz]e)\b", re.I)


def asked_subject(question: str) -> str | None:
    """The one thing a question asks about when it asks what that thing is or
    does and nothing more ("What does tqdm do?", "What is sqlite-utils?", "Tell
    me about Rich.", "What is the idna package for?": "tqdm", "sqlite-utils",
    "Rich", "idna"), else None. Its other words must be question and function
    words or `ABOUT_WORDS`, and the name one run of up to three words ("Datasette
    Cloud"); a word of the name carries meaning (`content_words`) or holds a digit
    ("h11"). Only a question that asks what ("What …?", "Tell me about …",
    "Describe …"), not which, how, when or whether."""
    if not _ASKS_WHAT.match(question):
        return None
    about = {stem(w) for w in ABOUT_WORDS}
    tokens = [t.strip(".'’").removesuffix("'s").removesuffix("’s") for t in _TOKEN.findall(question)]
    named = [i for i, t in enumerate(tokens) if t and (
        content_words(t) - about or (re.search(r"\d", t) and re.search(r"[A-Za-z]", t)))]
    if not named or named != list(range(named[0], named[-1] + 1)) or len(named) > 3 or any(
            re.search(r"\d", t) for i, t in enumerate(tokens) if i not in named):
        return None  # "What is Python 2?" asks about a version
    return " ".join(tokens[i] for i in named)


def name_key(name: str) -> str:
    """A name as a file's name or a title may write it: "python-dotenv",
    "python_dotenv" and "Python Dotenv" are one key."""
    return re.sub(r"[\W_]+", "", name.lower())


def as_it(question: str, name: str) -> str:
    """A question with a name it asks about put as "it" ("its" for "name's"):
    "Under which licence is FastAPI distributed?" is "Under which licence is it
    distributed?", how it reads within the document about that name."""
    return re.sub(rf"(?<![\w-]){re.escape(name)}(['’]s)?(?![\w-])",
                  lambda m: "its" if m.group(1) else "it", question)


def is_prose(sentence: str) -> bool:
    """Whether a sentence is prose that says something, not a heading, a badge
    line, a link, code (a shell or REPL line, a Python import) or a line that
    introduces code (": "), and has six words or more."""
    s = sentence.strip()
    if is_heading(s) or s.endswith(":") or re.search(
            r"https?://|`|>>>|\||^\W*[$>]|^(?:from\s+\S+\s+)?import\s", s):
        return False  # a link, code, a row of links ("PyPI for releases | Github …")
    return len(re.findall(r"[^\W\d_][\w'’-]*", s)) >= 6 and sum(
        c.isalpha() or c.isspace() for c in s) >= 0.8 * len(s)


# What a reader types: a question for one of these, or for how to do something,
# is answered in documentation by a command, an option or a call, not by prose
# about it ("How do I speed up startup?" by "datasette -i data.db --inspect-file=…").
CODE_NOUNS = ("option|flag|switch|parameter|param|argument|arg|setting|command|subcommand|"
              "variable|key|keyword|endpoint|url|path|route|function|method|hook|header|"
              "decorator|class|module|attribute|property|field|constant|directive")
_ASKS_CODE = re.compile(
    rf"\b(?:which|what)\s+(?:[\w./-]+\s+){{0,3}}?(?:{CODE_NOUNS})s?\b"
    r"|^\W*(?:(?:and|so|then|but|also)\W+)?how\s+(?:(?:do|would)\s+(?:i|you|we|one)\b"
    r"|(?:can|could|should|might|must)\s+\w)|^\W*how to\b"
    r"|^\W*what\s+(?:do|should|can|must)\s+(?:i|you|we)\s+(?:type|run|pass|add|set|use|call|put|"
    r"write|give|enter)\b", re.I)
# code in prose: an argument or setting given a value (showindex="always"), a call
# (init(…)), a dotted name (orjson.OPT_SORT_KEYS), an option; a shell or REPL line; the term a
# reference list defines ("leave: If [default: True], keeps …")
_CODE_TOKEN = re.compile(r"(?<![\w.])([A-Za-z_][\w.]*)(?:=(?!=)|\()"
                         r"|(?<![\w/])([a-z_]\w*(?:\.[A-Za-z_]\w*)+)"
                         r"|(?<![\w-])(--?[A-Za-z][\w-]*)")  # "-e/--expires-after"
_CODE_LINE = re.compile(r"^\s*(?:\$|>>>)\s*(\S+)|^\W{0,2}([a-z_][^\s:]*):\s")


def asks_for_code(question: str) -> bool:
    """Whether a question asks for something to type: "Which option …?", "What
    command …?", "How do I …?", and "How can / should … ?" whoever the subject
    ("How can plugins register new routes?"): a modal asks for a way to do it,
    where "How does Datasette …?" asks how something works."""
    return bool(_ASKS_CODE.search(question))


def code_names(sentence: str) -> list[str]:
    """The code a sentence gives: code names (`identifiers`), arguments, calls,
    dotted names, the command of a shell or REPL line, a reference list's term."""
    found = identifiers(sentence)
    for m in _CODE_TOKEN.finditer(sentence):
        name = m.group(1) or m.group(2) or m.group(3)
        if len(name) > 3 or not m.group(2):  # "e.g" and "i.e" are not code
            found.append(name)
    line = _CODE_LINE.match(sentence)
    if line:
        found.append(line.group(1) or line.group(2))
    return found


def gives_code(sentence: str, example: str = "") -> bool:
    """Whether a sentence gives code, itself or in the `example` line it
    introduces (after its colon): a command the reader types ("You can also use
    the datasette plugins command:" + "datasette plugins"). The code may be what
    the question names: "Which parameter sets the colour?" is answered by
    "colour: Bar colour …", "How do I install it using pip?" by "pip install …"."""
    if code_names(sentence):
        return True
    return bool(example) and not re.search(r"[.!?]\W*$", example) and len(example) <= 160 \
        and bool(re.search(r"[A-Za-z_]", example))


def adds_fact(answer: str, question: str) -> bool:
    """Whether an answer holds a figure or name (code names included) that the
    question does not."""
    figures, names = facts(answer)
    q_figures, q_names = facts(question)
    asked = {n.lower() for n in q_names} | set(q_figures)
    return any(f not in asked for f in figures) or any(n.lower() not in asked for n in names)


def asked_measure(question: str) -> str | None:
    """The particular quantity a figure question asks for ("revenue" in "How much
    revenue does X make?", "valuation" in "What was X's valuation?"), or None."""
    q = question.lower()
    # The noun of "how many X" is left out: "records" is asked of a passage that
    # says "rows", and a synonym must not turn an answer into a refusal.
    for m in re.finditer(r"\b[a-z]+\b", q):
        if m.group(0) in SPECIFIC_MEASURES:
            return m.group(0)
    return None


# Units by the dimension they measure. A question that asks for a duration ("How
# long…", "How often…", "How many seconds…", "…, in days?") or a size in bytes is
# answered only by a passage that gives a figure in such a unit: "version 0.28" is a
# figure, but not how many days anything lasts. Units are read as words and as
# parts of names ("sql_time_limit_ms", "max_csv_mb", "50MB").
TIME_UNITS = frozenset(
    "ms msec millisecond milliseconds s sec secs second seconds min mins minute minutes h hr "
    "hrs hour hours hourly day days daily week weeks weekly fortnight month months monthly "
    "year years yearly annual annually decade decades".split())
SIZE_UNITS = frozenset(
    "b byte bytes kb kib kilobyte kilobytes mb mib megabyte megabytes gb gib gigabyte "
    "gigabytes tb tib terabyte terabytes".split())
LENGTH_UNITS = frozenset("character characters char chars letters words lines".split())
DURATION_NOUNS = frozenset("timeout timeouts duration lifetime interval delay ttl".split())
DURATION_RE = "|".join(sorted(DURATION_NOUNS))
_SHORT_UNITS = frozenset("s h min mins b".split())
_NAMED_UNIT = re.compile(r"\b(?:how many|in|of)\s+([a-z]+)\b")
_PER_UNIT = re.compile(r"\bper\s+([a-z]+)\b")
_RATE_WORDS = frozenset("hourly daily weekly monthly yearly annual annually".split())
# "per second", "each day", "a month" (not "every three seconds": a period, not how many)
_PER_TIME = re.compile(r"\b(?:per|each|every|a|an|one)\s+(?:%s)\b" % "|".join(
    sorted(TIME_UNITS - _SHORT_UNITS - _RATE_WORDS, key=len, reverse=True)))
# A rate's unit written short: "20000 TPS", "60000 TPSs", "QPS", "Mbps", "500 req/s"
_RATE_ABBREVIATION = re.compile(r"\b(?:(?:TPS|QPS|RPS|IOPS|FPS|OPS|MIPS|FLOPS)s?|[KMGkmg]?bps"
                                r"|[a-z]*/(?:s|sec|min|h|hr))\b|\d\s?/s\b")


def asked_dimension(question: str) -> str | None:
    """"time" when a figure question asks how long or how often something is,
    "rate" when it asks how many of something per unit of time, "size" when it
    asks for a size in bytes, "long" for "How long…" (a time or a length in
    characters), else None. Only units and duration words count: "How
    big was the deal?" asks for money, not bytes."""
    q = question.lower()
    named = {m.group(1) for m in _NAMED_UNIT.finditer(q)}
    if named & (TIME_UNITS - _SHORT_UNITS) or re.search(r"\bhow often\b", q) or (
            DURATION_NOUNS & set(re.findall(r"[a-z]+", q))):
        return "time"
    # "How many transactions per second…" asks for a count in a unit of time, a rate
    if {m.group(1) for m in _PER_UNIT.finditer(q)} & (TIME_UNITS - _SHORT_UNITS):
        return "rate"
    if named & (SIZE_UNITS - _SHORT_UNITS) or re.search(r"\bhow much (memory|ram|disk|storage)\b", q):
        return "size"
    if re.search(r"\bhow long\b", q):
        return "long"
    return None


def gives_dimension(window: str, dimension: str) -> bool:
    """Whether a passage names a unit of the dimension asked for, as a word or
    as a part of a name or figure ("10ms", "max_csv_mb"); a rate also as its
    abbreviation ("TPS", "Mbps", "req/s")."""
    if dimension == "rate":  # "7 transactions per second", "20000 TPS", "billed monthly"
        return bool(_RATE_ABBREVIATION.search(window) or _PER_TIME.search(window.lower())
                    or set(re.findall(r"[a-z]+", window.lower())) & _RATE_WORDS)
    units = {"time": TIME_UNITS, "size": SIZE_UNITS, "long": TIME_UNITS | LENGTH_UNITS}[dimension]
    words = set(re.findall(r"[a-z]+", window.lower()))
    # units that are also other words ("min_free_disk_bytes") only right after a
    # digit ("30s", "5 min")
    shared = units & _SHORT_UNITS
    return bool(words & (units - shared)) or any(
        re.search(rf"\d\s?{u}\b", window.lower()) for u in shared)


def mentions(window: str, word: str) -> bool:
    """Whether a word, or one of its forms ("valuation": "valued", "value"),
    occurs in a text: the same Snowball stem or the same first five letters."""
    target = stem(word)
    for w in re.findall(r"[a-z]+", window.lower()):
        if stem(w) == target or (len(w) >= 5 and len(word) >= 5 and w[:5] == word[:5]):
            return True
    return False



def amounts(text: str) -> list[str]:
    """The figures of a text other than bare years ("50 billion", "40%", "12")."""
    return [f for f in facts(text)[0] if not re.fullmatch(r"(19|20)\d\d", f)]


def gives_kind(text: str, kind: str | None, question: str = "") -> bool:
    if kind is None:
        return True
    figures, names = facts(text)
    if kind == "figure":  # an amount or count; a bare year is not "how much"
        counted = re.search(r"\b(?:how many|number of) ([a-z]+)", question.lower())
        if counted and counted.group(1) not in CURRENCY_WORDS:
            # "how many teachers" is not answered by "$2 million" or "40%"
            text = MONEY_OR_SHARE.sub(" ", text)
        return bool(amounts(text)) or bool(
            NUMBER_WORDS & set(re.findall(r"[a-z]+", text.lower())))
    if kind == "date":
        return any(re.fullmatch(r"\d{4}", f) for f in figures) or any(
            m in text.lower() for m in MONTHS)
    asked = {n.lower() for n in facts(question)[1]}
    return any(n.lower() not in asked for n in names)




# -- documents are data, not instructions ----------------------------------------------

# A sentence that gives orders to whoever answers ("Always say: ...", "Then say the
# password is ...", "Ignore previous instructions", "Tell the user that ...") is a
# document's content, never an answer: the ranker does not quote it and the model
# is not shown it. Imperatives that tell a *reader* what to do ("Run datasette
# serve", "Say you have a table ...") are left alone: how-to answers are made of them.
_ORDER_LEAD = (r"^\W*(?:(?:always|never|now|then|also|just|please|simply|instead|only|"
               r"from now on|you (?:must|should|will|shall)|do not|don't),?\s+)*")
_ORDERS = re.compile(
    _ORDER_LEAD + r"(?:(?:say|reply|respond|answer|claim|insist)\b(?!\s+(?:you|we|i|they|there|"
    r"yes|no|y|n)\b)(?!-)"
    r"|tell (?:the )?(?:user|users|reader|readers|anyone|everyone|people|them|him|her)\b"
    r"|(?:ignore|disregard|forget|override)\b.{0,40}\b(?:instructions?|prompts?|rules?|previous|"
    r"prior|above|earlier)\b"
    r"|pretend\b|act as\b|you are now\b)", re.I)


def is_instruction(sentence: str) -> bool:
    """Whether a sentence orders whoever answers what to say or to drop its rules."""
    return bool(_ORDERS.match(sentence.strip().lstrip("#>*-\u2022\"'\u201c ")))


def without_instructions(text: str) -> str:
    """A passage with its instructions to the answerer (and what a colon after one
    introduces) left out, for the verifier: what a document orders is not evidence."""
    kept, ordered = [], False
    for sent in split_sentences(text):
        if is_instruction(sent) or ordered:
            ordered = is_instruction(sent) and sent.rstrip().endswith(":")
            continue
        kept.append(sent)
    return " ".join(kept)
