"""The WeChat gateway: the API calls the service makes, and the real one built on wechatpy.

`WeChatGateway` is what the rest of the code depends on (tests pass a recording fake). `WeChatApi`
talks to WeChat through wechatpy's `WeChatClient`, with the API host configurable (a local stand-in
in tests, a proxy in production): wechatpy hard-codes WeChat's host twice, in `API_BASE_URL` and in
`fetch_access_token`, and both are overridden here.

The access_token lives in the database (`models.wechat.AccessToken`), so every worker process shares
one: WeChat keeps a single valid stable token per account, and a process that fetched its own would
cost a refresh each. It is fetched with `stable_token` and refreshed by one process at a time under a
row lock, `refresh_early` before it expires; when WeChat says it is invalid (40001) or expired
(42001) it is force-refreshed once (unless another process already replaced it) and the call retried
once. WeChat allows 20 forced refreshes a day, so a token is never force-refreshed twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

import requests
from sqlalchemy.orm import Session, sessionmaker
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException

from bot.errors import WeChatApiError, WeChatRejected, WeChatTokenError, WeChatUnavailable
from bot.sql import begin_write, insert_or_ignore
from models.db import utcnow
from models.wechat import NEVER, AccessToken

log = logging.getLogger(__name__)

DEFAULT_API_BASE_URL = "https://api.weixin.qq.com/cgi-bin/"

# 40001 invalid credential / access_token, 42001 access_token expired: refresh once and retry once.
TOKEN_REJECTED_ERRCODES = frozenset({40001, 42001})

# Errors that no retry can fix: the message must be dropped (and the case looked at by a person).
PERMANENT_ERRCODES = frozenset(
    {
        40003,  # invalid openid (not a follower of this account)
        40029,  # invalid wx.login code or web OAuth code
        40037,  # invalid subscription template id
        40163,  # wx.login code already used
        40008,  # invalid message type
        43004,  # the user unfollowed the account
        43019,  # the user is on the account's blacklist
        43101,  # the user has not granted (or has used up) this subscription
        45002,  # content too long
        45015,  # outside the 48 hours after the user's last message: customer-service messages refused
        45047,  # too many customer-service messages since the user's last message
        47001,  # malformed request body
    }
)


class WeChatGateway(Protocol):
    """The calls to WeChat's API the service makes; the real one is `WeChatApi`."""

    def send_text(self, openid: str, text: str) -> None:
        """Send `text` to `openid` as a customer-service message (`message/custom/send`)."""

    def send_subscribe(self, openid: str, template_id: str, data: dict[str, Any], page: str | None) -> None:
        """Send a one-time subscription message (`message/subscribe/send`), valid beyond 48 hours."""

    def send_template(self, openid: str, template_id: str, data: dict[str, Any], url: str | None) -> None:
        """Send an official-account template message (`message/template/send`): notices to staff."""

    def access_token(self) -> str:
        """A currently valid access_token for the account."""

    def code_to_session(self, code: str) -> dict[str, str]:
        """Exchange a mini-program `wx.login` code for {"openid", "unionid"?, "session_key"} (`sns/jscode2session`)."""


def api_error(errcode: int, errmsg: str) -> WeChatApiError:
    """The exception for a non-zero errcode: `WeChatRejected` when retrying cannot help."""
    cls = WeChatRejected if errcode in PERMANENT_ERRCODES else WeChatApiError
    return cls(errcode, errmsg)


def _exchange(send: Callable[[], requests.Response], what: str) -> dict[str, Any]:
    """One HTTP exchange with WeChat that must answer a JSON object; transport failures become
    `WeChatUnavailable` (errcodes are the caller's to judge)."""
    try:
        res = send()
        res.raise_for_status()
        result = res.json()
    except requests.RequestException as exc:
        raise WeChatUnavailable(f"{what}: {exc}") from exc
    except ValueError as exc:
        raise WeChatUnavailable(f"{what} answered no JSON: {exc}") from exc
    if not isinstance(result, dict):
        raise WeChatUnavailable(f"{what} answered no JSON object")
    return result


def _templated(openid: str, template_id: str, data: dict[str, Any], **link: str | None) -> dict[str, Any]:
    """The body of a template or subscription message; `link` is page= or url=, left out when empty."""
    body: dict[str, Any] = {
        "touser": openid,
        "template_id": template_id,
        "data": {name: {"value": value} for name, value in data.items()},
    }
    body.update({key: value for key, value in link.items() if value})
    return body


