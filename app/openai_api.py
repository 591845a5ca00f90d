"""ragchat's own OpenAI-compatible API: `/v1/chat/completions` and `/v1/models`.

A FastAPI app mounted at `/v1` inside the Gradio server (`app.web.serve`), so
Open WebUI, LibreChat, editor plugins and scripts written against the `openai`
package can talk to the documents on the web chat's port.

- The model name picks the collection: `ragchat` is the configured one,
  `ragchat:<collection>` any other; `/v1/models` lists them.
- The messages are the conversation: earlier user turns condense the last one
  exactly as in the web chat (`engine.retrieval_history`). System and assistant
  messages are not evidence and are not read.
- The reply's text is the checked answer with its [n] marks and then its
  sources (`app.render.answer_text`); a refusal is a normal completion that
  says it is one. The whole Answer rides along in an extra `ragchat` field,
  which OpenAI clients ignore.
- `stream: true` sends Server-Sent Events in OpenAI's chunk format, ending
  with `data: [DONE]`. The content is only ever checked text: a client cannot
  take back what it has shown, so the unchecked draft streams in the extra
  `ragchat.draft` field of empty-delta chunks (for a client that wants to show
  progress) and the checked answer follows as content.
- Errors come in OpenAI's shape (`{"error": {"message", "type", "param",
  "code"}}`) with its status codes: 400 bad request, 401 wrong key, 404
  unknown model, 413 body too large, 502/503 when the language model fails.
- With `api_key` set (RAGCHAT_API_KEY), every route needs
  `Authorization: Bearer <key>`. Without one and with the web login on, the
  routes need the login's session (see app.guard).

Left out: tools and function calls, images, `n` > 1, logprobs, and token
counts (`usage`), which the engine does not measure.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from app.engine import MAX_QUESTION_CHARS, Engine, retrieval_history
from app.errors import EndpointError, ModelMissingError, NoIndexError, RagchatError
from app.render import answer_text

PREFIX = "ragchat"
MAX_BODY = 1024 * 1024  # bytes: a conversation, not a document (upload those to the web chat)
MAX_MESSAGES = 200
ROLES = {"system", "developer", "user", "assistant", "tool"}


class ApiError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None,
                 code: str | None = None, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = (
            status, message, param, code, kind)

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param,
                          "code": self.code}}


def engine_error(e: RagchatError) -> ApiError:
    """A one-line engine error with the status code that says whose fault it is."""
    if isinstance(e, NoIndexError):
        return ApiError(404, str(e), "model", "model_not_found")
    if isinstance(e, EndpointError):
        return ApiError(502, str(e), None, "upstream_error", "api_error")
    if isinstance(e, ModelMissingError):
        return ApiError(503, str(e), None, "model_unavailable", "api_error")
    return ApiError(400, str(e), None, "invalid_value")  # a bad value (ConfigError) or question


def model_name(collection: str, default: str) -> str:
    return PREFIX if collection == default else f"{PREFIX}:{collection}"


def collection_of(model, default: str) -> str:
    """The collection a model name picks. Raises ApiError (404) for a name
    that is not ragchat's."""
    if not isinstance(model, str) or not model:
        raise ApiError(400, "'model' is required: use 'ragchat' or 'ragchat:<collection>'",
                       "model", "missing_required_parameter")
    if model == PREFIX:
        return default
    if model.startswith(PREFIX + ":") and len(model) > len(PREFIX) + 1:
        return model[len(PREFIX) + 1:]
    raise ApiError(404, f"The model '{model}' does not exist: use 'ragchat' or "
                        f"'ragchat:<collection>' (GET /v1/models lists them)",
                   "model", "model_not_found")


def _text_of(content, i: int) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" \
                    or not isinstance(part.get("text"), str):
                raise ApiError(400, f"messages[{i}].content: only text parts are supported",
                               f"messages[{i}].content", "invalid_value")
            parts.append(part["text"])
        return "\n".join(parts)
    raise ApiError(400, f"messages[{i}].content must be a string or a list of text parts",
                   f"messages[{i}].content", "invalid_type")


