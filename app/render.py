"""An Answer as plain text: what the CLI prints and what the OpenAI-compatible
API returns as the assistant's message. The answer's text keeps its [n] marks
and the sources follow it, one line each (file, page, character span, score,
the quoted passage). Left out: markup of any kind (the web chat renders its
own HTML source cards, in app/web.py)."""

from __future__ import annotations

from app.types import Answer

QUOTE_CHARS = 240  # longer quotes are cut, with an ellipsis


def sources_text(answer: Answer) -> str:
    lines = []
    for c in answer.citations:
        where = f", page {c.chunk.page}" if c.chunk.page else ""
        quote = " ".join(c.quote.split())
        if len(quote) > QUOTE_CHARS:
            quote = quote[:QUOTE_CHARS - 1] + "\u2026"
        lines.append(f"[{c.n}] {c.chunk.source}{where}, chars {c.chunk.start}-{c.chunk.end} "
                     f"(score {c.score:.2f}): \u201c{quote}\u201d")
    return "\n".join(lines)


def answer_text(answer: Answer) -> str:
    """The answer, a line saying why it is quoted when it is, and its sources
    (the closest ones, for a refusal)."""
    head = f"(Quoted from the sources: {answer.note}.)\n" if answer.mode == "extractive" else ""
    label = "Closest sources:" if answer.mode == "refused" else "Sources:"
    sources = sources_text(answer)
    return f"{head}{answer.text}\n\n{label}\n{sources}" if sources else f"{head}{answer.text}"
