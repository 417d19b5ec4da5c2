"""`/api/mp` browsing: topics, search through the engine, one entry with its articles, the error shape."""

from __future__ import annotations

import pytest


def test_topics_are_the_labour_categories_with_descriptions(client, engine):
    body = client.get("/api/mp/topics").get_json()
    assert {t["key"] for t in body["topics"]} == set(engine.kb.labour_categories)
    assert all(t["name"] and t["covers"] and t["entries"] > 0 for t in body["topics"])


def test_a_topic_lists_its_entries_page_by_page(client):
    first = client.get("/api/mp/faq?category=work_injury&per_page=10").get_json()
    second = client.get("/api/mp/faq?category=work_injury&per_page=10&page=2").get_json()
    assert first["total"] >= 25 and len(first["items"]) == 10
    assert {i["category"] for i in first["items"] + second["items"]} == {"work_injury"}
    assert not {i["id"] for i in first["items"]} & {i["id"] for i in second["items"]}


def test_search_goes_through_the_engine_and_respects_the_topic(client):
    body = client.get("/api/mp/faq", query_string={"q": "没签合同 二倍工资"}).get_json()
    assert body["items"] and body["items"][0]["category"] == "labor_contract"
    only = client.get("/api/mp/faq", query_string={"q": "工资", "category": "wage_arrears"}).get_json()
    assert only["items"] and {i["category"] for i in only["items"]} == {"wage_arrears"}


def test_an_entry_comes_with_the_text_of_every_article_it_cites(client, engine):
    entry = engine.kb.faq[0]
    body = client.get(f"/api/mp/faq/{entry.id}").get_json()
    assert body["answer"] == entry.answer and body["detail"] == entry.detail
    assert len(body["citations"]) == len(entry.citations)
    for cited in body["citations"]:
        assert cited["text"] and cited["label"].startswith("《")


@pytest.mark.parametrize(
    ("url", "status", "code"),
    [
        ("/api/mp/faq/no-such-entry", 404, "not_found"),
        ("/api/mp/faq/oos-divorce-marriage", 404, "not_found"),  # routes are not answers
        ("/api/mp/faq?category=marriage", 400, "unknown_category"),
        ("/api/mp/faq?page=0", 400, "invalid_parameter"),
        ("/api/mp/faq?per_page=500", 400, "invalid_parameter"),
        ("/api/mp/faq?page=abc", 400, "invalid_parameter"),
        ("/api/mp/faq?colour=red", 400, "unknown_parameter"),
        ("/api/mp/faq?q=" + "工" * 201, 400, "query_too_long"),
        ("/api/mp/nothing-here", 404, "not_found"),
    ],
)
def test_errors_are_json_with_a_code_and_a_message(client, url, status, code):
    res = client.get(url)
    assert res.status_code == status
    body = res.get_json()
    assert body["error"] == code and body["message"]