class _Client(WeChatClient):
    """wechatpy's client with the host configurable and the token supplied by our database store."""

    def __init__(self, appid: str, secret: str, *, base_url: str, timeout: float) -> None:
        # auto_retry is off: wechatpy would refresh and retry without limit; `WeChatApi` retries once.
        super().__init__(appid, secret, timeout=timeout, auto_retry=False)
        self.API_BASE_URL = base_url  # instance attribute: `_request` reads `self.API_BASE_URL`
        self.tokens: _TokenStore | None = None

    @property
    def access_token(self) -> str:  # wechatpy's hook, used when a call passes no access_token
        """The shared token from the database store (wechatpy's own storage is not used)."""
        if self.tokens is None:
            raise AttributeError("access_token: no token store attached yet")
        return self.tokens.current()

    def fetch_access_token(self) -> dict[str, Any]:
        """wechatpy's refresh hook: replace the current token (never wechatpy's hard-coded host)."""
        if self.tokens is None:
            raise AttributeError("fetch_access_token: no token store attached yet")
        token = self.tokens.replace(self.tokens.current())
        return {"access_token": token}

    def fetch_stable_token(self, *, force: bool) -> tuple[str, int]:
        """POST `{base}stable_token`; returns (access_token, expires_in seconds)."""
        payload = {
            "grant_type": "client_credential",
            "appid": self.appid,
            "secret": self.secret,
            "force_refresh": force,
        }
        result = _exchange(
            lambda: self._http.post(f"{self.API_BASE_URL}stable_token", json=payload, timeout=self.timeout),
            "stable_token",
        )
        errcode = int(result.get("errcode") or 0)
        if errcode:
            raise WeChatTokenError(errcode, str(result.get("errmsg", "")))
        token = result.get("access_token")
        if not token:
            raise WeChatTokenError(-1, f"stable_token answered no access_token: {result!r}")
        return str(token), int(result.get("expires_in", 7200))


