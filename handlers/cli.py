"""`flask --app app chat "问题"`: talk to the webhook exactly as WeChat would, without WeChat.

The message is built as WeChat's XML (or the mini-program's JSON), signed with the configured token,
encrypted in safe mode with the configured EncodingAESKey when asked, and sent either to the app in this
process or to a running service's URL. The reply is verified, decrypted when needed, and printed.
"""

from __future__ import annotations

import json
import random
import string
import time
import urllib.error
import urllib.request
from urllib.parse import urlencode

import click
import xmltodict
from flask import Flask, current_app
from wechatpy.crypto import WeChatCrypto

from bot.wechat_push import sign


def _push(text: str, openid: str, msg_id: int, mini_program: bool) -> str:
    now = int(time.time())
    if mini_program:
        return json.dumps(
            {
                "ToUserName": "gh_mini_program",
                "FromUserName": openid,
                "CreateTime": now,
                "MsgType": "text",
                "Content": text,
                "MsgId": msg_id,
            },
            ensure_ascii=False,
        )
    return (
        f"<xml><ToUserName><![CDATA[gh_workerlaw]]></ToUserName><FromUserName><![CDATA[{openid}]]>"
        f"</FromUserName><CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{text}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    )


def _send(url: str | None, body: str, query: dict[str, str], content_type: str) -> tuple[int, str]:
    if url is None:
        res = current_app.test_client().post(
            "/wechat", query_string=query, data=body.encode(), content_type=content_type
        )
        return res.status_code, res.get_data(as_text=True)
    request = urllib.request.Request(
        f"{url}?{urlencode(query)}", data=body.encode(), headers={"Content-Type": content_type}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as res:  # noqa: S310 - a URL the user typed
            return res.status, res.read().decode("utf-8")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode("utf-8", errors="replace")


def _reply_text(reply: str, crypto: WeChatCrypto | None) -> str:
    if reply == "success" or not reply.strip():
        return "（服务已收到，答复将通过客服消息发送）"
    data = xmltodict.parse(reply)["xml"]
    if "Encrypt" in data and crypto is not None:
        plain = crypto.decrypt_message(reply, data["MsgSignature"], data["TimeStamp"], data["Nonce"])
        data = xmltodict.parse(plain)["xml"]
    return data.get("Content", reply)


@click.command("chat")
@click.argument("text", nargs=-1, required=True)
@click.option("--url", default=None, help="a running service's /wechat URL (default: this process)")
@click.option("--safe", is_flag=True, help="encrypt as WeChat's safe mode does")
@click.option("--mini-program", is_flag=True, help="send as the mini-program's JSON push")
@click.option("--openid", default="oTryWithoutWeChat", show_default=True)
def chat(text: tuple[str, ...], url: str | None, safe: bool, mini_program: bool, openid: str) -> None:
    """Send TEXT to the webhook as WeChat would and print the reply."""
    config = current_app.config
    token = config["WECHAT_TOKEN"]
    msg_id = random.randrange(10**15, 10**16)
    body = _push(" ".join(text), openid, msg_id, mini_program)
    timestamp, nonce = str(int(time.time())), "".join(random.choices(string.digits, k=9))
    query = {"signature": sign(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
    crypto = None
    if safe:
        if not config["WECHAT_ENCODING_AES_KEY"]:
            raise click.UsageError("--safe needs WECHAT_ENCODING_AES_KEY")
        crypto = WeChatCrypto(token, config["WECHAT_ENCODING_AES_KEY"], config["WECHAT_APPID"] or "wxtest")
        encrypt = xmltodict.parse(crypto.encrypt_message(body, nonce, timestamp))["xml"]["Encrypt"]
        body = f"<xml><ToUserName><![CDATA[gh_workerlaw]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        query.update(encrypt_type="aes", msg_signature=sign(token, timestamp, nonce, encrypt))
    status, reply = _send(url, body, query, "application/json" if mini_program else "text/xml")
    if status != 200:
        raise click.ClickException(f"the service answered HTTP {status}: {reply[:200]}")
    click.echo(_reply_text(reply, crypto))


def register_commands(app: Flask) -> None:
    """Attach the command-line tools to `app`."""
    app.cli.add_command(chat)
