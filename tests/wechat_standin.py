"""A real HTTP server on 127.0.0.1 answering like WeChat's API, for testing the gateway end to end.

It serves `cgi-bin/stable_token`, `cgi-bin/token`, `cgi-bin/message/custom/send`,
`cgi-bin/message/subscribe/send`, `sns/jscode2session`, `sns/oauth2/access_token` and the web OAuth
consent page `connect/oauth2/authorize` (which, like a worker tapping 允许, sends the browser back with
a code), counts every request, keeps the messages it accepted, and can be told to misbehave for the next send requests:
answer an errcode (40001 once, say), fail with an HTTP status, or be slow.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

APPID = "wx-standin-appid"
SECRET = "standin-secret"


@dataclass(frozen=True)
class Delivered:
    """A customer-service message the stand-in accepted."""

    openid: str
    text: str
    token: str


@dataclass(frozen=True)
class SubscribeDelivered:
    """A one-time subscription message the stand-in accepted."""

    openid: str
    template_id: str
    data: dict[str, str]
    page: str | None


@dataclass(frozen=True)
class Fault:
    """What to do to one send request instead of (or before) answering it normally."""

    errcode: int | None = None  # answer this errcode
    status: int | None = None  # answer this HTTP status
    delay: float = 0.0  # sleep first (then answer normally unless errcode/status is set)


class WeChatStandIn:
    """The stand-in's state and controls; use as a context manager to run it on a random port."""

    def __init__(self, *, appid: str = APPID, secret: str = SECRET, expires_in: int = 7200) -> None:
        self.appid = appid
        self.secret = secret
        self.expires_in = expires_in
        self.token_delay = 0.0  # seconds stable_token takes to answer
        self.send_fault: Fault | None = None  # applied to every send request (after the scripted ones)
        self.hits: Counter[str] = Counter()
        self.token_requests: list[dict[str, Any]] = []
        self.delivered: list[Delivered] = []
        self.subscribed: list[SubscribeDelivered] = []
        self.templated: list[SubscribeDelivered] = []
        self.oauth_codes: set[str] = set()
        self.send_bodies: list[bytes] = []
        self._faults: deque[Fault] = deque()
        self._valid: set[str] = set()
        self._current: str | None = None
        self._issued = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- controls ---------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The `API_BASE_URL` to give the gateway (ends with a slash, like WeChat's)."""
        assert self._server is not None, "start the stand-in first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/cgi-bin/"

    @property
    def authorize_url(self) -> str:
        """The `WECHAT_OAUTH_AUTHORIZE_URL` to give the app: the stand-in's consent page."""
        return self.base_url.removesuffix("cgi-bin/") + "connect/oauth2/authorize"

    def fail_next_sends(self, *faults: Fault) -> None:
        """Apply these faults to the next send requests, one each, in order."""
        with self._lock:
            self._faults.extend(faults)

    def revoke_tokens(self) -> None:
        """Invalidate every token issued so far (as a forced refresh elsewhere would)."""
        with self._lock:
            self._valid.clear()

    @property
    def forced_refreshes(self) -> int:
        """How many stable_token requests asked for force_refresh."""
        return sum(1 for r in self.token_requests if r.get("force_refresh"))

    # --- the API ----------------------------------------------------------------------------------

    def _new_token(self) -> str:
        self._issued += 1
        self._current = f"STANDIN-TOKEN-{self._issued}"
        return self._current

    def stable_token(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Normal mode returns the current token; forced mode invalidates it and issues another."""
        time.sleep(self.token_delay)
        with self._lock:
            self.token_requests.append(body)
            if body.get("grant_type") != "client_credential":
                return 200, {"errcode": 40002, "errmsg": "invalid grant_type"}
            if body.get("appid") != self.appid:
                return 200, {"errcode": 40013, "errmsg": "invalid appid"}
            if body.get("secret") != self.secret:
                return 200, {"errcode": 40125, "errmsg": "invalid appsecret"}
            if body.get("force_refresh") or self._current not in self._valid:
                if body.get("force_refresh"):
                    self._valid.clear()
                self._valid.add(self._new_token())
            return 200, {"access_token": self._current, "expires_in": self.expires_in}

    def token(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """The legacy `token` endpoint (the gateway must never need it): a fresh token each call."""
        with self._lock:
            if query.get("appid") != self.appid or query.get("secret") != self.secret:
                return 200, {"errcode": 40125, "errmsg": "invalid appsecret"}
            token = self._new_token()
            self._valid = {token}
            return 200, {"access_token": token, "expires_in": self.expires_in}

    def jscode2session(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """A `wx.login` code -> openid (and unionid); the code "bad" is refused as WeChat does (40029)."""
        if query.get("appid") != self.appid or query.get("secret") != self.secret:
            return 200, {"errcode": 40013, "errmsg": "invalid appid"}
        code = query.get("js_code", "")
        if not code or code == "bad":
            return 200, {"errcode": 40029, "errmsg": "invalid code"}
        return 200, {"openid": f"o-{code}", "unionid": f"u-{code}", "session_key": "secret-session-key"}

    def authorize(self, query: dict[str, str]) -> str:
        """The consent page: the location to send the browser back to, with a fresh one-time code."""
        with self._lock:
            code = f"web{len(self.oauth_codes) + 1}"
            self.oauth_codes.add(code)
        return f"{query['redirect_uri']}?code={code}&state={query.get('state', '')}"

    def oauth_token(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """`sns/oauth2/access_token`: a code from the consent page (once) -> the official account's openid."""
        if query.get("appid") != self.appid or query.get("secret") != self.secret:
            return 200, {"errcode": 40013, "errmsg": "invalid appid"}
        code = query.get("code", "")
        with self._lock:
            if code not in self.oauth_codes:
                return 200, {"errcode": 40029, "errmsg": "invalid code"}
            self.oauth_codes.discard(code)
        return 200, {
            "access_token": "web-token",
            "expires_in": 7200,
            "openid": f"oa-{code}",
            "scope": "snsapi_base",
        }

    def send(
        self, query: dict[str, str], raw: bytes, endpoint: str = "message/custom/send"
    ) -> tuple[int, dict[str, Any]]:
        """`message/custom/send` and `message/subscribe/send`: apply the next fault, check the token,
        keep the message."""
        with self._lock:
            fault = self._faults.popleft() if self._faults else self.send_fault
        if fault is not None:
            time.sleep(fault.delay)
            if fault.status is not None:
                return fault.status, {"errmsg": "stand-in failure"}
            if fault.errcode is not None:
                return 200, {"errcode": fault.errcode, "errmsg": f"stand-in errcode {fault.errcode}"}
        token = query.get("access_token", "")
        with self._lock:
            if token not in self._valid:
                return 200, {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"}
            body = json.loads(raw)
            self.send_bodies.append(raw)
            if "template_id" in body and "url" in body or body.get("data", {}).get("first"):
                data = {k: v["value"] for k, v in body["data"].items()}
                self.templated.append(
                    SubscribeDelivered(body["touser"], body["template_id"], data, body.get("url"))
                )
            elif "template_id" in body:
                data = {k: v["value"] for k, v in body["data"].items()}
                self.subscribed.append(
                    SubscribeDelivered(body["touser"], body["template_id"], data, body.get("page"))
                )
            else:
                self.delivered.append(Delivered(body["touser"], body["text"]["content"], token))
        return 200, {"errcode": 0, "errmsg": "ok"}

    # --- the server -------------------------------------------------------------------------------

    def __enter__(self) -> WeChatStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self, method: str) -> None:
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                endpoint = url.path.removeprefix("/cgi-bin/")
                with standin._lock:
                    standin.hits[endpoint] += 1
                if (method, endpoint) == ("POST", "stable_token"):
                    self._answer(*standin.stable_token(json.loads(raw)))
                elif (method, endpoint) == ("GET", "token"):
                    self._answer(*standin.token(query))
                elif (method, endpoint) == ("GET", "/sns/jscode2session"):
                    self._answer(*standin.jscode2session(query))
                elif (method, endpoint) == ("GET", "/sns/oauth2/access_token"):
                    self._answer(*standin.oauth_token(query))
                elif (method, endpoint) == ("GET", "/connect/oauth2/authorize"):
                    self.send_response(302)
                    self.send_header("Location", standin.authorize(query))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif (method, endpoint) in (
                    ("POST", "message/custom/send"),
                    ("POST", "message/subscribe/send"),
                ):
                    self._answer(*standin.send(query, raw, endpoint))
                else:
                    self._answer(404, {"errcode": 404, "errmsg": f"no {method} {url.path}"})

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self._route("GET")

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                self._route("POST")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
                """Keep test output clean (requests are counted in `hits`)."""

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                """A client that timed out and hung up is expected here, not an error."""

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class RecordingGateway:
    """A fake gateway that keeps what it was asked to send (for tests that need no HTTP)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send_text(self, openid: str, text: str) -> None:
        self.sent.append((openid, text))

    def send_subscribe(self, openid: str, template_id: str, data: dict[str, str], page: str | None) -> None:
        self.sent.append((openid, f"subscribe:{template_id}"))

    def send_template(self, openid: str, template_id: str, data: dict[str, str], url: str | None) -> None:
        self.sent.append((openid, f"template:{template_id}"))

    def access_token(self) -> str:
        return "fake-token"

    def code_to_session(self, code: str) -> dict[str, str]:
        return {"openid": f"o-{code}", "unionid": f"u-{code}", "session_key": "fake"}
