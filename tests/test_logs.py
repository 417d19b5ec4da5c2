"""The service's logs (PIPL): JSON lines with mobile and ID numbers masked, and no secret ever written —
not the AppSecret, the AES key, the push token, SECRET_KEY, a staff password nor a WeChat access token —
through a whole consultation, a lawyer's reply and its delivery to WeChat's API."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from app import create_app
from bot.privacy import mask
from handlers.logs import SafeFormatter
from tests import wechat_helpers as wx
from tests.test_lawyer_end_to_end import push, send_outbox, service  # noqa: F401 - fixture

PHONE, ID = "13812345678", "440301199001011234"


def test_numbers_are_masked_and_other_digits_kept():
    assert mask(f"我电话{PHONE}，身份证{ID}") == "我电话138****5678，身份证440301********1234"
    assert mask("欠我工资5000元，干了3个月") == "欠我工资5000元，干了3个月"
    assert mask("+86 138-1234-5678") == "+86 138****5678"
    assert mask("旧身份证440301900101123") == "旧身份证440301*****1123"
    assert mask("卡号6222021234567890123") == "卡号***************0123"


def test_a_line_is_json_masked_and_free_of_secrets():
    formatter = SafeFormatter(["the-app-secret", "aes-key-0123456789"], as_json=True)
    try:
        raise RuntimeError(f"failed with the-app-secret for {PHONE}")
    except RuntimeError:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "worker %s: %s", (ID, "aes-key-0123456789"), None
        )
        record.exc_info = sys.exc_info()
    line = formatter.format(record)
    entry = json.loads(line)
    assert entry["level"] == "ERROR" and entry["message"] == "worker 440301********1234: [redacted]"
    assert "the-app-secret" not in line and PHONE not in line and "RuntimeError" in entry["exception"]
    url = SafeFormatter([], as_json=False).format(
        logging.LogRecord(
            "x", logging.INFO, __file__, 1, "GET /cgi-bin/x?access_token=ABC.def-1&a=1", None, None
        )
    )
    assert "ABC.def-1" not in url and "access_token=[redacted]&a=1" in url


def test_a_whole_consultation_logs_no_secret_and_no_number(service, standin, client_logs):  # noqa: F811
    client = service.test_client()
    push(client, f"我和老公离婚孩子归谁，我电话{PHONE}", 1)
    token = client.post("/api/login", json={"username": "wang", "password": "wang-password-1"}).get_json()[
        "token"
    ]
    headers = {"Authorization": f"Bearer {token}"}
    ticket = client.get("/api/tickets", headers=headers).get_json()["items"][0]["id"]
    client.post(f"/api/tickets/{ticket}/claim", headers=headers)
    client.post(f"/api/tickets/{ticket}/reply", json={"text": f"请打 {PHONE} 联系我"}, headers=headers)
    send_outbox(service)
    client.post("/api/login", json={"username": "wang", "password": "a-wrong-password"})
    logging.getLogger("workerlaw.test").warning("config %s", service.config)  # the worst case: a config dump
    lines = client_logs(service)
    assert lines, "nothing was logged at all"
    joined = "\n".join(lines)
    for secret in (
        standin.secret,
        wx.TOKEN,
        "wang-password-1",
        PHONE,
        standin._current,
        "secret-session-key",
    ):
        assert secret not in joined, secret
    assert all(json.loads(line)["level"] for line in lines)


def _collect(caplog):
    def lines(app):
        handler = next(h for h in logging.getLogger().handlers if getattr(h, "_workerlaw_handler", False))
        return [handler.formatter.format(r) for r in caplog.records]

    return lines


@pytest.fixture
def client_logs(caplog):
    caplog.set_level(logging.DEBUG)
    return _collect(caplog)


def test_the_text_format_is_masked_too(database_url):
    app = create_app({"TESTING": True, "SECRET_KEY": "t", "DATABASE_URL": database_url, "LOG_FORMAT": "text"})
    handler = next(h for h in logging.getLogger().handlers if getattr(h, "_workerlaw_handler", False))
    line = handler.formatter.format(
        logging.LogRecord("x", logging.INFO, __file__, 1, f"call {PHONE}", None, None)
    )
    assert line.endswith("call 138****5678") and not line.startswith("{")
    app.extensions["workerlaw.db"].dispose()