class _TokenStore:
    """The access_token of one appid in the database, refreshed by one process at a time."""

    def __init__(
        self,
        appid: str,
        session_factory: sessionmaker[Session],
        fetch: Callable[..., tuple[str, int]],
        *,
        refresh_early: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self.appid = appid
        self.session_factory = session_factory
        self.fetch = fetch
        self.refresh_early = refresh_early
        self.clock = clock

    def _usable(self, row: AccessToken | None, now: datetime) -> bool:
        return row is not None and bool(row.token) and row.expires_at - self.refresh_early > now

    def current(self) -> str:
        """The stored token while it is not about to expire; otherwise a refreshed one."""
        with self.session_factory() as session:
            row = session.get(AccessToken, self.appid)
            if self._usable(row, self.clock()):
                return row.token
        return self._refresh(rejected=None)

    def replace(self, rejected: str) -> str:
        """A token other than `rejected` (which WeChat refused): force-refreshed unless already done."""
        return self._refresh(rejected=rejected)

    def _refresh(self, *, rejected: str | None) -> str:
        """Under the row's lock, re-read; fetch only if the stored token is still unusable."""
        with self.session_factory() as session, session.begin():
            begin_write(session)
            # FOR UPDATE can only lock a row that exists: create the empty one first, once.
            insert_or_ignore(
                session,
                AccessToken,
                key="appid",
                values={"appid": self.appid, "token": "", "expires_at": NEVER},
            )
            row = session.get(AccessToken, self.appid, with_for_update=True, populate_existing=True)
            assert row is not None  # inserted above, and rows of this table are never deleted
            now = self.clock()
            if row.token != rejected and self._usable(row, now):
                return row.token  # another process refreshed while this one waited for the lock
            force = rejected is not None and row.token == rejected
            log.info("fetching access_token for %s (force_refresh=%s)", self.appid, force)
            token, expires_in = self.fetch(force=force)
            row.token = token
            row.expires_at = now + timedelta(seconds=expires_in)
            row.refreshed_at = now
            return token


class WeChatApi:
    """The real gateway: wechatpy against `base_url`, the access_token shared through the database."""

    def __init__(
        self,
        appid: str,
        secret: str,
        *,
        session_factory: sessionmaker[Session],
        base_url: str = DEFAULT_API_BASE_URL,
        timeout: float = 5.0,
        refresh_early: timedelta = timedelta(minutes=5),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """`timeout` bounds each HTTP exchange (the token fetch holds the database lock meanwhile)."""
        self.appid = appid
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._client = _Client(appid, secret, base_url=self.base_url, timeout=timeout)
        self._tokens = _TokenStore(
            appid, session_factory, self._client.fetch_stable_token, refresh_early=refresh_early, clock=clock
        )
        self._client.tokens = self._tokens

    def access_token(self) -> str:
        """A valid access_token, shared with every other process using the same database."""
        return self._tokens.current()

    def send_text(self, openid: str, text: str) -> None:
        """Send a customer-service text message (allowed within 48 hours of the user's last message)."""
        self._call("message/custom/send", {"touser": openid, "msgtype": "text", "text": {"content": text}})

    def send_subscribe(self, openid: str, template_id: str, data: dict[str, Any], page: str | None) -> None:
        """Send a one-time subscription message; `data` is {field: value} of the template's fields."""
        self._call("message/subscribe/send", _templated(openid, template_id, data, page=page))

    def send_template(self, openid: str, template_id: str, data: dict[str, Any], url: str | None) -> None:
        """Send an official-account template message (notices to lawyers and union staff)."""
        self._call("message/template/send", _templated(openid, template_id, data, url=url))

    def code_to_session(self, code: str) -> dict[str, str]:
        """`sns/jscode2session` — beside, not under, `cgi-bin/` on the configured host."""
        root = self.base_url.removesuffix("cgi-bin/")
        params = {
            "appid": self.appid,
            "secret": self._client.secret,
            "js_code": code,
            "grant_type": "authorization_code",
        }
        result = _exchange(
            lambda: self._client._http.get(
                f"{root}sns/jscode2session", params=params, timeout=self._client.timeout
            ),
            "jscode2session",
        )
        errcode = int(result.get("errcode") or 0)
        if errcode or not result.get("openid"):
            raise api_error(errcode or -1, str(result.get("errmsg", "no openid")))
        return {k: str(v) for k, v in result.items() if k in ("openid", "unionid", "session_key") and v}

    def _call(self, endpoint: str, data: dict[str, Any]) -> dict[str, Any]:
        """POST `data` to `endpoint`; on a rejected token refresh it once and retry once."""
        token = self._tokens.current()
        try:
            return self._post(endpoint, data, token)
        except WeChatApiError as exc:
            if exc.errcode not in TOKEN_REJECTED_ERRCODES:
                raise
            log.warning("WeChat refused the access_token (%s); refreshing and retrying once", exc.errcode)
        return self._post(endpoint, data, self._tokens.replace(token))

    def _post(self, endpoint: str, data: dict[str, Any], token: str) -> dict[str, Any]:
        """One POST through wechatpy (JSON as UTF-8, not \\u escapes), its errors turned into ours."""
        try:
            result = self._client.post(endpoint, params={"access_token": token}, data=data)
        except WeChatClientException as exc:
            if exc.errcode is None:  # wechatpy's way of saying the HTTP status was an error
                status = exc.response.status_code if exc.response is not None else "?"
                raise WeChatUnavailable(f"{endpoint}: HTTP {status}") from exc
            raise api_error(int(exc.errcode), str(exc.errmsg)) from exc
        except requests.RequestException as exc:
            raise WeChatUnavailable(f"{endpoint}: {exc}") from exc
        if not isinstance(result, dict):
            raise WeChatUnavailable(f"{endpoint} answered no JSON object")
        return result


def oauth_exchange(
    code: str, *, appid: str, secret: str, base_url: str = DEFAULT_API_BASE_URL, timeout: float = 5.0
) -> dict[str, str]:
    """Exchange an official account's web OAuth code (`snsapi_base`) for {"openid", "unionid"?}.

    `sns/oauth2/access_token` sits beside `cgi-bin/`, like jscode2session, and needs no access_token.
    The web access_token it also returns is not kept: the openid is all the page needs.
    """
    root = base_url.removesuffix("/").removesuffix("cgi-bin").rstrip("/") + "/"
    params = {"appid": appid, "secret": secret, "code": code, "grant_type": "authorization_code"}
    result = _exchange(
        lambda: requests.get(f"{root}sns/oauth2/access_token", params=params, timeout=timeout),
        "oauth2/access_token",
    )
    errcode = int(result.get("errcode") or 0)
    if errcode or not result.get("openid"):
        raise api_error(errcode or -1, str(result.get("errmsg", "no openid")))
    return {k: str(v) for k, v in result.items() if k in ("openid", "unionid") and v}
