"""Retrieval: BM25 over titles, paraphrases and keywords, pruned postings, rapidfuzz rerank."""

from __future__ import annotations

import pytest

from knowledge.index import Index, prepare_entries
from knowledge.loader import Entry
from knowledge.segment import Segmenter
from knowledge.statutes import Citation


def make_entry(
    eid: str, category: str, title: str, *paraphrases: str, keywords: tuple[str, ...] = ()
) -> Entry:
    return Entry(eid, category, title, tuple(paraphrases), keywords, "答", "详", (Citation("labor_law", 44),))


@pytest.fixture(scope="module")
def segmenter(tmp_path_factory):
    return Segmenter(cache_dir=tmp_path_factory.mktemp("jieba"))


@pytest.fixture(scope="module")
def small(segmenter):
    entries = [
        make_entry(
            "wage-arrears",
            "wage_arrears",
            "老板拖欠工资怎么办",
            "工钱一直不发",
            "欠薪去哪投诉",
            keywords=("拖欠工资", "欠薪"),
        ),
        make_entry(
            "injury-commute",
            "work_injury",
            "上下班路上出车祸算工伤吗",
            "下班路上被车撞了",
            "通勤交通事故工伤",
            keywords=("上下班途中", "交通事故"),
        ),
        make_entry(
            "leave-overtime",
            "overtime_leave",
            "加班费怎么算",
            "周末加班给多少钱",
            "加班工资几倍",
            keywords=("加班费",),
        ),
    ]
    return Index(entries, segmenter)


def test_the_matching_entry_ranks_first(small):
    assert small.search("老板拖了三个月工钱不给")[0].entry.id == "wage-arrears"
    assert small.search("下班路上电动车被撞了算不算工伤")[0].entry.id == "injury-commute"
    assert small.search("周六加班有加班费吗")[0].entry.id == "leave-overtime"


def test_scores_are_ordered_and_bounded(small):
    results = small.search("加班费怎么算", limit=3)
    assert [m.score for m in results] == sorted((m.score for m in results), reverse=True)
    for m in results:
        assert 0.0 <= m.coverage <= 1.0 and 0.0 <= m.fuzzy <= 1.0 and m.bm25 > 0


def test_limit_is_respected_and_unknown_words_match_nothing(small):
    assert len(small.search("工资", limit=1)) == 1
    assert small.search("量子力学薛定谔") == []
    assert small.search("") == []


def test_keywords_weigh_more_than_a_single_paraphrase(segmenter):
    a = make_entry("a-one", "wage_arrears", "问题一", "工资条看不懂", "随便问问", keywords=("工资条",))
    b = make_entry("b-two", "wage_arrears", "问题二", "工资条", "别的事情")
    index = Index([b, a], segmenter)
    assert index.search("工资条")[0].entry.id == "a-one"


def test_posting_lists_are_pruned_to_the_highest_impact_entries(segmenter):
    """A term shared by many entries keeps only `max_postings` of them: the cost of a question is bounded."""
    entries = [
        make_entry(f"gen-{i}", "wage_arrears", f"工资问题{i}", *(["工资"] * 1 + [f"第{i}号"] * 4))
        for i in range(50)
    ]
    index = Index(entries, segmenter, max_postings=10)
    assert all(len(docs) <= 10 for docs, _ in index._postings.values())
    assert len(index.search("工资", limit=50)) == 10


def test_prepared_texts_are_reused_not_recomputed(segmenter):
    entries = [make_entry("x-one", "wage_arrears", "欠薪", "工资没发", "拖欠工资", "工钱", "血汗钱")]
    prepared = prepare_entries(entries, segmenter)
    assert Index(entries, segmenter, prepared=prepared).search("工资没发")[0].entry.id == "x-one"


def test_a_typo_still_reaches_the_entry_on_the_real_knowledge_base(engine):
    top = engine.index.search("在厂里上班受了公伤老板不给陪偿", limit=5)
    assert any(m.entry.category == "work_injury" for m in top[:3])


def test_prepared_texts_are_cached_and_a_broken_cache_is_ignored(tmp_path):
    segmenter = Segmenter(cache_dir=tmp_path)
    entries = [make_entry("y-one", "wage_arrears", "欠薪", "工资没发", "拖欠工资", "工钱", "血汗钱")]
    first = prepare_entries(entries, segmenter)
    (cached,) = tmp_path.glob("prepared-*.json")

    class Refuses(Segmenter):
        def terms(self, normalized):
            raise AssertionError("segmented again although the cache was valid")

    again = Refuses.__new__(Refuses)
    again.__dict__.update(segmenter.__dict__)
    assert prepare_entries(entries, again) == first

    cached.write_text("{not json", encoding="utf-8")
    assert prepare_entries(entries, segmenter) == first


def test_cache_files_are_pruned(tmp_path):
    from knowledge.segment import prune_cache

    for i in range(12):
        (tmp_path / f"prepared-{i}.json").write_text("[]", encoding="utf-8")
    prune_cache(tmp_path, "prepared-*.json", keep=8)
    assert len(list(tmp_path.glob("prepared-*.json"))) == 8
