"""The real WeChat gateway against a local HTTP stand-in for WeChat's API, on SQLite and PostgreSQL.

Several `WeChatApi` instances, each on its own engine, play the service's worker processes sharing
one database; threads released together by a barrier make them race.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from bot.errors import WeChatApiError, WeChatRejected, WeChatTokenError, WeChatUnavailable
from bot.wechat import WeChatApi
from models.wechat import AccessToken
from tests.scratch_db import ScratchDatabase
from tests.wechat_standin import Delivered, Fault, WeChatStandIn


class Clock:
    """A settable clock for the token store."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def make_api(db: ScratchDatabase, standin: WeChatStandIn, **kwargs) -> WeChatApi:
    """A gateway as one process of the service builds it: its own engine, the shared database."""
    kwargs.setdefault("timeout", 2.0)
    kwargs.setdefault("base_url", standin.base_url)
    secret = kwargs.pop("secret", standin.secret)
    return WeChatApi(standin.appid, secret, session_factory=db.sessionmaker(), **kwargs)


def race(calls, *args_per_call):
    """Run `calls[i](*args_per_call[i])` in threads released together; results in order."""
    barrier = threading.Barrier(len(calls))

    def run(i: int):
        barrier.wait()
        return calls[i](*args_per_call[i])

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, range(len(calls))))


def stored_token(db: ScratchDatabase, appid: str) -> AccessToken | None:
    with db.sessionmaker()() as session:
        return session.get(AccessToken, appid)


def test_token_is_fetched_once_and_shared_by_two_processes(db, standin):
    first, second = make_api(db, standin), make_api(db, standin)

    first.send_text("oWorker001", "您好，已收到")
    second.send_text("oWorker002", "律师会联系您")

    assert standin.hits["stable_token"] == 1
    assert standin.hits["token"] == 0  # wechatpy's hard-coded legacy endpoint is never used
    assert standin.token_requests == [
        {
            "grant_type": "client_credential",
            "appid": standin.appid,
            "secret": standin.secret,
            "force_refresh": False,
        }
    ]
    assert standin.delivered == [
        Delivered("oWorker001", "您好，已收到", "STANDIN-TOKEN-1"),
        Delivered("oWorker002", "律师会联系您", "STANDIN-TOKEN-1"),
    ]
    assert first.access_token() == second.access_token() == stored_token(db, standin.appid).token


def test_concurrent_refresh_from_many_processes_hits_the_token_endpoint_once(db, standin):
    standin.token_delay = 0.3  # the lock is held while WeChat answers: everyone else waits, then re-reads
    apis = [make_api(db, standin) for _ in range(6)]

    tokens = race([api.access_token for api in apis], *[()] * len(apis))

    assert tokens == ["STANDIN-TOKEN-1"] * len(apis)
    assert standin.hits["stable_token"] == 1


def test_token_is_refreshed_five_minutes_before_it_expires(db, standin):
    clock = Clock(datetime(2025, 3, 1, 8, 0, tzinfo=UTC))
    api = make_api(db, standin, clock=clock)
    api.access_token()

    clock.now += timedelta(seconds=7200 - 301)
    api.access_token()
    assert standin.hits["stable_token"] == 1

    clock.now += timedelta(seconds=2)  # 299 s left: inside the 5-minute margin
    api.access_token()
    assert standin.hits["stable_token"] == 2
    assert standin.forced_refreshes == 0
    assert stored_token(db, standin.appid).expires_at == clock.now + timedelta(seconds=7200)


@pytest.mark.parametrize("errcode", [40001, 42001])
def test_rejected_token_forces_one_refresh_and_one_retry(db, standin, errcode):
    api = make_api(db, standin)
    assert api.access_token() == "STANDIN-TOKEN-1"
    standin.fail_next_sends(Fault(errcode=errcode))

    api.send_text("oWorker001", "第二次才送到")

    assert standin.hits["message/custom/send"] == 2
    assert standin.forced_refreshes == 1
    assert standin.hits["stable_token"] == 2
    assert standin.delivered == [Delivered("oWorker001", "第二次才送到", "STANDIN-TOKEN-2")]
    assert make_api(db, standin).access_token() == "STANDIN-TOKEN-2"  # other processes get the new one