def user_turns(messages) -> list[str]:
    """The user's questions, oldest first; the last one is the question to
    answer. Raises ApiError for anything that is not a conversation."""
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty list of {role, content} objects",
                       "messages", "invalid_value")
    if len(messages) > MAX_MESSAGES:
        raise ApiError(400, f"'messages' holds {len(messages)} messages; at most {MAX_MESSAGES}",
                       "messages", "invalid_value")
    turns = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise ApiError(400, f"messages[{i}].role must be one of {', '.join(sorted(ROLES))}",
                           f"messages[{i}].role", "invalid_value")
        text = _text_of(m.get("content"), i)
        if m["role"] == "user":
            turns.append(text)
    if messages[-1].get("role") != "user":
        raise ApiError(400, "the last message must be the user's question",
                       "messages", "invalid_value")
    if not turns[-1].strip():
        raise ApiError(400, "the last user message is empty", f"messages[{len(messages) - 1}]"
                       ".content", "invalid_value")
    if len(turns[-1]) > MAX_QUESTION_CHARS:
        raise ApiError(400, f"the question is {len(turns[-1]):,} characters long; ask in at "
                            f"most {MAX_QUESTION_CHARS:,}",
                       f"messages[{len(messages) - 1}].content", "string_above_max_length")
    return turns


def overrides_of(body: dict) -> dict:
    """Settings a request may change, checked by the settings' own bounds."""
    out = {}
    n = body.get("n")
    if n not in (None, 1):
        raise ApiError(400, "'n' must be 1: ragchat gives one checked answer", "n", "invalid_value")
    if body.get("stream") not in (None, True, False):
        raise ApiError(400, "'stream' must be true or false", "stream", "invalid_type")
    t = body.get("temperature")
    if t is not None:
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t <= 2:
            raise ApiError(400, f"'temperature' must be a number from 0 to 2, not {t!r}",
                           "temperature", "invalid_value")
        out["temperature"] = float(t)
    for name in ("max_completion_tokens", "max_tokens"):
        v = body.get(name)
        if v is not None:
            if isinstance(v, bool) or not isinstance(v, int) or not 16 <= v <= 4096:
                raise ApiError(400, f"'{name}' must be a whole number from 16 to 4096, not {v!r}",
                               name, "invalid_value")
            out["max_tokens"] = v
            break
    return out


class Api:
    """The routes' logic, apart from FastAPI so that it reads as plain code."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.default = engine.settings.collection
        self.key = engine.settings.api_key.get_secret_value()

    def authorised(self, header: str | None) -> bool:
        if not self.key:
            return True
        scheme, _, token = (header or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(),
                                                                   self.key.encode())

    def collections(self) -> list[str]:
        """Names only: `engine.stats()` would read every chunk's metadata."""
        try:
            return sorted(getattr(c, "name", c) for c in self.engine.store.list_collections())
        except RagchatError as e:
            raise engine_error(e) from None

    def models(self) -> dict:
        names = [self.default] + [n for n in self.collections() if n != self.default]
        return {"object": "list", "data": [self.model(model_name(n, self.default)) for n in names]}

    @staticmethod
    def model(name: str) -> dict:
        return {"id": name, "object": "model", "created": 0, "owned_by": "ragchat"}

    def prepare(self, body: dict) -> tuple[Engine, str, list[str], bool, str]:
        """The engine variant, the question, the history, stream or not, the model name."""
        if not isinstance(body, dict):
            raise ApiError(400, "the request body must be a JSON object", None, "invalid_json")
        collection = collection_of(body.get("model"), self.default)
        turns = user_turns(body.get("messages"))
        overrides = overrides_of(body)
        if collection != self.default and collection not in self.collections():
            raise ApiError(404, f"The model '{body['model']}' does not exist: no collection "
                                f"'{collection}' in the index (GET /v1/models lists them)",
                           "model", "model_not_found")
        try:
            engine = self.engine.variant(collection=collection, **overrides)
        except RagchatError as e:
            raise ApiError(400, str(e), "model", "invalid_value") from None
        history = retrieval_history(turns[:-1])
        return engine, turns[-1], history, bool(body.get("stream")), body["model"]

    @staticmethod
    def completion(answer, model: str) -> dict:
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
            "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": answer_text(answer),
                                     "refusal": None}}],
            "ragchat": answer.to_dict(),
        }

    async def stream(self, engine: Engine, question: str, history: list[str],
                     model: str) -> AsyncIterator[str]:
        """Server-Sent Events: the role, the draft (in `ragchat.draft`), the checked
        answer as content, the whole Answer with the finish reason, [DONE]."""
        ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

        def chunk(delta: dict, finish: str | None = None, extra: dict | None = None) -> str:
            body = {"id": ident, "object": "chat.completion.chunk", "created": created,
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish,
                                 "logprobs": None}]}
            if extra:
                body["ragchat"] = extra
            return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()

        def put(kind: str, value) -> None:
            loop.call_soon_threadsafe(events.put_nowait, (kind, value))

        def work() -> None:
            try:
                put("answer", engine.ask(question, history=history,
                                         on_token=lambda piece: put("draft", piece)))
            except Exception as e:  # noqa: BLE001 - sent to the client as an error event
                put("error", e)

        yield chunk({"role": "assistant", "content": ""})
        job = loop.run_in_executor(None, work)
        try:
            while True:
                kind, value = await events.get()
                if kind == "draft":
                    yield chunk({}, extra={"draft": value})
                    continue
                if kind == "error":
                    err = engine_error(value) if isinstance(value, RagchatError) else ApiError(
                        500, "the answer failed; see the server's log", None, "internal_error",
                        "server_error")
                    yield f"data: {json.dumps(err.body())}\n\n"
                    if not isinstance(value, RagchatError):
                        raise value
                    break
                text = answer_text(value)
                for piece in _pieces(text):
                    yield chunk({"content": piece})
                yield chunk({}, "stop", extra=value.to_dict())
                break
            yield "data: [DONE]\n\n"
        finally:
            await job


