"""`/wechat`: WeChat's push URL for the official account and the mini-program's customer-service push.

GET answers WeChat's URL verification; POST takes a message or event and replies within WeChat's 5
seconds. Protocol details live in `bot.wechat_push`, the processing in `bot.inbox`; this view only
moves bytes and maps refusals to HTTP codes (never a 5xx for bad input: 400, 403 or 413 and a log line).
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Response, current_app, request
from sqlalchemy.exc import IntegrityError, OperationalError

from bot.wechat_push import PushRejected, check_signature, decode, inbound, text_reply
from handlers.db import get_session
from models import MINI_PROGRAM, OFFICIAL_ACCOUNT, utcnow

bp = Blueprint("wechat", __name__)
log = logging.getLogger("workerlaw.wechat")


def _verify() -> dict[str, str]:
    params = request.args.to_dict()
    clock = current_app.config.get("CLOCK", time.time)
    check_signature(
        current_app.config["WECHAT_TOKEN"],
        params,
        now=clock(),
        max_skew=int(current_app.config["WECHAT_MAX_CLOCK_SKEW"]),
    )
    return params


@bp.errorhandler(PushRejected)
def _rejected(exc: PushRejected):
    log.warning("push refused: %s (%s %s)", exc.reason, request.method, request.full_path[:200])
    return Response(exc.reason, status=exc.status, mimetype="text/plain")


@bp.get("/wechat")
def verify():
    """WeChat's URL check: echo `echostr` when the signature is ours."""
    _verify()
    return Response(request.args.get("echostr", ""), mimetype="text/plain")


@bp.post("/wechat")
def receive():
    """A message or event: processed once, answered passively (official account) or with `success`."""
    params = _verify()
    keys = current_app.extensions["workerlaw.keys"]
    push = decode(request.get_data(cache=False), params, keys)
    mp_id = current_app.config["WECHAT_MP_ORIGINAL_ID"]
    channel = (
        MINI_PROGRAM
        if push.is_json or (mp_id and push.fields.get("ToUserName") == mp_id)
        else OFFICIAL_ACCOUNT
    )
    msg = inbound(push.fields, channel)
    inbox = current_app.extensions["workerlaw.inbox"]
    session = get_session()
    for attempt in range(2):
        try:
            handled = inbox.handle(session, msg, now=utcnow(), passive=channel == OFFICIAL_ACCOUNT)
            session.commit()
            break
        except (IntegrityError, OperationalError):
            # A concurrent copy committed between our checks (or SQLite was busy): the retry sees it.
            session.rollback()
            if attempt:
                raise
    if handled.reply is None or channel == MINI_PROGRAM:
        return Response("success", mimetype="text/plain")
    body = text_reply(
        push.fields,
        handled.reply,
        keys=keys,
        encrypted=push.encrypted,
        nonce=params.get("nonce", ""),
        timestamp=params.get("timestamp"),
    )
    return Response(body, mimetype="application/xml")
