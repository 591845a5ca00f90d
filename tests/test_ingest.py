"""Ingest into a real embedded Chroma in a temporary folder, with the real embedder."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from app.engine import Engine
from app.errors import ConfigError, EmbedderMismatchError
from app.settings import Settings, load_settings
from app.store import Store
from conftest import SEED, SEED_SOURCE, run_cli


def _engine(**kw) -> Engine:
    return Engine(Settings(index_dir=Path("index"), **kw))


def _stored(engine: Engine) -> dict[str, tuple[str, dict]]:
    col = engine.store.open("sentence-transformers/all-MiniLM-L6-v2")
    got = col.get(include=["documents", "metadatas"])
    return {i: (d, m) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"])}


def test_seed_chunks_fit_the_embedder_and_point_into_the_file(tmp_path):
    shutil.copytree(SEED.parent, "seeds")
    engine = _engine()
    report = engine.ingest([Path("seeds")])
    assert report.ok and report.added == [SEED_SOURCE] and report.chunks >= 2
    text = SEED.read_text()
    from tokenizers import Tokenizer

    from app.embedding import model_dir

    tok = Tokenizer.from_file(str(model_dir(engine.settings) / "tokenizer.json"))
    tok.no_truncation()
    for doc, meta in _stored(engine).values():
        assert text[meta["start"]:meta["end"]] == doc
        assert meta["source"] == SEED_SOURCE and meta["title"] == "Amazon Deepens OpenAI Partnership"
        assert len(tok.encode(doc, add_special_tokens=False).ids) <= 200
        assert len(meta["content_hash"]) == 16
    # The whole article is covered: every sentence lands in some chunk.
    docs = " ".join(d for d, _ in _stored(engine).values())
    assert "AI Subcabinet" in docs and "Amazon Deepens OpenAI Partnership" in docs


def test_ingest_is_incremental_and_tracks_changes_and_deletions():
    docs = Path("docs")
    docs.mkdir()
    (docs / "a.md").write_text("# Alpha\n\nThe alpha project has 12 engineers.\n")
    (docs / "b.txt").write_text("Beta launched in 2021 in Lisbon.\n")
    engine = _engine()
    first = engine.ingest([docs])
    assert sorted(first.added) == ["docs/a.md", "docs/b.txt"]
    before = _stored(engine)

    again = engine.ingest([docs])
    assert again.added == again.updated == again.removed == [] and again.chunks == 0
    assert sorted(again.unchanged) == ["docs/a.md", "docs/b.txt"]
    assert _stored(engine).keys() == before.keys()

    (docs / "a.md").write_text("# Alpha\n\nThe alpha project now has 40 engineers.\n")
    (docs / "b.txt").unlink()
    third = engine.ingest([docs])
    assert third.updated == ["docs/a.md"] and third.removed == ["docs/b.txt"]
    texts = [d for d, _ in _stored(engine).values()]
    assert any("40 engineers" in t for t in texts)
    assert not any("12 engineers" in t or "Lisbon" in t for t in texts)
    # The keyword index follows: the removed file's words are gone from it.
    hits = engine.retrieve("Lisbon 2021", top_k=3)
    assert all("Lisbon" not in h.chunk.text for h in hits)


def test_progress_counts_files_and_chunks_and_prints_lines_without_a_terminal():
    import io

    from app.cli import IngestProgress

    docs = Path("docs")
    docs.mkdir()
    for i in range(3):
        (docs / f"{i}.md").write_text(f"# Part {i}\n\nPart {i} of the plan costs {i + 7} euros.\n")
    calls = []
    report = _engine().ingest([docs], progress=lambda *a: calls.append(a))
    assert calls[0] == (0, 3, "docs/0.md", 0)
    assert calls[-1] == (3, 3, "", report.chunks) and report.chunks >= 3
    assert [c[3] for c in calls] == sorted(c[3] for c in calls)  # chunks only grow

    now = [0.0]
    log = io.StringIO()  # not a terminal: lines, no bar
    progress = IngestProgress(log, every=10, clock=lambda: now[0])
    for t, args in [(0, (0, 2000, "a.md", 0)), (4, (100, 2000, "b.md", 40)),
                    (10, (500, 2000, "c.md", 150)), (15, (600, 2000, "d.md", 180)),
                    (20, (1000, 2000, "e.md", 300))]:
        now[0] = t
        progress(*args)
    progress.close()
    assert log.getvalue().splitlines() == [
        "ingest: 500/2000 files, 150 chunks, 15.0 chunks/s, 10 s, 30 s left (at c.md)",
        "ingest: 1000/2000 files, 300 chunks, 15.0 chunks/s, 20 s, 20 s left (at e.md)"]
    log = io.StringIO()  # files read, none of their chunks written yet: no guess
    progress = IngestProgress(log, every=10, clock=lambda: now[0])
    for t, args in [(0, (0, 2000, "a.md", 0)), (10, (300, 2000, "b.md", 0))]:
        now[0] = t
        progress(*args)
    assert log.getvalue() == "ingest: 300/2000 files, 0 chunks, 0.0 chunks/s, 10 s, time left unknown (at b.md)\n"


def test_whole_collection_reads_go_page_by_page(monkeypatch):
    """Embedded Chroma fails on a read of ~32k records at once (a 100k-chunk
    collection did); every whole-collection read goes in pages."""
    from app import store as store_module

    monkeypatch.setattr(store_module, "PAGE", 2)
    docs = Path("docs")
    docs.mkdir()
    names = ["alpha", "bravo", "charlie", "delta", "echo"]
    for i, name in enumerate(names):
        (docs / f"{i}.md").write_text(f"# Part {i}\n\nThe {name} part costs {i + 7} euros.\n")
    engine = _engine()
    report = engine.ingest([docs])
    assert len(report.added) == 5 and report.total_chunks == 5
    col = engine.store.open("sentence-transformers/all-MiniLM-L6-v2")
    assert sorted(engine.store.manifest(col)) == [f"docs/{i}.md" for i in range(5)]
    assert store_module.get_all(col, ["documents"])["ids"] == col.get()["ids"]
    assert engine.ingest([docs]).unchanged == [f"docs/{i}.md" for i in range(5)]
    for i, name in enumerate(names):  # the keyword index holds every page of them
        assert f"{i + 7} euros" in engine.retrieve(name, top_k=1)[0].chunk.text


def test_bad_files_are_reported_and_good_ones_land():
    d = Path("mixed")
    d.mkdir()
    (d / "good.txt").write_text("The harbour bridge opened in 1932.\n")
    (d / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00IHDR" + bytes(range(256)))
    (d / "latin1.md").write_bytes("Caf\xe9 cr\xe8me".encode("latin-1"))
    (d / "empty.txt").write_text("   \n")
    (d / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf")
    (d / "broken.docx").write_bytes(b"PK\x03\x04 not a zip")
    report = _engine().ingest([d])
    assert report.added == ["mixed/good.txt"]
    reasons = report.failed
    assert set(reasons) == {"mixed/binary.txt", "mixed/latin1.md", "mixed/empty.txt",
                            "mixed/broken.pdf", "mixed/broken.docx"}
    assert "binary data" in reasons["mixed/binary.txt"]
    assert "not valid UTF-8" in reasons["mixed/latin1.md"] and "0xe9" in reasons["mixed/latin1.md"]
    assert "empty" in reasons["mixed/empty.txt"]
    assert "PDF" in reasons["mixed/broken.pdf"]
    for source, reason in reasons.items():
        assert reason.startswith(source) and "\n" not in reason


def test_a_file_that_turns_bad_keeps_its_old_chunks():
    Path("note.txt").write_text("The vault code is kept by Ada Lovelace.\n")
    engine = _engine()
    engine.ingest([Path("note.txt")])
    Path("note.txt").write_bytes(b"\xff\xfe broken now")
    report = engine.ingest([Path("note.txt")])
    assert "note.txt" in report.failed
    assert any("Ada Lovelace" in d for d, _ in _stored(engine).values())


def test_cli_ingest_reports_failures_with_nonzero_status(tmp_path):
    (tmp_path / "ok.txt").write_text("Penguins live in the southern hemisphere.\n")
    (tmp_path / "bad.txt").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "notes.xyz").write_text("unsupported")
    r = run_cli("--index-dir", "idx", "ingest", "ok.txt", "bad.txt", "notes.xyz", cwd_dir=tmp_path)
    assert r.returncode == 1, r.stderr
    assert "Error: bad.txt: binary data in a text file" in r.stderr
    assert "notes.xyz" in r.stderr and "unsupported file type" in r.stderr
    assert "1 added" in r.stdout and "2 failed" in r.stdout
    assert "Traceback" not in r.stderr


def test_pdf_html_and_docx_are_read_with_pages_titles_and_no_markup():
    import docx
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    with PdfPages("report.pdf") as pdf:
        for text in ("Page one says the comet returns in 2061.",
                     "Page two says the observatory sits at 2400 metres."):
            fig = Figure()
            fig.text(0.1, 0.5, text)
            pdf.savefig(fig)
    Path("page.html").write_text(
        "<html><head><title>Garden notes</title><style>p{color:red}</style></head><body>"
        "<h1>Roses</h1><p>Roses need six hours of sun.</p><script>alert('x')</script></body></html>")
    d = docx.Document()
    d.add_paragraph("The ferry to Skye leaves at 07:30 every weekday.")
    d.save("timetable.docx")

    engine = _engine()
    report = engine.ingest([Path("report.pdf"), Path("page.html"), Path("timetable.docx")])
    assert report.ok, report.failed
    stored = list(_stored(engine).values())
    pages = {m.get("page"): doc for doc, m in stored if m["source"] == "report.pdf"}
    assert "2061" in pages[1] and "2400 metres" in pages[2]
    html = next((doc, m) for doc, m in stored if m["source"] == "page.html")
    assert html[1]["title"] == "Garden notes" and "six hours of sun" in html[0]
    assert "alert" not in html[0] and "color:red" not in html[0]
    assert any("ferry to Skye" in doc for doc, m in stored if m["source"] == "timetable.docx")
    hit = engine.retrieve("When does the comet return?", top_k=1)[0]
    assert hit.chunk.page == 1 and hit.chunk.source == "report.pdf"


def test_html_is_read_with_its_headings_paragraphs_and_code_lines():
    from app import text
    from app.loading import read_file

    Path("guide.html").write_text(
        "<html><head><title>Field guide</title></head><body><h1>Comets</h1>"
        "<p>A comet's tail points <em>away</em> from the <a href='/sun'>Sun</a>, "
        "as Biermann showed<sup class='reference'><a href='#n1'>[3]</a></sup>.</p>"
        "<h2>Watching them</h2><p>Use binoculars:</p>"
        "<pre><code>scope --zoom 10\nscope --track halley\n</code></pre>"
        "<ul><li>Go somewhere dark.</li><li>Wait for your eyes to adjust.</li></ul></body></html>")
    page = read_file(Path("guide.html"))[0]
    assert page.title == "Field guide"
    sentences = text.split_sentences(page.text)
    assert sentences[:2] == ["# Comets", "A comet's tail points away from the Sun, as Biermann "
                                         "showed\u207d\u00b3\u207e."]  # one sentence; no "[3]" citation
    assert "## Watching them" in sentences  # a heading of its own: the chunks under it know it
    assert "scope --zoom 10" in sentences and "scope --track halley" in sentences
    assert "Go somewhere dark." in page.text and "**" not in page.text and "](" not in page.text
    # markup nested deeper than the converter recurses is still read, as its text
    Path("deep.html").write_text("<html><body>" + "<div>" * 3000 + "Deep text." + "</div>" * 3000)
    assert read_file(Path("deep.html"))[0].text == "Deep text."


def test_markdown_is_read_as_text_without_its_markup():
    from app import text
    from app.loading import read_file

    Path("README.md").write_text(
        "---\ntitle: ignored\ntags: [a, b]\n---\n"
        '<p align="center"><a href="https://x.org"><img src="logo.svg" alt="logo"></a></p>\n\n'
        "[![PyPI](https://img.shields.io/pypi/v/comets.svg)](https://pypi.org/project/comets/)\n\n"
        "# Comets\n\n"
        "A comet's tail points **away** from the [Sun](https://en.wikipedia.org/wiki/Sun).\n\n"
        "> Biermann explained it\n> in 1951.\n\n"
        "## Watching them\n\nUse binoculars:\n\n```sh\n# zoom in first\nscope --zoom 10\nscope --track halley\n```\n\n"
        "| Comet | Period |\n| --- | --- |\n| Halley | 76 years |\n\n<!-- a comment -->\n")
    page = read_file(Path("README.md"))[0]
    assert page.title == "Comets"  # the first level-1 heading, not a badge or the front matter
    sentences = text.split_sentences(page.text)
    assert sentences[:2] == ["# Comets", "A comet's tail points away from the Sun."]
    assert "Biermann explained it in 1951." in " ".join(page.text.split())  # no "> " marks
    assert "## Watching them" in sentences  # a heading of its own: the chunks under it know it
    assert "scope --zoom 10" in sentences and "scope --track halley" in sentences
    assert "zoom in first" in sentences  # a code comment is no heading
    assert "Halley" in page.text and "76 years" in page.text
    for markup in ("**", "](", "![", "<p", "<!--", "img.shields", "title: ignored", "```", "> "):
        assert markup not in page.text, markup
    # a file with no level-1 heading is titled by its name
    Path("notes.markdown").write_text("Some *plain* notes.\n")
    page = read_file(Path("notes.markdown"))[0]
    assert (page.title, page.text) == ("notes", "Some plain notes.")


def test_querying_with_another_embedder_is_a_clear_error():
    settings = Settings(index_dir=Path("index"))
    Store(settings).open("some-other/embedder", dimension=768, create=True)
    with pytest.raises(EmbedderMismatchError, match="embedded with some-other/embedder"):
        Engine(settings).retrieve("anything")


def test_chunk_settings_are_validated():
    with pytest.raises(ConfigError, match="chunk_size"):
        load_settings(chunk_size=1024)
    with pytest.raises(ConfigError, match="chunk_overlap"):
        load_settings(chunk_size=100, chunk_overlap=100)


RST = """\
Settings
========

