"""WeChat's message-push protocol: signatures, the three encryption modes, XML and JSON bodies.

Official-account pushes are XML; the mini-program's customer-service push is XML or JSON as configured.
In plaintext mode the body is the message; in compatible mode it carries both the message and an
`Encrypt` field; in safe mode (`encrypt_type=aes`) only `Encrypt`, and the reply must be encrypted too.
Signatures are compared in constant time and the timestamp must be fresh. During a key rotation WeChat
may still encrypt with the previous EncodingAESKey, so both keys are tried.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import xmltodict
from wechatpy.crypto import PrpCrypto, WeChatCrypto
from wechatpy.replies import TextReply

from bot.errors import WorkerlawError
from bot.inbox import Inbound
from bot.sql import UNSTORABLE_TEXT

MAX_BODY_BYTES = 1024 * 1024
# WeChat caps a worker's text at 2048 bytes; anything longer did not come from a phone, and reading a
# megabyte of it would eat the 5 seconds WeChat waits for the reply.
MAX_TEXT_CHARS = 2000


class PushRejected(WorkerlawError):
    """A push that must be refused: `status` is the HTTP code (400 malformed, 403 not from WeChat)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


def sign(*parts: str) -> str:
    """WeChat's signature: SHA-1 of the sorted, concatenated parts."""
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def check_signature(token: str, params: dict[str, str], *, now: float, max_skew: int) -> None:
    """Raise PushRejected(403) unless `signature` matches and `timestamp` is within `max_skew` seconds."""
    signature, timestamp, nonce = (
        params.get("signature", ""),
        params.get("timestamp", ""),
        params.get("nonce", ""),
    )
    if not (signature and timestamp and nonce):
        raise PushRejected(403, "missing signature, timestamp or nonce")
    if not hmac.compare_digest(sign(token, timestamp, nonce).encode(), signature.lower().encode()):
        raise PushRejected(403, "bad signature")
    if max_skew > 0:
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            raise PushRejected(403, "timestamp is not a number")
        skew = abs(now - int(timestamp))
        if skew > max_skew:
            raise PushRejected(403, f"stale timestamp ({int(skew)} s off)")


@dataclass(frozen=True)
class Keys:
    """What the webhook needs to read and answer encrypted pushes."""

    token: str
    appid: str
    aes_key: str | None = None
    previous_aes_key: str | None = None

    def cryptos(self) -> list[WeChatCrypto]:
        return [WeChatCrypto(self.token, k, self.appid) for k in (self.aes_key, self.previous_aes_key) if k]


@dataclass(frozen=True)
class Push:
    """A decoded push: its fields, whether it came as JSON, and whether the reply must be encrypted."""

    fields: dict[str, str]
    is_json: bool
    encrypted: bool


def _parse(body: bytes) -> tuple[dict, bool]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise PushRejected(400, "body is not UTF-8") from None
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except (ValueError, RecursionError):
            raise PushRejected(400, "malformed JSON") from None
        if not isinstance(data, dict):
            raise PushRejected(400, "JSON body is not an object")
        return data, True
    if "<!DOCTYPE" in text.upper() or "<!ENTITY" in text.upper():
        raise PushRejected(400, "XML with a DOCTYPE or entities is refused")
    try:
        data = xmltodict.parse(text, disable_entities=True)
    except Exception:  # expat raises several types for malformed XML
        raise PushRejected(400, "malformed XML") from None
    root = data.get("xml") if isinstance(data, dict) else None
    if not isinstance(root, dict):
        raise PushRejected(400, "XML root must be <xml>")
    return root, False


def _flat(data: dict) -> dict[str, str]:
    try:
        flat = {
            k: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
            for k, v in data.items()
            if v is not None
        }
    except RecursionError:
        raise PushRejected(400, "nesting too deep") from None
    return {k: UNSTORABLE_TEXT.sub("", v) for k, v in flat.items()}


def decode(body: bytes, params: dict[str, str], keys: Keys) -> Push:
    """Parse and, when needed, verify and decrypt a push body."""
    data, is_json = _parse(body)
    encrypt = data.get("Encrypt")
    if params.get("encrypt_type", "raw").lower() != "aes" or not encrypt:
        if params.get("encrypt_type", "").lower() == "aes":
            raise PushRejected(400, "encrypt_type=aes without an Encrypt field")
        return Push(_flat(data), is_json, encrypted=False)
    if not isinstance(encrypt, str):
        raise PushRejected(400, "Encrypt must be text")
    expected = sign(keys.token, params.get("timestamp", ""), params.get("nonce", ""), encrypt)
    if not hmac.compare_digest(expected.encode(), params.get("msg_signature", "").lower().encode()):
        raise PushRejected(403, "bad msg_signature")
    cryptos = keys.cryptos()
    if not cryptos:
        raise PushRejected(400, "encrypted push but no EncodingAESKey configured")
    plain = None
    for crypto in cryptos:
        try:
            plain = PrpCrypto(crypto.key).decrypt(encrypt, keys.appid)
            break
        except Exception:  # wrong key, wrong appid or corrupt ciphertext: try the previous key
            continue
    if plain is None:
        raise PushRejected(400, "cannot decrypt the message")
    inner, inner_json = _parse(plain.encode("utf-8"))
    return Push(_flat(inner), is_json or inner_json, encrypted=True)


def inbound(fields: dict[str, str], channel: str) -> Inbound:
    """The Inbound for a push's fields; PushRejected(400) when a required field is missing."""
    openid, msg_type, create_time = (
        fields.get("FromUserName"),
        fields.get("MsgType"),
        fields.get("CreateTime"),
    )
    if not openid or not msg_type or not create_time:
        raise PushRejected(400, "missing FromUserName, MsgType or CreateTime")
    try:
        created = datetime.fromtimestamp(int(create_time), UTC)
    except (ValueError, OverflowError, OSError):
        raise PushRejected(400, "CreateTime is not a timestamp") from None
    msg_type = msg_type.lower()
    event = fields.get("Event")
    if msg_type == "event":
        dedup = f"{openid}|{create_time}|{event or ''}"
    elif fields.get("MsgId"):
        dedup = f"msg|{fields['MsgId']}"
    else:
        dedup = f"{openid}|{create_time}|{msg_type}"
    content = fields.get("Content") if msg_type == "text" else fields.get("Recognition")
    content = content[:MAX_TEXT_CHARS] if content else content
    media = fields.get("MediaId")
    return Inbound(
        channel=channel,
        openid=openid[:64],
        msg_type=msg_type[:32],
        dedup_key=dedup[:150],  # the reply row's key adds 6 characters to it, in 160
        created_at=created,
        content=content,
        media_id=media[:256] if media else None,
        event=event[:64] if event else None,
        event_key=fields.get("EventKey"),
    )


def _cdata_safe(value: str) -> str:
    """`value` for wechatpy's templates, which put it in a CDATA section as it is: a "]]>" inside would
    end the section early, so it is split across two sections (the parsed text is unchanged)."""
    return value.replace("]]>", "]]]]><![CDATA[>")


def text_reply(
    fields: dict[str, str],
    content: str,
    *,
    keys: Keys,
    encrypted: bool,
    nonce: str,
    timestamp: str | None = None,
) -> str:
    """The passive text reply XML for a push, encrypted when the push was."""
    xml = TextReply(
        source=_cdata_safe(fields.get("ToUserName", "")),
        target=_cdata_safe(fields.get("FromUserName", "")),
        content=_cdata_safe(content),
        time=int(time.time()),
    ).render()
    if not encrypted:
        return xml
    return keys.cryptos()[0].encrypt_message(xml, nonce, timestamp)
