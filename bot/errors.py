"""The domain's exception tree.

    WorkerlawError
    ├── KnowledgeUnavailable   the knowledge base failed validation or could not be read
    ├── ConversationError      a worker's reply cannot be applied to the conversation state
    └── WeChatError            a call to WeChat's API did not do what was asked
        ├── WeChatUnavailable  network error, timeout, HTTP error status: try again later
        └── WeChatApiError     WeChat answered a non-zero `errcode` (kept with its `errmsg`)
            ├── WeChatTokenError  no access_token could be had (wrong secret, IP not whitelisted)
            └── WeChatRejected    refused for good (openid unknown, 48-hour window closed): never retry

`knowledge.loader.KnowledgeError` (file and entry named) is wrapped in `KnowledgeUnavailable` at the
boundary that loads the engine, so callers above `bot` need to know only this tree. Likewise
`bot.wechat` turns wechatpy's and requests' exceptions into the `WeChatError` branch.
"""

from __future__ import annotations


class WorkerlawError(Exception):
    """Base of every error the domain raises on purpose."""


class KnowledgeUnavailable(WorkerlawError):
    """The curated knowledge base is invalid or missing; the message names the file and entry."""


class ConversationError(WorkerlawError):
    """A reply that does not fit the conversation (e.g. a choice when none was offered)."""


class WeChatError(WorkerlawError):
    """A call to WeChat's API did not do what was asked."""


class WeChatUnavailable(WeChatError):
    """WeChat could not be reached or answered garbage (network, timeout, HTTP error status)."""


class WeChatApiError(WeChatError):
    """WeChat answered with a non-zero `errcode`; `errmsg` is its own explanation."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"WeChat errcode {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class WeChatTokenError(WeChatApiError):
    """No access_token could be had: wrong appid or secret, server IP not whitelisted, quota spent."""


class WeChatRejected(WeChatApiError):
    """WeChat refused this message for good (unknown openid, the 48-hour window closed): do not retry."""
