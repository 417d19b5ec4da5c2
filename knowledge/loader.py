"""Load and validate the curated knowledge base: FAQ entries, out-of-scope routes, urgent signals.

Validation is complete and strict: schema and types, unknown keys, unique ids across files, known
categories, answer length, and every citation present in the statute corpus and still in force. The
first problem raises `KnowledgeError` naming the file and entry, so a clerk's typo stops start-up with a
message they can act on instead of a bot that answers wrongly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from knowledge.statutes import Citation, Statutes
from knowledge.text import han_count

DATA_DIR = Path(__file__).parent / "data"
MAX_ANSWER_HAN = 300
MIN_PARAPHRASES = 5
ID_PATTERN = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)+")
OUT_OF_SCOPE = "out_of_scope"
URGENT = "urgent"

_ENTRY_KEYS = {
    "id",
    "category",
    "title",
    "paraphrases",
    "keywords",
    "answer",
    "detail",
    "citations",
    "regional",
}
_REQUIRED = {"id", "category", "title", "paraphrases", "answer", "detail", "citations"}
_CITATION_KEYS = {"law", "article", "paragraph"}


# YAML folds a long line into the next with a space; in Chinese text that space is a typo on a phone.
_CJK = r"\u3000-\u303f\u4e00-\u9fff\uff00-\uffef"
_FOLD_SPACE = re.compile(rf"(?<=[{_CJK}]) +| +(?=[{_CJK}])")


def tidy(text: str) -> str:
    """Strip a text and drop the spaces that YAML folding leaves next to Chinese characters."""
    return _FOLD_SPACE.sub("", text.strip())


class KnowledgeError(ValueError):
    """The knowledge base is invalid; `path` and `entry` say where."""

    def __init__(self, path: Path | str, entry: str | None, message: str):
        self.path, self.entry = str(path), entry
        where = f"{path}: {entry}" if entry else str(path)
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Entry:
    """One curated question-and-answer (or, for out_of_scope, one topic the bot must not answer)."""

    id: str
    category: str
    title: str
    paraphrases: tuple[str, ...]
    keywords: tuple[str, ...]
    answer: str
    detail: str
    citations: tuple[Citation, ...]
    regional: bool = False
    source: str = ""

    @property
    def answerable(self) -> bool:
        """True for labour FAQ entries; out-of-scope routes are never given as answers."""
        return self.category != OUT_OF_SCOPE


@dataclass(frozen=True)
class UrgentSignal:
    """A pattern that marks a message as an emergency (see `data/routing/urgent.yaml`)."""

    id: str
    kind: str
    pattern: re.Pattern[str]
    unless: re.Pattern[str] | None


@dataclass
class KnowledgeBase:
    """Everything curated, validated and ready for indexing."""

    categories: dict[str, dict[str, str]]
    entries: list[Entry]
    statutes: Statutes
    urgent_signals: list[UrgentSignal] = field(default_factory=list)
    replies: dict[str, str] = field(default_factory=dict)
    human_request: re.Pattern[str] | None = None
    worker_types: Any = None  # knowledge.worker_types.WorkerTypes (imported lazily: it imports this module)

    def __post_init__(self) -> None:
        self.by_id = {e.id: e for e in self.entries}

    @property
    def faq(self) -> list[Entry]:
        """The answerable entries."""
        return [e for e in self.entries if e.answerable]

    @property
    def labour_categories(self) -> list[str]:
        """Taxonomy categories an FAQ answer may have."""
        return [c for c in self.categories if c not in (OUT_OF_SCOPE, URGENT)]


# libyaml's loader is several times faster than the pure-Python one, and equally safe.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.load(f, Loader=_YAML_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise KnowledgeError(path, None, f"YAML 格式错误: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise KnowledgeError(path, None, "文件不是 UTF-8 编码") from exc
    except OSError as exc:
        raise KnowledgeError(path, None, f"无法读取文件: {exc.strerror}") from exc


def _text_list(path: Path, eid: str, raw: dict, key: str, *, minimum: int = 0) -> tuple[str, ...]:
    value = raw.get(key, [])
    if isinstance(value, list):
        # A clerk writing a hotline such as 12333 in a list gets a number from YAML; it is still text.
        value = [str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v for v in value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise KnowledgeError(path, eid, f"{key} 必须是非空文字的列表")
    items = tuple(v.strip() for v in value)
    if len(items) < minimum:
        raise KnowledgeError(path, eid, f"{key} 至少需要 {minimum} 条，现有 {len(items)} 条")
    if len(set(items)) != len(items):
        raise KnowledgeError(path, eid, f"{key} 有重复的内容")
    return items


def _citations(path: Path, eid: str, raw: Any, statutes: Statutes) -> tuple[Citation, ...]:
    if not isinstance(raw, list):
        raise KnowledgeError(path, eid, "citations 必须是列表")
    out = []
    for item in raw:
        if not isinstance(item, dict) or not {"law", "article"} <= set(item) or set(item) - _CITATION_KEYS:
            raise KnowledgeError(path, eid, f"引用格式应为 {{law, article, paragraph?}}: {item!r}")
        law, article, paragraph = item["law"], item["article"], item.get("paragraph")
        if not isinstance(law, str) or not isinstance(article, int) or isinstance(article, bool):
            raise KnowledgeError(path, eid, f"引用的 law 应为文字、article 应为整数: {item!r}")
        if paragraph is not None and (not isinstance(paragraph, int) or isinstance(paragraph, bool)):
            raise KnowledgeError(path, eid, f"引用的 paragraph 应为整数: {item!r}")
        citation = Citation(law, article, paragraph)
        problem = statutes.problem(citation)
        if problem:
            raise KnowledgeError(path, eid, problem)
        out.append(citation)
    return tuple(out)


def parse_entry(path: Path, raw: Any, *, statutes: Statutes, categories: set[str], expected: str) -> Entry:
    """Validate one raw YAML entry of a file whose category is `expected`."""
    if not isinstance(raw, dict):
        raise KnowledgeError(path, None, f"条目必须是键值对: {raw!r}")
    eid = raw.get("id")
    if not isinstance(eid, str) or not ID_PATTERN.fullmatch(eid):
        raise KnowledgeError(path, str(eid), "id 必须是小写英文短横线格式，如 wage-special-account")
    if missing := _REQUIRED - set(raw):
        raise KnowledgeError(path, eid, f"缺少字段: {', '.join(sorted(missing))}")
    if unknown := set(raw) - _ENTRY_KEYS:
        raise KnowledgeError(path, eid, f"未知字段: {', '.join(sorted(unknown))}")
    category = raw["category"]
    if category not in categories:
        raise KnowledgeError(path, eid, f"未知分类: {category}")
    if category != expected:
        raise KnowledgeError(path, eid, f"分类 {category} 与文件的分类 {expected} 不一致")
    for key in ("title", "answer", "detail"):
        if not isinstance(raw[key], str) or not raw[key].strip():
            raise KnowledgeError(path, eid, f"{key} 不能为空")
    answer = tidy(raw["answer"])
    citations = _citations(path, eid, raw["citations"], statutes)
    if category != OUT_OF_SCOPE:
        if han_count(answer) > MAX_ANSWER_HAN:
            raise KnowledgeError(path, eid, f"answer 超过 {MAX_ANSWER_HAN} 字（{han_count(answer)} 字）")
        if not citations:
            raise KnowledgeError(path, eid, "FAQ 答案至少要引用一条法条")
    regional = raw.get("regional", False)
    if not isinstance(regional, bool):
        raise KnowledgeError(path, eid, "regional 只能是 true 或 false")
    return Entry(
        id=eid,
        category=category,
        title=tidy(raw["title"]),
        paraphrases=_text_list(path, eid, raw, "paraphrases", minimum=MIN_PARAPHRASES),
        keywords=_text_list(path, eid, raw, "keywords"),
        answer=answer,
        detail=tidy(raw["detail"]),
        citations=citations,
        regional=regional,
        source=path.name,
    )


def _entry_file(path: Path, *, statutes: Statutes, categories: set[str]) -> list[Entry]:
    data = _read_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list) or "category" not in data:
        raise KnowledgeError(path, None, "文件应包含 category 和 entries 列表")
    expected = data["category"]
    if expected not in categories:
        raise KnowledgeError(path, None, f"未知分类: {expected}")
    return [
        parse_entry(path, raw, statutes=statutes, categories=categories, expected=expected)
        for raw in data["entries"]
    ]


def _urgent_signals(path: Path) -> list[UrgentSignal]:
    data = _read_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("signals"), list):
        raise KnowledgeError(path, None, "文件应包含 signals 列表")
    signals = []
    for raw in data["signals"]:
        sid = raw.get("id") if isinstance(raw, dict) else None
        if not sid or not isinstance(raw.get("patterns"), list) or not raw.get("kind"):
            raise KnowledgeError(path, str(sid), "信号需要 id、kind 和 patterns 列表")
        try:
            pattern = re.compile("|".join(f"(?:{p})" for p in raw["patterns"]))
            unless = re.compile("|".join(f"(?:{p})" for p in raw["unless"])) if raw.get("unless") else None
        except re.error as exc:
            raise KnowledgeError(path, sid, f"正则表达式错误: {exc}") from exc
        signals.append(UrgentSignal(sid, raw["kind"], pattern, unless))
    return signals


def load(directory: Path = DATA_DIR, *, statutes: Statutes | None = None) -> KnowledgeBase:
    """Load and validate the whole knowledge base under `directory`."""
    if statutes is None:
        try:
            statutes = Statutes.load(directory / "laws")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KnowledgeError(directory / "laws", None, f"法规库无法读取: {exc}") from exc
    taxonomy = _read_yaml(directory / "taxonomy.yaml")
    categories: dict[str, dict[str, str]] = taxonomy["categories"]
    names = set(categories)
    entries: list[Entry] = []
    faq_files = sorted((directory / "faq").glob("*.yaml"))
    if not faq_files:
        raise KnowledgeError(directory / "faq", None, "没有 FAQ 文件")
    for path in [*faq_files, directory / "routing" / "out_of_scope.yaml"]:
        entries.extend(_entry_file(path, statutes=statutes, categories=names))
    seen: dict[str, str] = {}
    for e in entries:
        if e.id in seen:
            raise KnowledgeError(e.source, e.id, f"id 重复（已在 {seen[e.id]} 中使用）")
        seen[e.id] = e.source
    replies = _read_yaml(directory / "replies.yaml")
    human = replies.pop("human_request_pattern", None)
    from knowledge import worker_types

    types_path = directory / worker_types.PATH.name
    return KnowledgeBase(
        worker_types=worker_types.parse(_read_yaml(types_path), types_path),
        categories=categories,
        entries=entries,
        statutes=statutes,
        urgent_signals=_urgent_signals(directory / "routing" / "urgent.yaml"),
        replies=replies,
        human_request=re.compile(human) if human else None,
    )