def test_token_rejected_again_after_the_refresh_raises_without_a_second_refresh(db, standin):
    api = make_api(db, standin)
    standin.fail_next_sends(Fault(errcode=40001), Fault(errcode=40001))

    with pytest.raises(WeChatApiError) as caught:
        api.send_text("oWorker001", "送不到")

    assert caught.value.errcode == 40001
    assert standin.forced_refreshes == 1
    assert standin.hits["message/custom/send"] == 2
    assert standin.delivered == []


def test_a_revoked_token_seen_by_many_processes_is_force_refreshed_once(db, standin):
    """WeChat allows 20 forced refreshes a day: a wave of 40001 must not spend one per process."""
    apis = [make_api(db, standin) for _ in range(5)]
    apis[0].access_token()
    standin.revoke_tokens()
    standin.token_delay = 0.2

    race([api.send_text for api in apis], *[(f"oWorker{i:03}", f"消息{i}") for i in range(len(apis))])

    assert standin.forced_refreshes == 1
    assert sorted(d.text for d in standin.delivered) == [f"消息{i}" for i in range(len(apis))]
    assert {d.token for d in standin.delivered} == {"STANDIN-TOKEN-2"}


def test_http_error_status_raises_unavailable_and_is_not_retried_here(db, standin):
    api = make_api(db, standin)
    standin.fail_next_sends(Fault(status=502))

    with pytest.raises(WeChatUnavailable, match="HTTP 502"):
        api.send_text("oWorker001", "稍后重试")

    assert standin.hits["message/custom/send"] == 1  # retrying later is the outbox's job


def test_slow_api_times_out_as_unavailable(db, standin):
    api = make_api(db, standin, timeout=0.3)
    api.access_token()
    standin.fail_next_sends(Fault(delay=1.5))

    started = time.monotonic()
    with pytest.raises(WeChatUnavailable):
        api.send_text("oWorker001", "太慢了")
    assert time.monotonic() - started < 1.2


def test_a_token_fetch_that_times_out_leaves_the_lock_free(db, standin):
    standin.token_delay = 1.0
    with pytest.raises(WeChatUnavailable):
        make_api(db, standin, timeout=0.3).access_token()

    standin.token_delay = 0.0
    assert make_api(db, standin).access_token().startswith("STANDIN-TOKEN-")


def test_wrong_secret_raises_token_error_and_stores_no_token(db, standin):
    with pytest.raises(WeChatTokenError) as caught:
        make_api(db, standin, secret="not-the-secret").send_text("oWorker001", "x")

    assert caught.value.errcode == 40125
    assert stored_token(db, standin.appid) is None  # the refresh transaction rolled back whole
    assert standin.hits["message/custom/send"] == 0


def test_permanent_errcode_raises_rejected_without_touching_the_token(db, standin):
    api = make_api(db, standin)
    standin.fail_next_sends(Fault(errcode=45015))  # the 48-hour customer-service window has closed

    with pytest.raises(WeChatRejected) as caught:
        api.send_text("oWorker001", "过期了")

    assert caught.value.errcode == 45015
    assert standin.hits["stable_token"] == 1 and standin.forced_refreshes == 0


def test_chinese_text_is_sent_as_utf8_not_as_unicode_escapes(db, standin):
    """Regression guard: WeChat shows `\\u5de5` literally if the JSON body escapes non-ASCII."""
    make_api(db, standin).send_text("oWorker001", "工资拖欠怎么办")

    (body,) = standin.send_bodies
    assert "工资拖欠怎么办".encode() in body and b"\\u" not in body


def test_wechatpy_own_calls_use_the_configured_host_and_the_shared_token(db, standin):
    """Both places where wechatpy hard-codes WeChat's host are overridden (base URL and token fetch)."""
    api = make_api(db, standin, base_url=standin.base_url.rstrip("/"))
    client = api._client  # wechatpy's WeChatClient underneath

    client.message.send_text("oWorker001", "经由 wechatpy")
    client.fetch_access_token()  # wechatpy's "token is bad" hook: a forced refresh via stable_token

    assert standin.delivered == [Delivered("oWorker001", "经由 wechatpy", "STANDIN-TOKEN-1")]
    assert standin.forced_refreshes == 1 and standin.hits["token"] == 0
    assert api.access_token() == "STANDIN-TOKEN-2"
