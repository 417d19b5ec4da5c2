"""Word segmentation: a private jieba tokenizer with the legal/workplace dictionary, synonyms, stop words.

jieba's own dictionary is pruned to its common words and merged with `data/text/userdict.txt` (plus the
knowledge base's keywords), written once to a cache directory, and loaded from jieba's marshal cache on
later starts: a start-up stays well under a second. Each `Segmenter` owns its `jieba.Tokenizer`; the
global jieba instance is never touched.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import jieba
import yaml

from knowledge.text import DATA_DIR, normalize

# jieba words below this frequency are dropped: they are rare names and idioms that slow loading
# (350k -> about 105k words, 0.8 s -> 0.2 s) without helping to match workers' questions.
MIN_JIEBA_FREQ = 10
USER_WORD_FREQ = 200000

logging.getLogger("jieba").setLevel(logging.WARNING)


def default_cache_dir() -> Path:
    """Where the merged dictionary and jieba's cache live unless the caller says otherwise."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = Path(base) / "workerlaw"
    try:
        path.mkdir(parents=True, exist_ok=True)
        return path
    except OSError:
        return Path(tempfile.gettempdir()) / "workerlaw-cache"


def prune_cache(directory: Path, pattern: str, *, keep: int = 8) -> None:
    """Delete all but the `keep` newest files matching `pattern`: every knowledge-base edit writes new
    cache files, and a server edited for years must not fill its disk with them."""
    try:
        files = sorted(directory.glob(pattern), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in files[keep:]:
            old.unlink(missing_ok=True)
    except OSError as exc:  # a cache that cannot be tidied is still a working cache
        logging.getLogger(__name__).debug("cache pruning skipped: %s", exc)


def _read_lines(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]


@dataclass(frozen=True)
class TextResources:
    """The curated word lists behind segmentation, read from `data/text/`."""

    user_words: tuple[str, ...]
    stop_words: frozenset[str]
    replace: dict[str, str] = field(hash=False)
    expand: dict[str, str] = field(hash=False)

    @classmethod
    def load(cls, directory: Path = DATA_DIR) -> TextResources:
        """Read the user dictionary, stop words and synonym map from `directory`."""
        words = [ln.split()[0] for ln in _read_lines(directory / "userdict.txt")]
        stops = frozenset(normalize(w) for w in _read_lines(directory / "stopwords.txt"))
        with open(directory / "synonyms.yaml", encoding="utf-8") as f:
            syn = yaml.safe_load(f) or {}
        replace = {normalize(k): normalize(v) for k, v in (syn.get("replace") or {}).items()}
        expand = {normalize(k): normalize(v) for k, v in (syn.get("expand") or {}).items()}
        return cls(tuple(words), stops, replace, expand)


class Segmenter:
    """Turns normalised text into index terms: jieba words, mapped through synonyms, minus stop words."""

    def __init__(
        self,
        resources: TextResources | None = None,
        *,
        extra_words: Iterable[str] = (),
        cache_dir: Path | None = None,
    ) -> None:
        self.resources = resources or TextResources.load()
        words = {normalize(w) for w in (*self.resources.user_words, *extra_words)}
        words |= set(self.resources.replace) | set(self.resources.replace.values())
        words |= set(self.resources.expand) | set(self.resources.expand.values())
        words = sorted(w for w in words if w and " " not in w)
        self.cache_dir = cache_dir or default_cache_dir()
        dictionary = self._dictionary(words, self.cache_dir)
        self._tokenizer = jieba.Tokenizer(str(dictionary))
        self._tokenizer.tmp_dir = str(self.cache_dir)
        r = self.resources
        # Identifies everything that decides how a text is segmented: the dictionary and the word lists.
        self.fingerprint = hashlib.sha256(
            repr(
                (dictionary.name, sorted(r.stop_words), sorted(r.replace.items()), sorted(r.expand.items()))
            ).encode()
        ).hexdigest()[:16]
        self._tokenizer.initialize()

    @staticmethod
    def _dictionary(words: list[str], cache_dir: Path) -> Path:
        """Write (once per word list) jieba's pruned dictionary merged with our words."""
        digest = hashlib.sha256(
            ("\n".join(words) + f"|{MIN_JIEBA_FREQ}|{jieba.__version__}").encode()
        ).hexdigest()[:16]
        cache_dir.mkdir(parents=True, exist_ok=True)
        path = cache_dir / f"dict-{digest}.txt"
        if path.exists():
            return path
        source = Path(jieba.__file__).parent / "dict.txt"
        ours = set(words)
        lines = []
        with open(source, encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] not in ours and int(parts[1]) >= MIN_JIEBA_FREQ:
                    lines.append(f"{parts[0]} {parts[1]}")
        lines.extend(f"{w} {USER_WORD_FREQ}" for w in words)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        prune_cache(cache_dir, "dict-*.txt")
        prune_cache(cache_dir, "jieba.u*.cache")
        return path

    def words(self, normalized: str) -> list[str]:
        """jieba's words for already-normalised text (no synonym mapping, stop words kept)."""
        return [w for w in self._tokenizer.lcut(normalized, HMM=False) if w.strip()]

    def terms(self, normalized: str) -> list[str]:
        """Index terms for already-normalised text: synonyms applied, stop words and spaces removed."""
        out: list[str] = []
        replace, expand, stops = self.resources.replace, self.resources.expand, self.resources.stop_words
        for word in self._tokenizer.lcut(normalized, HMM=False):
            if not word.strip():
                continue
            word = replace.get(word, word)
            if word in stops:
                continue
            out.append(word)
            if word in expand:
                out.append(expand[word])
        return out