:Author: Jane Doe <jane@example.org>
:Version: 2.1

.. _setting_page_size:

page_size
---------

The default page size is 50 rows. See :ref:`the JSON API <json_api>` and :class:`Pager`.

``?_size=N``
    Sets a custom page size for one request.

    It cannot exceed ``max_rows``.

.. code-block:: bash

    # serve with a larger page, for
    # the whole session
    ragctl serve --setting page_size 80

|build| The ``max_rows`` setting:
    Caps every page.

.. |build| image:: https://ci.example.org/badge.svg

.. versionadded:: 2.1
   The ``page_size`` setting.

.. automodule:: ragctl.settings
   :members:
"""


def test_restructuredtext_is_read_as_text_with_headings_code_and_roles_reduced():
    d = Path("docs")
    d.mkdir()
    (d / "settings.rst").write_text(RST)
    (d / "logo.png").write_bytes(b"\x89PNG\r\n")
    (d / "notes.xlsx").write_bytes(b"PK")
    report = _engine().ingest([d])
    assert report.added == ["docs/settings.rst"] and not report.failed
    # a folder ingest names what it skipped and why, in its summary line
    assert report.skipped == {"docs/logo.png": "unsupported type '.png'",
                              "docs/notes.xlsx": "unsupported type '.xlsx'"}
    assert "2 skipped (unsupported type '.png': logo.png; unsupported type '.xlsx': notes.xlsx)" \
        in report.summary()
    text = " ".join(doc for doc, _ in _stored(_engine()).values())
    assert "# Settings" in text and "# page_size" in text
    assert "The default page size is 50 rows. See the JSON API and Pager." in text
    assert "ragctl serve --setting page_size 80" in text
    # a code comment is read as its words, in one block, and is no heading
    assert "\nserve with a larger page, for the whole session\n" in text and "# serve" not in text
    # a badge's name is no text; a term ending in a colon gets no second one
    assert "The max_rows setting: Caps every page." in text and "build" not in text
    assert "The page_size setting." in text
    # the fields docutils files as the document's own, under its title, are read too
    assert "Author: Jane Doe <jane@example.org>" in text and "Version: 2.1" in text
    # a definition list's term is read with what it defines: the sentence names it
    assert "?_size=N: Sets a custom page size for one request." in text
    assert "It cannot exceed max_rows." in text and text.count("Sets a custom page size") == 1
    for markup in (":ref:", ":class:", "``", ".. ", "===", "automodule", ":members:"):
        assert markup not in text, markup


def test_broken_restructuredtext_still_reads_or_fails_on_one_line():
    d = Path("docs")
    d.mkdir()
    (d / "odd.rst").write_text("Title\n=====\n\n.. unknown-directive:: x\n\n   body\n\n:unknownrole:`y` text\n")
    report = _engine().ingest([d])
    assert report.added == ["docs/odd.rst"] or list(report.failed.values())[0].count("\n") == 0


def test_chunks_are_cut_at_ragchats_own_sentence_ends_without_nltk(tmp_path):
    import re
    import subprocess
    import sys

    from app import text

    prose = "Dr. Smith wrote it, e.g. for JSON. The API answered 42 times!  Then\nit stopped"
    pieces = text.sentence_spans(prose)
    assert "".join(pieces) == prose  # offsets into the source stay exact
    assert pieces == ["Dr. Smith wrote it, e.g. for JSON. ", "The API answered 42 times!  ",
                      "Then\nit stopped"]
    # an ingest never imports NLTK (LlamaIndex's default sentence tokenizer: 2.3 s)
    (tmp_path / "a.md").write_text("# A\n\n" + " ".join(["One sentence here."] * 400))
    probe = ("import sys; from pathlib import Path; from app.engine import Engine; "
             "from app.settings import Settings; "
             "r = Engine(Settings(index_dir=Path('index'))).ingest([Path('a.md')]); "
             "assert r.ok and r.total_chunks > 1, r; print('nltk' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_pdf_text_is_nfkc_normalised_and_line_break_hyphens_joined():
    from app.loading import clean_pdf_text

    assert clean_pdf_text("the \ufb01rst re-\nsults of the e\ufb00ort") == "the first results of the effort"
    assert clean_pdf_text("Proof-of-\nStake and 2019-\n2020") == "Proof-of-\nStake and 2019-\n2020"
    # PDFium's own line ends and the soft hyphen it marks inside a word it joined
    assert clean_pdf_text("number of us\ufffeers\r\nand se-\r\ncurity") == "number of users\nand security"
    # a compound broken at one of its hyphens keeps it; a line's trailing blanks go
    assert clean_pdf_text("a peer-to-\npeer network  \nof nodes") == "a peer-to-peer network\nof nodes"


def test_pdf_page_numbers_and_running_heads_go_a_cut_sentence_is_whole_and_marks_are_superscripts():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    bodies = [[f"Chapter {n} is about comet number {n}.", f"It was found by observer {n}."]
              for n in range(1, 10)]
    bodies[1][1] = "Observers noted that the tail of Halley's comet stretched about ten mil-"
    bodies[2][0] = "lion kilometres behind the nucleus at its longest."
    bodies[3][1] = "Few are as faint [12] as this, says a survey [3, 4]."  # the paper's own marks
    with PdfPages("comets.pdf") as pdf:
        for n, lines in enumerate(bodies, 1):
            fig = Figure()
            if n > 1:  # running heads on alternate pages, as journals print them
                fig.text(0.1, 0.95, "Annals of Comet Science, vol. 12" if n % 2 else "A. Author et al.")
            for i, line in enumerate(lines):
                fig.text(0.1, 0.7 - 0.1 * i, line)
            fig.text(0.5, 0.05, str(n))
            pdf.savefig(fig)

    engine = _engine()
    assert engine.ingest([Path("comets.pdf")]).ok
    stored = [(doc, m) for doc, m in _stored(engine).values() if m["source"] == "comets.pdf"]
    texts = " ".join(doc for doc, _ in stored)
    assert "Annals of Comet Science" not in texts and "Author et al" not in texts
    assert not re.search(r"(?m)^\s*\d\s*$", texts)  # no page number left on a line of its own
    whole = next(m for doc, m in stored if "stretched about ten million kilometres behind" in doc)
    assert whole["page"] == 2  # the page where the sentence starts
    assert "Few are as faint\u207d\u00b9\u00b2\u207e as this, says a survey\u207d\u00b3,\u2074\u207e." in texts  # no "[12]"
    hit = engine.retrieve("How long was the tail of Halley's comet?", top_k=1)[0]
    assert "ten million kilometres" in hit.chunk.text


def test_a_changed_reader_reads_unchanged_files_again(monkeypatch):
    from app import loading

    Path("docs").mkdir()
    Path("docs/a.txt").write_text("The lighthouse was built in 1874.\n")
    assert _engine().ingest([Path("docs")]).added == ["docs/a.txt"]
    assert _engine().ingest([Path("docs")]).unchanged == ["docs/a.txt"]
    monkeypatch.setattr(loading, "READER_VERSION", loading.READER_VERSION + "-next")
    assert _engine().ingest([Path("docs")]).updated == ["docs/a.txt"]


def test_a_sphinx_reference_reads_as_the_title_of_the_section_it_names():
    d = Path("docs")
    d.mkdir()
    (d / "settings.rst").write_text(
        "Settings\n========\n\n.. _setting_csv_stream:\n\nallow_csv_stream\n----------------\n\n"
        "Streams every row.\n")
    (d / "export.rst").write_text(
        "Export\n======\n\nDisable streaming with :ref:`setting_csv_stream`, see :doc:`settings` "
        "and :ref:`the guide <nowhere>` or :ref:`unknown_label`.\n")
    assert _engine().ingest([d]).ok
    text = " ".join(doc for doc, _ in _stored(_engine()).values())
    assert ("Disable streaming with allow_csv_stream, see Settings and the guide or unknown_label."
            in text)


def test_links_out_of_a_folder_are_not_followed_and_links_inside_count_once(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("The vault code is 4321.\n")
    docs = Path("docs")
    docs.mkdir()
    (docs / "notes.txt").write_text("The harbour bridge opened in 1932.\n")
    (docs / "secret.txt").symlink_to(outside / "secret.txt")
    (docs / "again.txt").symlink_to(Path("notes.txt"))
    report = _engine().ingest([docs])
    assert report.added == ["docs/again.txt"] or report.added == ["docs/notes.txt"]
    assert "not followed" in report.skipped["docs/secret.txt"]
    assert "secret.txt" in report.summary()
    assert not any("4321" in d for d, _ in _stored(_engine()).values())


def test_source_names_do_not_depend_on_the_working_directory(tmp_path):
    docs = Path("docs")
    docs.mkdir()
    (docs / "notes.txt").write_text("The harbour bridge opened in 1932.\n")
    Path("sub").mkdir()
    first = run_cli("--index-dir", "idx", "ingest", "docs", cwd_dir=tmp_path)
    second = run_cli("--index-dir", "../idx", "ingest", "../docs", cwd_dir=tmp_path / "sub")
    assert first.returncode == second.returncode == 0, second.stderr
    assert "1 unchanged" in second.stdout and "1 in collection" in second.stdout
    assert {m["source"] for _, m in _stored(Engine(Settings(index_dir=Path("idx")))).values()} == {
        "docs/notes.txt"}


def test_a_running_engine_sees_another_processs_ingest_and_keeps_it_when_it_ingests(tmp_path):
    """`ragchat serve` beside `ragchat ingest`: embedded Chroma's in-memory vector
    index never sees another process's writes, and a client made again got the
    same one; writing through it could overwrite theirs."""
    shutil.copytree(SEED.parent, "seeds")
    serving = _engine()
    assert serving.ingest([Path("seeds")]).ok
    assert serving.ask("How much is Amazon investing in OpenAI?").mode != "refused"
    Path("falcon.md").write_text("# Falcon\n\nThe Falcon project budget is 7 million euros, "
                                 "approved by the council in March.\n")
    other = run_cli("ingest", "falcon.md", cwd_dir=tmp_path)  # another process
    assert other.returncode == 0, other.stderr
    # the serving engine answers from it: keyword and vector index both
    a = serving.ask("What is the Falcon project budget?")
    assert "7 million euros" in a.text and a.citations[0].chunk.source == "falcon.md"
    dense = serving.retriever.collection.query(
        query_embeddings=[serving.embedder.embed(["Falcon project budget"])[0].tolist()],
        n_results=1, include=["metadatas"])
    assert dense["metadatas"][0][0]["source"] == "falcon.md"
    # its own ingest after theirs keeps theirs, as a new process reads the index
    Path("heron.md").write_text("# Heron\n\nThe Heron bridge opened in 1932 after six years.\n")
    assert serving.ingest([Path("heron.md")]).ok
    probe = ("import json; from pathlib import Path; from app.engine import Engine; "
             "from app.settings import Settings; e = Engine(Settings(index_dir=Path('index'))); "
             "col = e.retriever.collection; out = {}\n"
             "for q in ('Falcon project budget', 'Heron bridge opened'):\n"
             "    r = col.query(query_embeddings=[e.embedder.embed([q])[0].tolist()], n_results=1)\n"
             "    out[q] = r['metadatas'][0][0]['source']\n"
             "print(json.dumps([col.count(), out]))")
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True,
                         text=True, check=True).stdout.strip().splitlines()[-1]
    count, found = json.loads(out)
    assert found == {"Falcon project budget": "falcon.md", "Heron bridge opened": "heron.md"}
    assert count == len(_stored(serving))


def test_an_engine_that_only_listed_the_index_sees_another_processs_ingest(tmp_path):
    """`ragchat serve` whose page load listed the collections (opening the Chroma
    client) before any question, then `ragchat ingest` in another process: the
    first question must be answered from the index as it is now, not from the
    vector index the client loaded at the page load."""
    shutil.copytree(SEED.parent, "seeds")
    assert _engine().ingest([Path("seeds")]).ok
    serving = _engine()
    assert [r.name for r in serving.stats()] == [serving.settings.collection]  # the page load
    Path("falcon.md").write_text("# Falcon\n\nThe Falcon project budget is 7 million euros, "
                                 "approved by the council in March.\n")
    other = run_cli("ingest", "falcon.md", cwd_dir=tmp_path)  # another process
    assert other.returncode == 0, other.stderr
    a = serving.ask("What is the Falcon project budget?")
    assert "7 million euros" in a.text, a.text
    assert a.citations[0].chunk.source == "falcon.md"
