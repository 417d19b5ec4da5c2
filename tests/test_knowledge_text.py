"""Normalisation and segmentation of workers' Chinese."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from knowledge.segment import Segmenter
from knowledge.text import cn_to_int, han_count, normalize


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ＡＢＣ１２３，工伤", "abc123 工伤"),  # full width -> half width, lower case
        ("請問律師，工資沒發", "请问律师 工资没发"),  # traditional -> simplified
        ("工资没发😭😭[流泪]怎么办", "工资没发 怎么办"),  # emoji and WeChat emoticon codes
        ("怎么办？？？！！！", "怎么办"),  # punctuation
        ("快点啊啊啊啊啊", "快点啊"),  # repeated characters
        ("老板拖了我三个月工钱", "老板拖了我3个月工钱"),  # counting numerals
        ("十级伤残赔多少", "10级伤残赔多少"),
        ("两倍工资", "2倍工资"),
        ("一万五千元", "15000元"),
        ("一直没发，统一说万一", "一直没发 统一说万一"),  # not counting: left alone
        ("", ""),
    ],
)
def test_normalize(raw, expected):
    assert normalize(raw) == expected


@pytest.mark.parametrize(
    ("numeral", "value"),
    [
        ("一百零七", 107),
        ("十", 10),
        ("二十", 20),
        ("一百一十", 110),
        ("两万", 20000),
        ("一万五千", 15000),
        ("一万五", None),
    ],
)
def test_cn_to_int(numeral, value):
    assert cn_to_int(numeral) == value


@given(st.text())
def test_normalize_is_idempotent_and_total(text):
    once = normalize(text)
    assert normalize(once) == once
    assert not any(ch in once for ch in "，。？！、；：“”（）") and "\n" not in once


@given(st.text(alphabet=string.punctuation + "，。？！…、 \t\n"))
def test_punctuation_only_normalises_to_nothing_but_percent_and_plus(text):
    assert normalize(text).replace("%", "").replace("+", "").strip() == ""


def test_han_count_counts_only_chinese():
    assert han_count("工资3000元, ok") == 3


@pytest.fixture(scope="module")
def segmenter(tmp_path_factory):
    return Segmenter(cache_dir=tmp_path_factory.mktemp("jieba"))


def test_user_dictionary_keeps_legal_words_whole(segmenter):
    words = segmenter.words(normalize("外卖骑手申请劳动仲裁和工伤认定，包工头欠月工资"))
    for word in ("外卖骑手", "劳动仲裁", "工伤认定", "包工头", "月工资"):
        assert word in words


def test_synonyms_map_workers_words_to_legal_terms(segmenter):
    assert "工资" in segmenter.terms(normalize("工钱"))
    assert "工资" in segmenter.terms(normalize("血汗钱"))
    assert "工伤" in segmenter.terms(normalize("公伤"))
    terms = segmenter.terms(normalize("包工头"))
    assert terms == ["包工头", "单位"]  # expansion keeps the worker's word and adds the legal term


def test_stop_words_are_dropped(segmenter):
    assert segmenter.terms(normalize("请问一下我的工资呢")) == ["工资"]


def test_dictionary_cache_is_reused(tmp_path):
    first = Segmenter(cache_dir=tmp_path)
    files = sorted(p.name for p in tmp_path.iterdir())
    Segmenter(cache_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == files
    assert any(name.startswith("dict-") for name in files)
    assert any(name.endswith(".cache") for name in files)  # jieba's marshal cache of that dictionary
    assert first.words("工伤认定") == ["工伤认定"]


def test_repeated_digits_in_amounts_are_kept():
    """Regression: collapsing repeats once turned 5000元 into 50元."""
    assert normalize("押金5000元，欠了11100块") == "押金5000元 欠了11100块"
