"""Fakes that are real implementations of ragchat's protocols (as simonw/llm's
conftest has EmbedDemo): a deterministic embedder and a scripted language
model. They tell inputs apart, so tests of the answer logic run in
milliseconds without MiniLM or llama.cpp, and still mean something."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

import numpy as np

from app import text


class HashEmbedder:
    """Bag of word stems hashed into 256 dimensions, unit length: texts that
    share words are close, texts that share none are orthogonal."""

    dim = 256

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"\w+", t.lower()):
                h = int(hashlib.md5(text.stem(w).encode()).hexdigest()[:8], 16)
                out[i, h % self.dim] += 1.0
            norm = np.linalg.norm(out[i])
            if norm:
                out[i] /= norm
        return out


class ScriptedLLM:
    """Replies with a fixed draft, word by word, and records every prompt."""

    name = "scripted"

    def __init__(self, draft: str):
        self.draft = draft
        self.calls: list[list[dict]] = []

    def stream(self, messages, max_tokens, temperature) -> Iterator[str]:
        self.calls.append(messages)
        for word in self.draft.split(" "):
            yield word + " "
