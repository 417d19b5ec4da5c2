"""`/m/`: the mobile web page (H5) on the mini-program's API, and its WeChat web OAuth sign-in.

The page itself is static (`handlers/static/h5/`): it talks to `/api/mp` like the mini-program does.
Inside WeChat it signs in with the official account's web OAuth (`snsapi_base`, silent) when
WECHAT_OAUTH_APPID/APPSECRET are set; otherwise with a one-time code staff issue by
`flask --app app web-code`, for testing and for workers outside WeChat.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, urlencode

import click
from flask import Blueprint, Flask, current_app, redirect, request, send_from_directory, url_for
from flask.cli import with_appcontext
from itsdangerous import BadSignature, URLSafeTimedSerializer

from bot import workers
from bot.errors import WeChatError
from bot.wechat import oauth_exchange
from handlers.api import TOKEN_MAX_AGE, issue_token, oauth_configured
from handlers.db import get_session
from models import utcnow

STATIC = Path(__file__).resolve().parent / "static" / "h5"
bp = Blueprint("h5", __name__, url_prefix="/m", static_folder=str(STATIC), static_url_path="/static")
STATE_MAX_AGE = 600  # seconds between leaving for WeChat's consent page and coming back


def _state_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="workerlaw-web-oauth")


def _external(endpoint: str) -> str:
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    if base:
        return base + url_for(endpoint)
    return url_for(endpoint, _external=True)


@bp.get("/")
def page():
    """The single page; everything else it shows comes from `/api/mp`."""
    res = send_from_directory(STATIC, "index.html", max_age=0)
    res.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'"
    )
    res.headers["X-Content-Type-Options"] = "nosniff"
    return res


def _back(fragment: dict[str, str]):
    return redirect(url_for("h5.page") + "#" + urlencode(fragment, quote_via=quote))


@bp.get("/oauth/start")
def oauth_start():
    """Leave for WeChat's web OAuth (silent `snsapi_base`), with a signed state against forged returns."""
    if not oauth_configured():
        return _back({"login_error": "本服务未开通微信登录，请使用登录码"})
    state = _state_serializer().dumps(secrets.token_hex(8))
    query = {
        "appid": current_app.config["WECHAT_OAUTH_APPID"],
        "redirect_uri": _external("h5.oauth_callback"),
        "response_type": "code",
        "scope": "snsapi_base",
        "state": state,
    }
    return redirect(f"{current_app.config['WECHAT_OAUTH_AUTHORIZE_URL']}?{urlencode(query)}#wechat_redirect")


@bp.get("/oauth/callback")
def oauth_callback():
    """WeChat's return with `code`: exchange it for the openid, sign the worker in, back to the page."""
    code, state = request.args.get("code", ""), request.args.get("state", "")
    if not oauth_configured():
        return _back({"login_error": "本服务未开通微信登录，请使用登录码"})
    try:
        _state_serializer().loads(state, max_age=STATE_MAX_AGE)
    except BadSignature:
        return _back({"login_error": "登录已过期，请重新进入页面"})
    if not code or len(code) > 128:
        return _back({"login_error": "您没有同意授权，请重新进入页面"})
    config = current_app.config
    try:
        identity = oauth_exchange(
            code,
            appid=config["WECHAT_OAUTH_APPID"],
            secret=config["WECHAT_OAUTH_APPSECRET"],
            base_url=config["WECHAT_API_BASE_URL"],
        )
    except WeChatError:
        current_app.logger.warning("web OAuth: WeChat refused or did not answer the code exchange")
        return _back({"login_error": "微信登录暂时不可用，请稍后再试"})
    session = get_session()
    worker = workers.sign_in_oauth(session, identity, now=utcnow())
    session.commit()
    return _back({"token": issue_token(worker), "expires_in": str(TOKEN_MAX_AGE)})


@click.command("web-code")
@with_appcontext
@click.option("--minutes", default=60 * 24, show_default=True, help="how long the code stays valid")
@click.option("--count", default=1, show_default=True, help="how many codes to issue")
@click.option("--label", default=None, help="who the codes are for (kept with them)")
def web_code(minutes: int, count: int, label: str | None) -> None:
    """Issue one-time sign-in codes for the mobile page (when WeChat's web OAuth is not configured)."""
    if oauth_configured():
        raise click.ClickException("WeChat web OAuth is configured: the page signs in with WeChat, not codes")
    with current_app.extensions["workerlaw.sessions"]() as session, session.begin():
        now = utcnow()
        codes = [
            workers.issue_code(session, now=now, ttl=timedelta(minutes=minutes), label=label)
            for _ in range(count)
        ]
    for code in codes:
        click.echo(code)


def init_app(app: Flask) -> None:
    """Register the page and its command."""
    app.register_blueprint(bp)
    app.cli.add_command(web_code)
