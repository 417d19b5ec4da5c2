"""Build pushes exactly as WeChat does: signed query strings, XML and JSON bodies, wechatpy's own crypto."""

from __future__ import annotations

import hashlib
import json
import random
import string
import time

import xmltodict
from wechatpy.crypto import WeChatCrypto

TOKEN = "testtoken"
APPID = "wx0123456789abcdef"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
OLD_AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"


def signature(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def nonce() -> str:
    return "".join(random.choices(string.digits, k=9))


def signed_query(timestamp: int | None = None, *, token: str = TOKEN, **extra: str) -> dict[str, str]:
    ts = str(int(timestamp if timestamp is not None else time.time()))
    n = nonce()
    return {"signature": signature(token, ts, n), "timestamp": ts, "nonce": n, **extra}


def text_xml(
    content: str,
    *,
    openid: str = "oWorker001",
    msg_id: str | int = 1,
    create_time: int | None = None,
    to: str = "gh_official",
) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{to}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{create_time or int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    )


def voice_xml(recognition: str, *, openid: str = "oWorker001", msg_id: int = 2) -> str:
    return (
        f"<xml><ToUserName><![CDATA[gh_official]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[voice]]></MsgType>"
        f"<MediaId><![CDATA[media-{msg_id}]]></MediaId><Format><![CDATA[amr]]></Format>"
        f"<Recognition><![CDATA[{recognition}]]></Recognition><MsgId>{msg_id}</MsgId></xml>"
    )


def media_xml(msg_type: str, *, openid: str = "oWorker001", msg_id: int = 3) -> str:
    return (
        f"<xml><ToUserName><![CDATA[gh_official]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[{msg_type}]]></MsgType>"
        f"<PicUrl><![CDATA[http://example.invalid/p.jpg]]></PicUrl><MediaId><![CDATA[m{msg_id}]]></MediaId>"
        f"<MsgId>{msg_id}</MsgId></xml>"
    )


def event_xml(
    event: str, *, openid: str = "oWorker001", key: str = "", create_time: int | None = None
) -> str:
    key_xml = f"<EventKey><![CDATA[{key}]]></EventKey>" if key else ""
    return (
        f"<xml><ToUserName><![CDATA[gh_official]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{create_time or int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[{event}]]></Event>{key_xml}</xml>"
    )


def mp_text_json(content: str, *, openid: str = "oMini001", msg_id: int = 11) -> str:
    return json.dumps(
        {
            "ToUserName": "gh_mini",
            "FromUserName": openid,
            "CreateTime": int(time.time()),
            "MsgType": "text",
            "Content": content,
            "MsgId": msg_id,
        },
        ensure_ascii=False,
    )


def encrypted(
    body: str,
    *,
    aes_key: str = AES_KEY,
    appid: str = APPID,
    compatible: bool = False,
    timestamp: int | None = None,
) -> tuple[str, dict[str, str]]:
    """(body, query) of a safe-mode push (or compatible mode: plaintext fields kept beside Encrypt)."""
    ts = str(int(timestamp if timestamp is not None else time.time()))
    n = nonce()
    crypto = WeChatCrypto(TOKEN, aes_key, appid)
    wrapped = xmltodict.parse(crypto.encrypt_message(body, n, ts))["xml"]
    encrypt = wrapped["Encrypt"]
    if compatible:
        fields = xmltodict.parse(body)["xml"]
        inner = "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in fields.items())
        outer = f"<xml>{inner}<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    else:
        outer = f"<xml><ToUserName><![CDATA[gh_official]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    query = {
        "signature": signature(TOKEN, ts, n),
        "timestamp": ts,
        "nonce": n,
        "encrypt_type": "aes",
        "msg_signature": signature(TOKEN, ts, n, encrypt),
    }
    return outer, query


def reply_content(xml: str, *, query: dict[str, str] | None = None, aes_key: str = AES_KEY) -> str:
    """The Content of a passive reply (decrypting and checking it when the push was encrypted)."""
    data = xmltodict.parse(xml)["xml"]
    if "Encrypt" in data:
        crypto = WeChatCrypto(TOKEN, aes_key, APPID)
        plain = crypto.decrypt_message(xml, data["MsgSignature"], data["TimeStamp"], data["Nonce"])
        data = xmltodict.parse(plain)["xml"]
    return data["Content"]
