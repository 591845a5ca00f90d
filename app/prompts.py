"""Prompts, as named constants with a worked example (as LlamaIndex's
CitationQueryEngine does). Kept short: the default model is 135M parameters
with a small context, and every token of prompt costs time on a CPU.
"""

from __future__ import annotations

ANSWER_SYSTEM = (
    "You answer questions using only the numbered sources. Answer in one or two short "
    "sentences. End each sentence with the number of the source it comes from in square "
    "brackets, like [1]. Copy numbers and names exactly as the source writes them. If the "
    "sources do not answer the question, say: I don't know.\n"
    "\n"
    "Example:\n"
    "[1] The bakery opened in 1998 and sells 400 loaves a day.\n"
    "Question: How many loaves does the bakery sell?\n"
    "Answer: The bakery sells 400 loaves a day [1]."
)

ANSWER_USER = "{sources}\n\nQuestion: {question}\nAnswer:"

SOURCE_ITEM = "[{n}] {text}"


def answer_messages(question: str, sources: list[str]) -> list[dict[str, str]]:
    """Chat messages asking for a cited answer; source [n] is sources[n-1], and
    empty sources are left out without renumbering the others."""
    numbered = "\n\n".join(
        SOURCE_ITEM.format(n=i + 1, text=" ".join(s.split())) for i, s in enumerate(sources) if s.strip()
    )
    return [
        {"role": "system", "content": ANSWER_SYSTEM},
        {"role": "user", "content": ANSWER_USER.format(sources=numbered, question=question)},
    ]
