"""Find and read source files into plain texts, one per document or PDF page.

Formats: .txt is read as strict UTF-8 (nothing is removed, so character
offsets point into the file as it is); .md is rendered by markdown-it-py
(CommonMark with tables and strikethrough, raw HTML passed through) and read
as HTML is, so that link targets, badges, images, raw HTML and emphasis marks
reach neither quotes nor indexes (a YAML front-matter block is left out);
.rst is parsed by docutils and reduced to readable text (headings as
"# Title" lines, as Markdown writes them; paragraphs, list items and each
line of a literal block as a block of its own, except that a definition
list's term and the paragraph that opens its definition are one line,
"term: definition"; Sphinx roles such as :class:`x` reduced to their words,
and :ref:`label` to the title of the section it names, found across the .rst
files of the file's folder); .pdf is read page by page with pypdfium2 (PDFium),
NFKC-normalised (so ligatures read "fi") with words hyphenated across line
breaks joined again, page numbers and running heads taken out, a sentence
cut by a page break made whole on the page where it starts, and the paper's
reference marks within a line ("[14]") written as superscripts;
.html/.htm with markdownify over BeautifulSoup (visible text, headings as
"# Title" lines, paragraphs and list items as blocks); .docx with docx2txt,
the readers LlamaIndex's own file readers use. In code blocks (all but .txt)
a comment line is read as its words, without the "#" that would make it a
heading. Every problem with one file raises `BadFileError` with a one-line
reason; the caller decides to go on. For .md, .rst, .pdf, .html and .docx,
character offsets point into the extracted text.

Left out: OCR of scanned PDFs, spreadsheets, e-mail and archives; Sphinx's
autodoc (`.. automodule::` has no text of its own in the file).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.errors import BadFileError

TEXT_EXTS = {".txt"}
MARKDOWN_EXTS = {".md", ".markdown"}
SUPPORTED = TEXT_EXTS | MARKDOWN_EXTS | {".rst", ".pdf", ".html", ".htm", ".docx"}


@dataclass(frozen=True)
class Page:
    """Text of a document (or of one PDF page) ready to split."""

    text: str
    title: str
    page: int | None = None


def source_name(path: Path, base: Path | None = None) -> str:
    """How a file is named in the index: relative to `base` (the folder holding
    the index, so that the name does not depend on where a command runs; the
    working directory when not given) when it lies under it, else absolute.
    Always with forward slashes."""
    p = path.resolve()
    try:
        return p.relative_to((base or Path.cwd()).resolve()).as_posix()
    except ValueError:
        return p.as_posix()


def source_path(source: str, base: Path) -> Path:
    """The file a source name stands for (the inverse of `source_name`)."""
    p = Path(source)
    return p if p.is_absolute() else base / p


def find_files(paths: list[Path]) -> tuple[list[Path], list[Path], dict[str, str], dict[str, str]]:
    """Expand files and folders (recursively) into supported files.

    Returns (files, folders, problems, skipped): the folders are remembered so
    that files gone from them can be removed from the index; `problems` maps a
    path given explicitly that cannot be used to its reason; `skipped` maps a
    file found in a folder whose type is not read, or a link that leads out of
    the folder (not followed), to the reason. A file reached twice (through a
    link inside the folder) is listed once.
    """
    files: list[Path] = []
    folders: list[Path] = []
    problems: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for path in paths:
        if path.is_dir():
            folders.append(path)
            root = path.resolve()
            for f in sorted(path.rglob("*")):
                rel = f.relative_to(path).parts
                if any(part.startswith(".") for part in rel):
                    continue  # hidden files and folders (.git, .DS_Store)
                if not f.is_file():
                    continue
                if not f.resolve().is_relative_to(root):
                    skipped[f.as_posix()] = "a link to a file outside the folder, not followed"
                    continue
                if f.suffix.lower() in SUPPORTED:
                    files.append(f)
                else:
                    skipped[source_name(f)] = f"unsupported type '{f.suffix or f.name}'"
        elif path.is_file():
            if path.suffix.lower() in SUPPORTED:
                files.append(path)
            else:
                problems[source_name(path)] = (
                    f"{source_name(path)}: unsupported file type '{path.suffix or path.name}' "
                    f"(supported: {', '.join(sorted(SUPPORTED))})"
                )
        else:
            problems[str(path)] = f"{path}: no such file or folder"
    unique = {f.resolve(): f for f in reversed(files)}  # the first path to each file
    files = [f for f in files if unique[f.resolve()] is f]
    return files, folders, problems, skipped


# Bumped whenever what ingest makes of a file changes (a reader's text, or what is
# embedded: 8 put each chunk under its headings; 9 reads an .rst definition list's term
# on one line with its definition; 10 takes PDF page numbers and running heads out and
# makes a sentence cut by a page break whole; 11 writes a PDF's reference marks as
# superscripts; 12 reads HTML with markdownify; 13 renders Markdown and reads it as
# HTML, and leaves a blockquote's "> " marks out; 14 reads a code comment line without
# its "#" marks, an .rst paragraph without its images' alt text, and a definition
# list's term that ends in a colon without a second one), so that the next ingest reads
# every file again instead of serving what the old version made.
READER_VERSION = "14"


def file_hash(path: Path, salt: str = "") -> str:
    """The file's sha256, salted with the reader version and `salt` (the chunking
    settings): a file counts as changed when how it would be read changes."""
    h = hashlib.sha256(f"{READER_VERSION}:{salt}\0".encode())
    h.update(path.read_bytes())
    return h.hexdigest()


def _decode(data: bytes, name: str) -> str:
    if b"\x00" in data[:8192]:
        raise BadFileError(f"{name}: binary data in a text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise BadFileError(
            f"{name}: not valid UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start})"
        ) from None


def _title_from_text(text: str, fallback: str) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line if len(line) <= 120 else fallback
    return fallback


def read_file(path: Path) -> list[Page]:
    """Read one file into pages of text, or raise BadFileError naming it."""
    name = source_name(path)
    ext = path.suffix.lower()
    try:
        data = path.read_bytes()
    except OSError as e:
        raise BadFileError(f"{name}: cannot read ({e.strerror})") from None
    if not data.strip():
        raise BadFileError(f"{name}: empty file")

    if ext in TEXT_EXTS:
        text = _decode(data, name)
        pages = [Page(text=text, title=_title_from_text(text, path.stem))]
    elif ext in MARKDOWN_EXTS:
        pages = [_read_markdown(_decode(data, name), path.stem)]
    elif ext == ".rst":
        pages = [_read_rst(_decode(data, name), name, path.stem, rst_titles(path.parent))]
    elif ext == ".pdf":
        pages = _read_pdf(path, name)
    elif ext in (".html", ".htm"):
        pages = [_read_html(_decode(data, name), path.stem)]
    elif ext == ".docx":
        pages = [_read_docx(path, name)]
    else:
        raise BadFileError(f"{name}: unsupported file type '{ext}'")

    pages = [p for p in pages if p.text.strip()]
    if not pages:
        raise BadFileError(f"{name}: no text could be extracted")
    return pages


_PDFIUM = threading.Lock()  # PDFium is not thread-safe; uploads may be read beside each other


def _read_pdf(path: Path, name: str) -> list[Page]:
    import pypdfium2 as pdfium

    try:
        with _PDFIUM:
            doc = pdfium.PdfDocument(str(path))
            try:
                meta_title = doc.get_metadata_dict().get("Title") or ""
                texts = []
                for i in range(len(doc)):
                    page = doc[i]
                    textpage = page.get_textpage()
                    texts.append(textpage.get_text_range() or "")
                    textpage.close()
                    page.close()
            finally:
                doc.close()
    except (pdfium.PdfiumError, ValueError, OSError) as e:
        raise BadFileError(f"{name}: not a readable PDF ({type(e).__name__}: {e})"[:300]) from None
    texts = [clean_pdf_text(t) for t in texts]
    title = meta_title.strip() or _title_from_text(next((t for t in texts if t.strip()), ""), path.stem)
    from app.text import superscript_references

    texts = [superscript_references(t) for t in join_broken_pages(without_running_lines(texts))]
    return [Page(text=t, title=title, page=i + 1) for i, t in enumerate(texts)]


# Inline markup whose Markdown marks ("**", "`", "[text](url)") would only get in the
# way of quotes: kept as its text.
_INLINE_TAGS = ["a", "img", "b", "strong", "i", "em", "u", "code", "tt", "kbd", "samp", "var",
                "span", "cite", "abbr", "small", "big", "mark", "s", "del", "ins", "sub", "font"]
_UNMARKED = _INLINE_TAGS + ["blockquote"]  # read as their text: no "**", no "> "
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(?:[\w-]+:.*\n|[ \t#-].*\n|\n)*?---[ \t]*\n")
_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)


def _read_html(html: str, fallback: str) -> Page:
    """Visible text, by markdownify: headings as "# Title" lines (so that chunks know
    their section, as in Markdown and .rst), paragraphs and list items as blocks,
    inline markup as its words, a code block's lines each a block (as .rst's), a
    reference mark ("<sup>[14]</sup>") as a superscript. Markup nested deeper than
    markdownify can recurse is read as its text alone, line by line."""
    from bs4 import BeautifulSoup
    from markdownify import MarkdownConverter

    from app.text import is_reference_mark, superscript_mark

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    title = soup.title.get_text(strip=True) if soup.title else ""
    if soup.title:
        soup.title.decompose()
    for sup in soup.find_all("sup"):
        if is_reference_mark(sup.get_text()):
            sup.replace_with(superscript_mark(sup.get_text()))
    try:
        text = MarkdownConverter(heading_style="ATX", bullets="-", strip=_UNMARKED,
                                 escape_underscores=False, escape_asterisks=False,
                                 escape_misc=False).convert_soup(soup)
    except RecursionError:  # tags nested deeper than markdownify recurses: the text alone
        text = "\n".join(ln.strip() for ln in soup.get_text("\n").splitlines() if ln.strip())
    else:
        text = _FENCE.sub(lambda m: "\n\n" + _code_lines(m.group(1)) + "\n\n", text)
        text = "\n".join(line.rstrip() for line in text.splitlines())
        text = re.sub(r"\n{3,}", "\n\n", text).strip()
    return Page(text=text, title=title or _title_from_text(text, fallback))


def _read_markdown(source: str, fallback: str) -> Page:
    """Markdown as its readable text: rendered to HTML by markdown-it-py
    (CommonMark, with GitHub's pipe tables and strikethrough; raw HTML kept, so
    that a README's `<p align="center">` logo and badges go as markup does) and
    read as HTML is. A YAML front-matter block ("---" lines around "key: value"
    lines, as static-site generators write it) is left out. The title is the
    document's first level-1 heading, else the file's name: a README that opens
    with badges or a list of translations has no title line."""
    from markdown_it import MarkdownIt

    source = _FRONT_MATTER.sub("", source, count=1)
    md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    tokens = md.parse(source)
    title = ""
    for opening, inline in zip(tokens, tokens[1:]):
        if opening.type == "heading_open" and opening.tag == "h1" and inline.children:
            title = " ".join("".join(c.content for c in inline.children
                                     if c.type in ("text", "code_inline")).split())
            if title:
                break
    page = _read_html(md.renderer.render(tokens, md.options, {}), fallback)
    return Page(text=page.text, title=title or fallback)


def _read_docx(path: Path, name: str) -> Page:
    import zipfile

    import docx2txt

    try:
        text = docx2txt.process(str(path)) or ""
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as e:
        raise BadFileError(f"{name}: not a readable .docx ({type(e).__name__})") from None
    return Page(text=text.strip(), title=_title_from_text(text, path.stem))


def clean_pdf_text(text: str) -> str:
    """NFKC (ligatures such as "\ufb01" become "fi"), PDFium's line ends and soft
    hyphens dropped, and words split by a hyphen at a line break joined
    ("re-\nsults" -> "results"). A hyphen before a capital or a digit stays:
    "Proof-of-\nStake" is a compound, not a broken word."""
    import unicodedata

    # PDFium ends lines with \r\n and puts U+FFFE for a hyphen it took away at
    # a line end ("us\ufffeers"), whatever follows: read as that hyphen and line
    # end again, so that the rules below decide ("Proof-of-\ufffeStake" stays a compound).
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufffe", "-\n")
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(r"[ \t]+(?=\n)", "", text)  # a line's trailing blank: "in  blockchain" in quotes
    return _BROKEN_WORD.sub(_join_broken_word, text)


# a word broken by a hyphen at a line end, its second part in lower case
_BROKEN_WORD = re.compile(r"(\S*[a-z])-[ \t]*\n[ \t]*(?=[a-z])")


def _join_broken_word(m: re.Match) -> str:
    """"re-\nsults" -> "results"; "peer-to-\npeer" keeps its hyphen: a word that
    already has one is a compound broken at one of its hyphens."""
    return m.group(1) + ("-" if "-" in m.group(1) else "")


# A line at the top or bottom of a page that is a bare page number ("12", "- 12 -",
# "Page 12", "12 of 30", "xii"), digits read as one placeholder.
_PAGE_NUMBER = re.compile(r"^\W*(?:page\s+)?(?:#|(?=[ivxlc])c{0,3}(?:xc|xl|l?x{0,3})(?:ix|iv|v?i{0,3}))"
                          r"(?:\s*(?:of|/)\s*#)?\W*$", re.I)
EDGE_LINES = 2  # lines looked at on each edge of a page
RUNNING_SHARE = 1 / 3  # a running head stands on this share of pages (one of two alternating: half)


def _edge_key(line: str) -> str:
    return re.sub(r"\d+", "#", " ".join(line.split())).lower()


def without_running_lines(pages: list[str]) -> list[str]:
    """Page numbers and running heads and feet out of a PDF's page texts: a line
    among the first or last `EDGE_LINES` of a page that is a bare page number, or
    that (digits aside) stands on the same edge of at least `RUNNING_SHARE` of the
    pages, and on three or more. They would otherwise start or end a chunk and
    break the sentence a page break already cuts ("2 chain market size…"). The
    first page keeps its top lines but a page number: its title is its own."""
    if len(pages) < 3:
        return pages
    lines = [p.split("\n") for p in pages]

    def edges(ls: list[str], top: bool) -> list[int]:
        order = range(len(ls)) if top else range(len(ls) - 1, -1, -1)
        return [i for i in order if ls[i].strip()][:EDGE_LINES]

    seen = {True: Counter(), False: Counter()}
    for ls in lines:
        for top in (True, False):
            seen[top].update({_edge_key(ls[i]) for i in edges(ls, top)})
    floor = max(3, RUNNING_SHARE * len(pages))
    out = []
    for n, ls in enumerate(lines):
        drop = set()
        for top in (True, False):
            for i in edges(ls, top):  # from the edge inwards, while the lines run
                key = _edge_key(ls[i])
                number = bool(_PAGE_NUMBER.match(key))
                if not (number or (seen[top][key] >= floor and not (top and n == 0))):
                    break
                drop.add(i)
        out.append("\n".join(line for i, line in enumerate(ls) if i not in drop))
    return out


_SENTENCE_END = re.compile(r"[.!?][\"'\u201d\u2019)\]]*(?:\s|$)")
MAX_CARRIED = 1000  # characters of a sentence's end brought back over a page break


def join_broken_pages(pages: list[str]) -> list[str]:
    """A sentence a page break cuts is made whole on the page where it starts: a
    page that ends without closing its sentence, followed by one that opens in
    lower case, takes the next page's text up to its first sentence end ("…the
    global block-" + "chain market size is expected … [1]."), with a word broken
    by a hyphen joined."""
    from app.text import sentence_spans

    pages = list(pages)
    for n in range(len(pages) - 1):
        here, there = pages[n].rstrip(), pages[n + 1].lstrip()
        if not here or not there[:1].islower() or _SENTENCE_END.search(here[-2:] + " "):
            continue
        cut = len(sentence_spans(there)[0])  # the chunker's own sentence ends
        if cut > MAX_CARRIED:
            continue
        # the page's lines were joined already: only a word broken at the break is left
        joined = _BROKEN_WORD.sub(_join_broken_word, here + "\n" + there[:cut].rstrip())
        pages[n], pages[n + 1] = joined, there[cut:].lstrip()
    return pages


# Sphinx's roles and directives, which plain docutils does not know. A role keeps
# its words ("title <target>" keeps the title); a directive keeps its content as
# text (code as a literal block); autodoc and toctree have no text in the file.
_SPHINX_ROLES = ("ref doc class func meth attr mod data exc obj term envvar option file program "
                 "command kbd abbr samp any guilabel menuselection mimetype dfn keyword "
                 "py:class py:func py:meth py:attr py:mod py:data py:exc py:obj issue pr "
                 "download numref token").split()
_CODE_DIRECTIVES = ("code-block", "sourcecode")  # literalinclude names a file: no text here
_TEXT_DIRECTIVES = ("versionadded", "versionchanged", "deprecated", "seealso", "only", "tab",
                    "tabs", "glossary", "centered", "hlist", "productionlist", "eval-rst")
_EMPTY_DIRECTIVES = ("toctree", "automodule", "autoclass", "autofunction", "automethod",
                     "autoattribute", "autodata", "autoexception", "currentmodule", "module",
                     "highlight", "index", "function", "method", "attribute", "envvar",
                     "program", "cmdoption", "describe", "py:function", "py:method",
                     "py:class", "py:attribute", "py:module", "default-role", "literalinclude")
_rst_ready = False


def _register_sphinx_markup() -> None:
    global _rst_ready
    if _rst_ready:
        return
    from docutils import nodes
    from docutils.parsers.rst import Directive, directives, roles

    def words_role(name, rawtext, text, lineno, inliner, options=None, content=None):
        m = re.match(r"^(.*?)\s*<[^<>]*>$", text, re.S)
        words = (m.group(1) if m and m.group(1) else text).lstrip("~!")
        if not (m and m.group(1)) and name in ("ref", "doc"):
            # Sphinx shows the title of the section (or document) a label names
            titles = getattr(inliner.document.settings, "ragchat_titles", {})
            words = titles.get(f"{name}:{words.lower()}", words)
        return [nodes.literal(rawtext, words)], []

    for role in _SPHINX_ROLES:
        roles.register_local_role(role, words_role)

    class Code(Directive):
        has_content, optional_arguments, final_argument_whitespace = True, 1, True
        option_spec = None

        def run(self):
            return [nodes.literal_block("\n".join(self.content), "\n".join(self.content))]

    class Text(Directive):
        has_content, optional_arguments, final_argument_whitespace = True, 2, True
        option_spec = None

        def run(self):
            node = nodes.container()
            lead = " ".join(self.arguments[1:] if self.name.startswith("version") else self.arguments)
            if lead:
                inline, _ = self.state.inline_text(lead, self.lineno)
                node += nodes.paragraph(lead, "", *inline)
            self.state.nested_parse(self.content, self.content_offset, node)
            return [node]

    class Empty(Directive):
        has_content, optional_arguments, final_argument_whitespace = True, 10, True
        option_spec = None

        def run(self):
            return []

    class AnyOptions(dict):  # directives of Sphinx take options docutils has never heard of
        def __contains__(self, key):
            return True

        def __getitem__(self, key):
            return directives.unchanged

    for cls in (Code, Text, Empty):
        cls.option_spec = AnyOptions()
    for name in _TEXT_DIRECTIVES:
        directives.register_directive(name, Text)
    for name in _EMPTY_DIRECTIVES:
        directives.register_directive(name, Empty)
    for name in _CODE_DIRECTIVES:
        directives.register_directive(name, Code)
    _rst_ready = True


_CODE_COMMENT = re.compile(r"^(\s*)#+[ \t]*")


def _code_lines(block: str) -> str:
    """A literal block with each line a block of its own (a command, a table
    row), except that a line indented far deeper than the one before continues
    it: the wrapped description of an option in a command's help text. A
    comment line is read as its words, without its "#" marks (a line opening
    with "#" is a heading to everything downstream), and a comment carried on
    over several lines is one block."""
    out: list[str] = []
    prev_indent, prev_comment = 0, False
    for line in block.splitlines():
        comment = _CODE_COMMENT.match(line)
        if comment:
            line = comment.group(1) + line[comment.end():]
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if out and (indent > prev_indent + 4 or comment and prev_comment):
            out[-1] += " " + line.strip()
            prev_comment = bool(comment)
            continue
        out.append(line.rstrip())
        prev_indent, prev_comment = indent, bool(comment)
    return "\n\n".join(out)


_LABEL_TITLE = re.compile(
    r"^\.\. _([^:\n]+):[ \t]*\n(?:[ \t]*\n|\.\. _[^:\n]+:[ \t]*\n)*"
    r"([^\s.][^\n]*)\n([=\-~^\"'`#*+_])\3{2,}[ \t]*$", re.M)
_DOC_TITLE = re.compile(r"^([^\s.][^\n]*)\n([=\-~^\"'`#*+_])\2{2,}[ \t]*$", re.M)
_titles_cache: dict[tuple, dict[str, str]] = {}


def rst_titles(folder: Path) -> dict[str, str]:
    """What Sphinx shows for :ref:`label` and :doc:`name` across a folder of .rst
    files: the title of the section a label stands before, the first title of a
    document. Cached while the files are unchanged."""
    files = sorted(folder.rglob("*.rst"))[:2000]
    key = (str(folder), tuple((str(f), f.stat().st_mtime_ns) for f in files))
    if key not in _titles_cache:
        titles: dict[str, str] = {}
        for f in files:
            try:
                src = f.read_text(encoding="utf-8-sig")
            except (OSError, UnicodeDecodeError):
                continue
            for label, title, _ in _LABEL_TITLE.findall(src):
                titles.setdefault(f"ref:{label.strip().lower()}", title.strip())
            first = _DOC_TITLE.search(src)
            if first:
                rel = f.relative_to(folder).with_suffix("").as_posix().lower()
                titles.setdefault(f"doc:{rel}", first.group(1).strip())
        _titles_cache.clear()
        _titles_cache[key] = titles
    return _titles_cache[key]


def _first_paragraph(term: Any) -> Any | None:
    """The paragraph that opens the definition of a definition list's term (or
    the body of a field list's field name), if the definition opens with one."""
    from docutils import nodes

    body = term.next_node(lambda n: isinstance(n, (nodes.definition, nodes.field_body)),
                          include_self=False, descend=False, siblings=True)
    if body is None or body.parent is not term.parent or not body.children:
        return None
    first = body.children[0]
    return first if isinstance(first, nodes.paragraph) else None


def _read_rst(source: str, name: str, fallback: str, titles: dict[str, str] | None = None) -> Page:
    """reStructuredText as readable text: one block a paragraph, headings kept."""
    from docutils import nodes
    from docutils.core import publish_doctree
    from docutils.utils import SystemMessage

    _register_sphinx_markup()
    try:
        tree = publish_doctree(source, settings_overrides={
            "report_level": 5, "halt_level": 5, "file_insertion_enabled": False,
            "raw_enabled": False, "warning_stream": False, "input_encoding": "unicode",
            "ragchat_titles": titles or {}})
    except (SystemMessage, ValueError, AttributeError, IndexError, TypeError) as e:
        raise BadFileError(f"{name}: not readable reStructuredText ({type(e).__name__})") from None
    blocks: list[str] = []
    title = ""
    joined: set[int] = set()  # ids of definitions' first paragraphs, read with their term
    # the fields under the title that docutils files as the document's own
    # (":Author: Stuart Bishop", ":Version: 1.2"): read as "Author: Stuart Bishop"
    bibliographic = (nodes.author, nodes.organization, nodes.address, nodes.contact,
                     nodes.version, nodes.revision, nodes.status, nodes.date, nodes.copyright)
    for node in tree.findall(lambda n: isinstance(n, (nodes.title, nodes.subtitle, nodes.paragraph,
                                                      nodes.literal_block, nodes.term,
                                                      nodes.field_name, nodes.rubric)
                                                  + bibliographic)):
        if id(node) in joined:
            continue
        parent = node.parent
        while parent is not None and not isinstance(parent, nodes.system_message):
            parent = parent.parent
        if parent is not None:  # a warning docutils attached; not the document's text
            continue
        # an image's alt text (a badge's substitution name, "pypi-status") is
        # not the document's text: only the node's own text is read
        text = node.astext().strip() if isinstance(node, nodes.literal_block) else "".join(
            t.astext() for t in node.findall(nodes.Text)).strip()
        if not text:
            continue
        if isinstance(node, (nodes.title, nodes.subtitle)):
            title = title or text
            blocks.append(f"# {' '.join(text.split())}")
        elif isinstance(node, nodes.literal_block):
            blocks.append(_code_lines(text))
        elif isinstance(node, bibliographic):
            blocks.append(f"{node.tagname.capitalize()}: {' '.join(text.split())}")
        elif isinstance(node, (nodes.term, nodes.field_name)) and (first := _first_paragraph(node)):
            # "``?_sort_desc=COLUMN``" above "Sorts the results by the specified column in
            # descending order.": one line, so that a sentence names what it describes
            joined.add(id(first))
            term = " ".join(text.split())
            blocks.append(f"{term}{'' if term.endswith(':') else ':'} {' '.join(first.astext().split())}")
        else:
            blocks.append(" ".join(text.split()))
    text = "\n\n".join(b.strip("\n") for b in blocks)
    return Page(text=text, title=title or fallback)