def _pieces(text: str, size: int = 4) -> list[str]:
    """Checked text in runs of a few words, as a stream's deltas."""
    words = text.split(" ")
    return [" ".join(words[i:i + size]) + (" " if i + size < len(words) else "")
            for i in range(0, len(words), size)]


def build_api(engine: Engine):
    """The FastAPI app to mount at /v1."""
    api = Api(engine)
    app = FastAPI(title="ragchat OpenAI-compatible API", docs_url=None, redoc_url=None,
                  openapi_url=None)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, e: ApiError):
        headers = {"www-authenticate": "Bearer"} if e.status == 401 else None
        return JSONResponse(e.body(), status_code=e.status, headers=headers)

    @app.middleware("http")
    async def _key(request: Request, call_next):
        if not api.authorised(request.headers.get("authorization")):
            return await _api_error(request, ApiError(
                401, "Incorrect API key: send 'Authorization: Bearer <RAGCHAT_API_KEY>'",
                None, "invalid_api_key"))
        return await call_next(request)

    @app.get("/models")
    async def models():
        return await run_in_threadpool(api.models)

    @app.get("/models/{name:path}")
    async def model(name: str):
        if name not in {m["id"] for m in (await run_in_threadpool(api.models))["data"]}:
            raise ApiError(404, f"The model '{name}' does not exist", "model", "model_not_found")
        return api.model(name)

    @app.post("/chat/completions")
    async def chat_completions(request: Request):
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY:
            raise ApiError(413, f"the request body is {int(length):,} bytes; at most {MAX_BODY:,}",
                           None, "request_too_large")
        raw = b""
        async for part in request.stream():
            raw += part
            if len(raw) > MAX_BODY:
                raise ApiError(413, f"the request body is over {MAX_BODY:,} bytes", None,
                               "request_too_large")
        try:
            body = json.loads(raw or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ApiError(400, f"the request body is not valid JSON ({e})", None,
                           "invalid_json") from None
        engine_, question, history, streaming, model = await run_in_threadpool(api.prepare, body)
        if streaming:
            return StreamingResponse(api.stream(engine_, question, history, model),
                                     media_type="text/event-stream",
                                     headers={"cache-control": "no-cache"})
        try:
            answer = await run_in_threadpool(engine_.ask, question, history)
        except RagchatError as e:
            raise engine_error(e) from None
        return JSONResponse(api.completion(answer, model))

    @app.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    async def unknown(rest: str):
        raise ApiError(404, f"Unknown route /v1/{rest}: ragchat serves /v1/chat/completions "
                            f"and /v1/models", None, "unknown_url")

    return app
