"""The topic model: non-labour against labour pooled, and a posterior over the labour categories."""

from __future__ import annotations

import pytest

from knowledge.classifier import CategoryModel, bigrams
from knowledge.index import prepare_entries
from knowledge.loader import Entry
from knowledge.segment import Segmenter
from knowledge.statutes import Citation
from knowledge.text import normalize


def entry(eid, category, *texts):
    return Entry(eid, category, texts[0], tuple(texts[1:]), (), "答", "详", (Citation("labor_law", 1),))


@pytest.fixture(scope="module")
def model_and_segmenter(tmp_path_factory):
    segmenter = Segmenter(cache_dir=tmp_path_factory.mktemp("jieba"))
    entries = [
        entry("w-a", "wage_arrears", "老板拖欠工资", "工资三个月没发", "欠薪怎么办", "工钱不给"),
        entry("i-a", "work_injury", "工伤认定", "干活受伤算工伤吗", "工伤赔偿", "上班摔伤了"),
        entry("o-a", "out_of_scope", "离婚", "老公要离婚", "孩子抚养权", "离婚财产怎么分"),
    ]
    return CategoryModel(entries, prepare_entries(entries, segmenter)), segmenter


def assess(pair, text):
    model, segmenter = pair
    normalized = normalize(text)
    return model.assess(segmenter.terms(normalized), normalized)


def test_posterior_covers_only_labour_categories_and_sums_to_one(model_and_segmenter):
    result = assess(model_and_segmenter, "工资一直没发")
    assert set(result.posterior) == {"wage_arrears", "work_injury"}
    assert sum(result.posterior.values()) == pytest.approx(1.0)
    assert max(result.posterior, key=result.posterior.get) == "wage_arrears"


def test_out_of_scope_ratio_leans_the_right_way(model_and_segmenter):
    assert assess(model_and_segmenter, "我想和老公离婚").out_of_scope > 0
    assert assess(model_and_segmenter, "上班受伤算不算工伤").out_of_scope < 0


def test_a_question_sharing_nothing_with_the_entries_has_no_evidence(model_and_segmenter):
    result = assess(model_and_segmenter, "量子力学")
    assert result.posterior == {} and result.features == 0


def test_bigrams_are_marked_and_ignore_spaces():
    assert bigrams("工资 没发") == ["#工资", "#资没", "#没发"]
