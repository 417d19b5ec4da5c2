"""Browsing the FAQ (the mini-program's topic pages): topics, search within a topic, one entry in full.

Search goes through the same index as the bot's answers; every entry comes with the text of the
articles it cites, read from the statute corpus shipped in the repository.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.engine import Engine
from knowledge.loader import Entry

MAX_SEARCH_RESULTS = 100


@dataclass(frozen=True)
class Page:
    """One page of FAQ entries and how many there are in all."""

    entries: list[Entry]
    total: int
    page: int
    per_page: int


class Catalog:
    """Read-only views of the knowledge base for workers browsing it."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.kb = engine.kb

    def topics(self) -> list[dict]:
        """The labour categories with their names, what they cover and how many entries each has."""
        counts: dict[str, int] = {}
        for entry in self.kb.faq:
            counts[entry.category] = counts.get(entry.category, 0) + 1
        return [
            {
                "key": key,
                "name": self.kb.categories[key]["name"],
                "covers": self.kb.categories[key]["covers"],
                "entries": counts.get(key, 0),
            }
            for key in self.kb.labour_categories
        ]

    def search(self, *, category: str | None, query: str | None, page: int, per_page: int) -> Page:
        """Entries of `category` (all topics when None), best matches of `query` first when given."""
        if query:
            found = [
                m.entry
                for m in self.engine.index.search(query, limit=MAX_SEARCH_RESULTS)
                if m.entry.answerable
            ]
        else:
            found = list(self.kb.faq)
        if category:
            found = [e for e in found if e.category == category]
        start = (page - 1) * per_page
        return Page(found[start : start + per_page], len(found), page, per_page)

    def entry(self, faq_id: str) -> Entry | None:
        """An answerable entry by id, or None."""
        entry = self.kb.by_id.get(faq_id)
        return entry if entry is not None and entry.answerable else None

    def citations(self, entry: Entry) -> list[dict]:
        """Each cited article: its label as lawyers cite it and its full text."""
        statutes = self.kb.statutes
        out = []
        for c in entry.citations:
            article = statutes.get(c.law, c.article)
            out.append(
                {
                    "law": c.law,
                    "title": article.title,
                    "article": c.article,
                    "paragraph": c.paragraph,
                    "label": statutes.label(c),
                    "text": article.text,
                }
            )
        return out
