"""Find and read source files into plain texts, one per document or PDF page.

Formats: .txt and .md are read as strict UTF-8 (no markup is removed, so
character offsets point into the file as it is); .pdf is read page by page
with pypdf; .html/.htm with BeautifulSoup (visible text); .docx with
docx2txt, the readers LlamaIndex's own file readers use. Every problem with one file
raises `BadFileError` with a one-line reason; the caller decides to go on.

Left out: OCR of scanned PDFs, spreadsheets, e-mail and archives.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from app.errors import BadFileError

TEXT_EXTS = {".txt", ".md", ".markdown"}
SUPPORTED = TEXT_EXTS | {".pdf", ".html", ".htm", ".docx"}


@dataclass(frozen=True)
class Page:
    """Text of a document (or of one PDF page) ready to split."""

    text: str
    title: str
    page: int | None = None


def source_name(path: Path) -> str:
    """How a file is named in the index: relative to the working directory when
    it lies under it, else absolute. Always with forward slashes."""
    p = path.resolve()
    try:
        return p.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return p.as_posix()


def find_files(paths: list[Path]) -> tuple[list[Path], list[Path], dict[str, str]]:
    """Expand files and folders (recursively) into supported files.

    Returns (files, folders, problems): the folders are remembered so that
    files gone from them can be removed from the index; `problems` maps a
    path given explicitly that cannot be used to its reason.
    """
    files: list[Path] = []
    folders: list[Path] = []
    problems: dict[str, str] = {}
    for path in paths:
        if path.is_dir():
            folders.append(path)
            for f in sorted(path.rglob("*")):
                rel = f.relative_to(path).parts
                if any(part.startswith(".") for part in rel):
                    continue  # hidden files and folders (.git, .DS_Store)
                if f.is_file() and f.suffix.lower() in SUPPORTED:
                    files.append(f)
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
    return files, folders, problems


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


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


def _read_pdf(path: Path, name: str) -> list[Page]:
    import logging

    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(str(path))
        meta_title = (reader.metadata.title if reader.metadata else None) or ""
        texts = [(page.extract_text() or "") for page in reader.pages]
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as e:
        raise BadFileError(f"{name}: not a readable PDF ({type(e).__name__}: {e})"[:300]) from None
    title = meta_title.strip() or _title_from_text(next((t for t in texts if t.strip()), ""), path.stem)
    return [Page(text=t, title=title, page=i + 1) for i, t in enumerate(texts)]


def _read_html(html: str, fallback: str) -> Page:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    title = soup.title.get_text(strip=True) if soup.title else ""
    if soup.title:
        soup.title.decompose()
    text = soup.get_text("\n")
    lines = [ln.strip() for ln in text.splitlines()]
    text = "\n".join(ln for ln in lines if ln)
    return Page(text=text, title=title or _title_from_text(text, fallback))


def _read_docx(path: Path, name: str) -> Page:
    import zipfile

    import docx2txt

    try:
        text = docx2txt.process(str(path)) or ""
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as e:
        raise BadFileError(f"{name}: not a readable .docx ({type(e).__name__})") from None
    return Page(text=text.strip(), title=_title_from_text(text, path.stem))
