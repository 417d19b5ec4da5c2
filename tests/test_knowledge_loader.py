"""The loader validates the whole knowledge base and names the file and entry of every problem."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from knowledge.loader import DATA_DIR, MAX_ANSWER_HAN, KnowledgeError, load
from knowledge.statutes import Citation, Statutes
from knowledge.text import han_count

SHARED_ARTICLES = Path(__file__).resolve().parents[2] / "shared" / "laws" / "articles.jsonl"
LABOUR = [
    "wage_arrears",
    "overtime_leave",
    "labor_contract",
    "work_injury",
    "social_insurance",
    "platform_work",
    "dispute_process",
]


@pytest.fixture(scope="module")
def kb():
    return load()


def test_real_knowledge_base_meets_the_issue_minimums(kb):
    faq = kb.faq
    by_cat = {c: [e for e in faq if e.category == c] for c in LABOUR}
    assert len(faq) >= 150
    assert all(by_cat[c] for c in LABOUR)
    assert len(by_cat["wage_arrears"]) >= 40
    assert len(by_cat["work_injury"]) >= 25
    assert len(by_cat["platform_work"]) >= 15
    assert all(len(e.paraphrases) >= 5 for e in kb.entries)
    assert all(han_count(e.answer) <= MAX_ANSWER_HAN for e in faq)


def test_every_citation_exists_in_the_statute_corpus(kb):
    """Checked against the corpus shipped at run time and, when present, the shared original."""
    statutes = Statutes.load()
    shared = {}
    if SHARED_ARTICLES.exists():
        with open(SHARED_ARTICLES, encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                shared[(row["law"], row["article"])] = row["text"]
    for entry in kb.faq:
        assert entry.citations, entry.id
        for c in entry.citations:
            assert statutes.problem(c) is None, (entry.id, c)
            if shared:
                assert shared[(c.law, c.article)] == statutes.get(c.law, c.article).text, (entry.id, c)


def test_shipped_corpus_is_a_verbatim_copy_of_the_shared_one():
    if not SHARED_ARTICLES.exists():
        pytest.skip("no ../shared checkout beside the repository")
    assert (DATA_DIR / "laws" / "articles.jsonl").read_bytes() == SHARED_ARTICLES.read_bytes()


def test_every_topic_cited_in_the_answer_is_labelled_for_workers(kb):
    label = kb.statutes.label(Citation("wage_payment_regulation", 26))
    assert label == "《保障农民工工资支付条例》第二十六条"
    assert kb.statutes.label(Citation("labor_relationship_notice_2005", 2)).endswith("第二条")
    assert kb.statutes.label(Citation("labor_contract_law", 82, 2)).endswith("第八十二条第二款")
    # Items (项) are lines of their own in the corpus but are cited under their paragraph.
    assert kb.statutes.label(Citation("labor_contract_law", 38, 4)).endswith("第三十八条第一款第三项")
    assert kb.statutes.label(Citation("labor_contract_law", 38, 8)).endswith("第三十八条第二款")


@pytest.fixture
def data_copy(tmp_path):
    target = tmp_path / "data"
    shutil.copytree(DATA_DIR, target)
    return target


def _edit(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _first(data):
    return data["entries"][0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: _first(d).update(category="marriage"), "未知分类"),
        (lambda d: _first(d).update(category="labor_contract"), "不一致"),
        (lambda d: _first(d).pop("answer"), "缺少字段: answer"),
        (lambda d: _first(d).update(colour="red"), "未知字段: colour"),
        (lambda d: _first(d).update(paraphrases=["工资", "工钱"]), "至少需要 5 条"),
        (lambda d: _first(d).update(paraphrases=["同一句"] * 5), "重复"),
        (lambda d: _first(d).update(answer="欠" * (MAX_ANSWER_HAN + 1)), "超过"),
        (lambda d: _first(d).update(citations=[]), "至少要引用一条法条"),
        (lambda d: _first(d).update(citations=[{"law": "labor_law", "article": 999}]), "不在法规库中"),
        (lambda d: _first(d).update(citations=[{"law": "no_such_law", "article": 1}]), "不在法规库中"),
        (
            lambda d: _first(d).update(citations=[{"law": "labor_law", "article": 44, "paragraph": 9}]),
            "没有第9款",
        ),
        (lambda d: _first(d).update(citations=[{"law": "labor_law", "article": "44"}]), "整数"),
        (
            lambda d: _first(d).update(
                citations=[{"law": "labor_dispute_interpretation_1", "article": 32, "paragraph": 1}]
            ),
            "已废止",
        ),
        (
            lambda d: _first(d).update(citations=[{"law": "labor_dispute_interpretation_1", "article": 32}]),
            "已废止",
        ),
        (lambda d: _first(d).update(id="Wage Arrears 1"), "id 必须"),
        (lambda d: _first(d).update(regional="yes"), "regional"),
    ],
)
def test_invalid_entries_are_refused_with_file_and_entry_named(data_copy, change, message):
    path = data_copy / "faq" / "work_injury.yaml"
    entry_id = yaml.safe_load(path.read_text(encoding="utf-8"))["entries"][0]["id"]
    _edit(path, change)
    with pytest.raises(KnowledgeError) as err:
        load(data_copy)
    assert message in str(err.value)
    assert err.value.path.endswith("work_injury.yaml")
    assert err.value.entry in (entry_id, "Wage Arrears 1")


def test_duplicate_ids_across_files_are_refused(data_copy):
    other = yaml.safe_load((data_copy / "faq" / "labor_contract.yaml").read_text(encoding="utf-8"))
    taken = other["entries"][0]["id"]
    _edit(data_copy / "faq" / "work_injury.yaml", lambda d: _first(d).update(id=taken))
    with pytest.raises(KnowledgeError, match="id 重复"):
        load(data_copy)


def test_a_cited_paragraph_still_in_force_is_accepted(data_copy):
    _edit(
        data_copy / "faq" / "work_injury.yaml",
        lambda d: _first(d).update(
            citations=[{"law": "labor_dispute_interpretation_1", "article": 32, "paragraph": 2}]
        ),
    )
    assert load(data_copy)


def test_malformed_yaml_names_the_file(data_copy):
    (data_copy / "faq" / "work_injury.yaml").write_text("entries: [unclosed\n", encoding="utf-8")
    with pytest.raises(KnowledgeError, match="work_injury.yaml: YAML 格式错误"):
        load(data_copy)


def test_a_file_without_entries_is_refused(data_copy):
    (data_copy / "faq" / "work_injury.yaml").write_text("category: work_injury\n", encoding="utf-8")
    with pytest.raises(KnowledgeError, match="entries"):
        load(data_copy)


def test_a_broken_urgent_pattern_is_refused(data_copy):
    path = data_copy / "routing" / "urgent.yaml"
    _edit(path, lambda d: d["signals"][0].update(patterns=["跳(楼"]))
    with pytest.raises(KnowledgeError, match="正则表达式错误"):
        load(data_copy)


def test_numbers_in_keyword_lists_are_read_as_text(data_copy):
    _edit(data_copy / "faq" / "work_injury.yaml", lambda d: _first(d).update(keywords=[12333, "工伤"]))
    kb = load(data_copy)
    assert "12333" in kb.entries[[e.source for e in kb.entries].index("work_injury.yaml")].keywords


def test_folded_yaml_leaves_no_stray_spaces_in_chinese_text(kb):
    """Regression: YAML's folded blocks joined lines with a space, which showed as 「。 申请…」."""
    from knowledge.loader import tidy

    assert (
        tidy("仲裁委管。 申请要交书面申请书， 拨打 12333 咨询")
        == "仲裁委管。申请要交书面申请书，拨打12333咨询"
    )
    assert not [e.id for e in kb.entries if "。 " in e.answer or "。 " in e.detail]
