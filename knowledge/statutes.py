"""The statute corpus the FAQ cites: articles by (law, number), their labels, and repealed paragraphs."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

LAWS_DIR = Path(__file__).parent / "data" / "laws"


@dataclass(frozen=True)
class Citation:
    """A pointer from an FAQ entry into the corpus; `paragraph` (款) is 1-based and optional."""

    law: str
    article: int
    paragraph: int | None = None


@dataclass(frozen=True)
class Article:
    """One article (or numbered item) of a statute, verbatim."""

    law: str
    title: str
    article: int
    label: str
    chapter: str | None
    text: str

    @property
    def paragraphs(self) -> list[str]:
        """The article's paragraphs (款) and items, one per line as in the corpus."""
        return self.text.split("\n")


_ITEM = re.compile(r"^（([一二三四五六七八九十]+)）")
_NUMERALS = "零一二三四五六七八九"


def _cn(number: int) -> str:
    """1..99 as a Chinese numeral (款 and 项 counts never exceed that)."""
    tens, ones = divmod(number, 10)
    if not tens:
        return _NUMERALS[ones]
    return ("" if tens == 1 else _NUMERALS[tens]) + "十" + (_NUMERALS[ones] if ones else "")


def paragraph_label(article: Article, line: int) -> str:
    """Name a 1-based line of an article as lawyers cite it: 第二款, or 第一款第三项 for a numbered item
    (items are lines of their own in the corpus, but belong to the paragraph that introduces them)."""
    lines = article.paragraphs
    kuan = sum(1 for ln in lines[:line] if not _ITEM.match(ln))
    item = _ITEM.match(lines[line - 1])
    if not item:
        return f"第{_cn(kuan)}款"
    total_kuan = sum(1 for ln in lines if not _ITEM.match(ln))
    prefix = f"第{_cn(kuan)}款" if total_kuan > 1 else ""
    return f"{prefix}第{item.group(1)}项"


class Statutes:
    """Read-only view of `articles.jsonl` and `repealed.yaml`."""

    def __init__(self, articles: dict[tuple[str, int], Article], repealed: set[tuple[str, int, int]]):
        self._articles = articles
        self._repealed = repealed

    @classmethod
    def load(cls, directory: Path = LAWS_DIR) -> Statutes:
        """Load the corpus shipped with the product (no `../shared` at run time)."""
        articles: dict[tuple[str, int], Article] = {}
        with open(directory / "articles.jsonl", encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    row = json.loads(line)
                    art = Article(**{k: row[k] for k in Article.__dataclass_fields__})
                    articles[(art.law, art.article)] = art
        repealed: set[tuple[str, int, int]] = set()
        path = directory / "repealed.yaml"
        if path.exists():
            with open(path, encoding="utf-8") as f:
                for row in yaml.safe_load(f) or []:
                    repealed.add((row["law"], int(row["article"]), int(row["paragraph"])))
        return cls(articles, repealed)

    def __len__(self) -> int:
        return len(self._articles)

    def get(self, law: str, article: int) -> Article | None:
        """The article, or None when the corpus has no such article."""
        return self._articles.get((law, article))

    def problem(self, citation: Citation) -> str | None:
        """Why `citation` cannot be used (missing, bad paragraph, repealed), or None when it is sound."""
        art = self.get(citation.law, citation.article)
        if art is None:
            return f"《{citation.law}》第{citation.article}条不在法规库中"
        if citation.paragraph is not None:
            if not 1 <= citation.paragraph <= len(art.paragraphs):
                return f"{art.title}{art.label}没有第{citation.paragraph}款"
            if (citation.law, citation.article, citation.paragraph) in self._repealed:
                return f"{art.title}{art.label}第{citation.paragraph}款已废止，不能引用"
        elif any((citation.law, citation.article, p) in self._repealed for p in range(1, 50)):
            return f"{art.title}{art.label}有已废止的款项，引用时必须写明仍有效的 paragraph"
        return None

    def labels(self, citations: tuple[Citation, ...] | list[Citation]) -> str:
        """Several citations as a worker reads them, grouped by law: 《工伤保险条例》第十四条、第十七条."""
        groups: dict[str, list[str]] = {}
        for c in citations:
            law_label = self.label(c)
            title, _, rest = law_label.partition("》")
            groups.setdefault(title + "》", []).append(rest)
        return "；".join(title + "、".join(parts) for title, parts in groups.items())

    def label(self, citation: Citation) -> str:
        """How a worker sees the citation: 《保障农民工工资支付条例》第二十六条(第二款)."""
        art = self._articles[(citation.law, citation.article)]
        # The item-numbered notice (一、 to 五、) is cited as 第一条 … by usual practice.
        label = f"第{art.label[:-1]}条" if art.label.endswith("、") else art.label
        text = f"《{art.title}》{label}"
        if citation.paragraph:
            text += paragraph_label(art, citation.paragraph)
        return text
