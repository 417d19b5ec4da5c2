"""The kinds of work the union counts (外卖骑手, 快递员, 网约车司机, ... 工厂, 其他): the curated list in
`data/worker_types.yaml`, which of them are 新就业形态 (platform work), and the inference of a worker's
type from what they write about their own job."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from knowledge.loader import DATA_DIR, KnowledgeError
from knowledge.text import normalize

PATH = DATA_DIR / "worker_types.yaml"
UNKNOWN = "unknown"  # a consultation whose worker never said


@dataclass(frozen=True)
class WorkerType:
    code: str
    label: str
    new_form: bool
    words: tuple[str, ...]


class WorkerTypes:
    """The list, in the order workers are offered it, and `infer` over a message."""

    def __init__(self, types: tuple[WorkerType, ...]):
        self.types = types
        self.by_code = {t.code: t for t in types}
        self._by_label = {normalize(t.label): t.code for t in types}
        # (word, code) longest first, so 美团众包 wins over 众包 when both start at the same place.
        self._words = sorted(
            ((normalize(w), t.code) for t in types for w in t.words), key=lambda p: -len(p[0])
        )

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(t.code for t in self.types)

    @property
    def new_form_codes(self) -> tuple[str, ...]:
        return tuple(t.code for t in self.types if t.new_form)

    def label(self, code: str | None) -> str:
        found = self.by_code.get(code or "")
        return found.label if found else "未知"

    def chosen(self, text: str) -> str | None:
        """The type a worker picked: the message is exactly one of the labels (a tap sends the label)."""
        return self._by_label.get(normalize(text).replace(" ", ""))

    def infer(self, text: str) -> str | None:
        """The type a message reveals, or None: the word that occurs first in the text decides."""
        folded = normalize(text).replace(" ", "")
        best: tuple[int, str] | None = None
        for word, code in self._words:
            at = folded.find(word)
            if at >= 0 and (best is None or at < best[0]):
                best = (at, code)
        return best[1] if best else None


def parse(raw: object, path: Path | str = PATH) -> WorkerTypes:
    """Validate the YAML document; KnowledgeError names the first problem."""
    if not isinstance(raw, dict) or not isinstance(raw.get("types"), list) or not raw["types"]:
        raise KnowledgeError(path, None, "expected a mapping with a non-empty list `types`")
    seen: set[str] = set()
    types = []
    for item in raw["types"]:
        if not isinstance(item, dict) or set(item) != {"code", "label", "new_form", "words"}:
            raise KnowledgeError(path, str(item), "each type needs exactly code, label, new_form, words")
        code, label, words = item["code"], item["label"], item["words"]
        if not isinstance(code, str) or not code.isidentifier() or code in seen or code == UNKNOWN:
            raise KnowledgeError(path, str(code), "code must be a new identifier (not 'unknown')")
        if not isinstance(label, str) or not label or not isinstance(item["new_form"], bool):
            raise KnowledgeError(path, code, "label must be text and new_form true or false")
        if not isinstance(words, list) or not all(isinstance(w, str) and w.strip() for w in words):
            raise KnowledgeError(path, code, "words must be a list of non-empty texts")
        seen.add(code)
        types.append(WorkerType(code, label, item["new_form"], tuple(str(w) for w in words)))
    return WorkerTypes(tuple(types))


@lru_cache(maxsize=4)
def load(path: Path = PATH) -> WorkerTypes:
    """The list shipped with the product (read once per process)."""
    return parse(yaml.safe_load(path.read_text(encoding="utf-8")), path)
