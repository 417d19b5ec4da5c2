"""Chinese text normalisation: one canonical form for matching a worker's message against the FAQ.

The same function runs over the curated data at load time and over every question, so the two sides
always meet in the same form. It folds full/half width, traditional to simplified characters, strips
emoji and WeChat emoticon codes, unifies punctuation, collapses repeated characters and writes Chinese
numerals that count something (三个月, 十级, 两倍) as Arabic digits.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path

DATA_DIR = Path(__file__).parent / "data" / "text"

# WeChat sends its built-in emoticons as text codes such as "[微笑]" or "/::)".
_WECHAT_EMOTICON = re.compile(r"\[[\u4e00-\u9fff]{1,4}\]|/:[^\s\u4e00-\u9fff]{1,6}")
# "%" and "+" carry meaning in workers' questions (150%, N+1); every other symbol is a separator.
_KEPT_SYMBOLS = frozenset("%+")
_REPEAT = re.compile(r"(\D)\1{2,}")  # digits repeat in amounts: 5000
_SPACES = re.compile(r"\s+")
# A Chinese numeral is converted only when a counting word follows it, so that words such as
# 一直, 统一, 万一 or 一裁终局 keep their meaning.
_CN_DIGITS = "零〇一二两三四五六七八九十百千万"
_UNITS = (
    "个月|个工作日|个小时|小时|年|月|日|天|周|星期|倍|级|元|块|万|千|岁|号|次|个人|人|名|份|"
    "项|条|%|成|分钟|层|户|套|间|辆|单"
)
_CN_NUMBER = re.compile(rf"(?<![{_CN_DIGITS}])([{_CN_DIGITS}]+)(?=({_UNITS}))")
_DIGIT_VALUES = dict(zip("零〇一二两三四五六七八九", (0, 0, 1, 2, 2, 3, 4, 5, 6, 7, 8, 9), strict=True))
_UNIT_VALUES = {"十": 10, "百": 100, "千": 1000}


@lru_cache(maxsize=1)
def _t2s_table() -> dict[int, str]:
    table: dict[int, str] = {}
    with open(DATA_DIR / "t2s.tsv", encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or "\t" not in line:
                continue
            trad, simp = line.rstrip("\n").split("\t")
            table[ord(trad)] = simp
    return table


def cn_to_int(numeral: str) -> int | None:
    """Value of a Chinese numeral (一百零七 -> 107, 两万五 -> None when ambiguous); None if not a number."""
    if "万" in numeral:
        high, _, low = numeral.partition("万")
        high_value = cn_to_int(high) if high else 1
        if high_value is None:
            return None
        if not low:
            return high_value * 10000
        low_value = cn_to_int(low)
        # 一万五 means 15000 in speech, but a bare trailing digit is ambiguous; keep only clear forms.
        if low_value is None or (len(low) == 1 and low not in _UNIT_VALUES):
            return None
        return high_value * 10000 + low_value
    total = num = 0
    seen = False
    for ch in numeral:
        if ch in _DIGIT_VALUES:
            num = _DIGIT_VALUES[ch]
            seen = True
        elif ch in _UNIT_VALUES:
            total += (num or 1) * _UNIT_VALUES[ch]
            num = 0
            seen = True
        else:
            return None
    return total + num if seen else None


def _numeral_to_digits(match: re.Match[str]) -> str:
    numeral = match.group(1)
    if numeral in ("万", "千"):
        return numeral
    value = cn_to_int(numeral)
    return numeral if value is None else str(value)


def _is_emoji(ch: str) -> bool:
    cp = ord(ch)
    if 0x1F000 <= cp <= 0x1FAFF or 0x2600 <= cp <= 0x27BF or 0xFE00 <= cp <= 0xFE0F or cp == 0x200D:
        return True
    return unicodedata.category(ch) in ("So", "Sk", "Cs", "Co", "Cn")


def _fold_char(ch: str, t2s: dict[int, str]) -> str:
    if ch in "\r\n\t":
        return " "
    if _is_emoji(ch):
        return " "
    cat = unicodedata.category(ch)
    if cat[0] in "PS" and ch not in _KEPT_SYMBOLS:
        return " "
    if cat.startswith("C"):
        return ""
    return t2s.get(ord(ch), ch)


def normalize(text: str) -> str:
    """Canonical form of `text` for matching: simplified, half-width, lower-case, no punctuation."""
    if not text:
        return ""
    # Invisible characters go before NFKC: one between a letter and its accent would otherwise keep
    # them apart until a second pass (normalize must give the same result when applied twice).
    text = "".join(ch for ch in text if ch.isspace() or not unicodedata.category(ch).startswith("C"))
    text = unicodedata.normalize("NFKC", text)
    text = _WECHAT_EMOTICON.sub(" ", text)
    t2s = _t2s_table()
    text = "".join(_fold_char(ch, t2s) for ch in text).lower()
    text = _REPEAT.sub(r"\1", text)
    text = _CN_NUMBER.sub(_numeral_to_digits, text)
    return _SPACES.sub(" ", text).strip()


def han_count(text: str) -> int:
    """Number of Chinese characters, the unit the FAQ's length limits are written in."""
    return sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff")
