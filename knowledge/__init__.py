"""Curated labour-law knowledge: the FAQ data and its validator, Chinese text handling, the search index.

Nothing here runs at import time; callers load what they need (`knowledge.loader.load()`, `Index(...)`).
"""

from __future__ import annotations

from knowledge.index import Index, Match
from knowledge.loader import KnowledgeBase, KnowledgeError, load

__all__ = ["Index", "KnowledgeBase", "KnowledgeError", "Match", "load", "search"]


def search(question: str, *, limit: int = 3, index: Index) -> list[Match]:
    """The best `limit` FAQ matches for `question` in `index`, best first."""
    return index.search(question, limit=limit)
