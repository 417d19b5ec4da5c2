"""Masking of personal numbers (PIPL) in what leaves the conversation: logs and exported files.

Mobile numbers keep their first three and last four digits (138****5678), resident ID numbers their
first six and last four (440301********1234), bank-card-like runs of 16 to 19 digits their last four.
The console shows lawyers the worker's own words unmasked: they need the numbers to help.
"""

from __future__ import annotations

import re

_ID = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{8}|\d{5})(\d{3}[0-9Xx]|\d{4})(?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<!\d)(\+?86[- ]?)?(1[3-9]\d)[- ]?(\d{4})[- ]?(\d{4})(?!\d)")
_CARD = re.compile(r"(?<!\d)\d{12,15}(\d{4})(?!\d)")


def _id(match: re.Match[str]) -> str:
    first, middle, last = match.groups()
    length = len(first) + len(middle) + len(last)
    if length not in (15, 18):
        return match.group(0)
    return f"{first}{'*' * len(middle)}{last}"


def mask(text: str) -> str:
    """`text` with mobile, ID and card numbers masked; anything else unchanged."""
    if not text or not any(ch.isdigit() for ch in text):
        return text
    text = _ID.sub(_id, text)
    text = _MOBILE.sub(lambda m: f"{m.group(1) or ''}{m.group(2)}****{m.group(4)}", text)
    return _CARD.sub(lambda m: f"{'*' * (len(m.group(0)) - 4)}{m.group(1)}", text)
