"""The web chat's door: a bare health check, every other route behind the login,
and failed logins throttled.

Gradio's own login (`launch(auth=...)`) guards its page config, queue, API and
file routes, but not all of them (its heartbeat answered without a login) and
it never slows down password guessing. `Guard` is an ASGI middleware given to
Gradio's FastAPI app (`launch(app_kwargs={"middleware": ...})`); with a login
set it lets through, without a session, only what the login form itself needs
(the page shell, its assets, the config that says a login is required, the
login call) and `/health`; everything else needs Gradio's session cookie, but
the OpenAI-compatible API (`/v1`) checks its own bearer token when one is set
(RAGCHAT_API_KEY). A
client address that fails to log in `MAX_FAILURES` times within `WINDOW`
seconds gets 429 on the login route until the window has passed.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from http.cookies import SimpleCookie

MAX_FAILURES = 5
WINDOW = 60.0  # seconds
OPEN = ("/assets/", "/static/", "/favicon.ico", "/manifest.json", "/theme.css",
        "/gradio_api/login_check", "/gradio_api/theme.css", "/gradio_api/startup-events")
OPEN_EXACT = {"/", "/login", "/login/", "/config", "/config/"}
# Gradio answers /config without a session with a stub that only says a login is required
# (its own check): it is part of the login form. startup-events is how Gradio's launch
# checks, from the server itself, that the app is up.


class Guard:
    def __init__(self, app, login: bool = False, api_key: bool = False, clock=time.monotonic):
        self.app = app
        self.login = login
        self.api_key = api_key  # /v1 checks its own bearer token (app.openai_api)
        self.clock = clock
        self.failures: dict[str, deque] = defaultdict(deque)
        self.lock = threading.Lock()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        api = path == "/v1" or path.startswith("/v1/")  # the OpenAI-compatible routes
        if path == "/health":
            return await _reply(send, 200, {"status": "ok"})
        if not self.login or (self.api_key and api):
            return await self.app(scope, receive, send)
        client = (scope.get("client") or ("?", 0))[0]
        if path.rstrip("/") == "/login" and scope.get("method") == "POST":
            if self._throttled(client):
                return await _reply(send, 429, {"detail": "Too many failed logins: wait a minute."},
                                    {"retry-after": str(int(WINDOW))})
            return await self.app(scope, receive, self._watching(send, client))
        if path in OPEN_EXACT or path.startswith(OPEN) or self._signed_in(scope):
            return await self.app(scope, receive, send)
        if api:  # in the shape OpenAI clients read
            return await _reply(send, 401, {"error": {
                "message": "Not authenticated: log in to the web chat, or set RAGCHAT_API_KEY "
                           "on the server and send it as a bearer token",
                "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}})
        return await _reply(send, 401, {"detail": "Not authenticated"})

    def _signed_in(self, scope) -> bool:
        app = scope.get("app")
        tokens = getattr(app, "tokens", None) or {}
        header = dict(scope.get("headers") or []).get(b"cookie", b"").decode("latin-1")
        cookies = SimpleCookie()
        try:
            cookies.load(header)
        except Exception:  # a malformed cookie header is no session
            return False
        return any(name.startswith("access-token") and morsel.value in tokens
                   for name, morsel in cookies.items())

    def _throttled(self, client: str) -> bool:
        now = self.clock()
        with self.lock:
            seen = self.failures[client]
            while seen and now - seen[0] > WINDOW:
                seen.popleft()
            return len(seen) >= MAX_FAILURES

    def _watching(self, send, client: str):
        async def watch(message):
            if message["type"] == "http.response.start" and message["status"] in (400, 401):
                with self.lock:
                    self.failures[client].append(self.clock())
            await send(message)
        return watch


async def _reply(send, status: int, body: dict, headers: dict | None = None) -> None:
    data = json.dumps(body).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    head += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": data})
