"""Fitting a reply into WeChat's passive-reply limit (2048 bytes of UTF-8 for a text reply).

A long reply is cut after the last sentence that fits, followed by a line telling the worker how to
read the rest; the rest is returned so the conversation can show it on request ("继续").
"""

from __future__ import annotations

SENTENCE_ENDS = "。！？；\n"


def fit(text: str, limit: int, more_note: str) -> tuple[str, str | None]:
    """(what to send now, what is left or None) for `text` under `limit` bytes."""
    if len(text.encode("utf-8")) <= limit:
        return text, None
    budget = limit - len(("\n" + more_note).encode("utf-8"))
    cut, size = 0, 0
    for i, ch in enumerate(text):
        size += len(ch.encode("utf-8"))
        if size > budget:
            break
        if ch in SENTENCE_ENDS:
            cut = i + 1
    if cut == 0:  # no sentence end within the budget: cut at the budget itself
        cut = len(text.encode("utf-8")[:budget].decode("utf-8", errors="ignore"))
    return text[:cut].rstrip() + "\n" + more_note, text[cut:].lstrip() or None
