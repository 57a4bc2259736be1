"""Tokenisation shared by the lexical index, the hash embedder and the extractive answerer.

Chinese has no spaces, so CJK runs become character bigrams (plus unigrams, which keep
single-character words such as 假 findable); Latin text becomes lower-cased words with a
light plural/verb-suffix folding, so "claims" finds "claim" without a full stemmer.
"""

from __future__ import annotations

import re
import unicodedata

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"
_TOKEN_RE = re.compile(rf"[{_CJK}]+|[a-z0-9]+")
_CJK_RE = re.compile(rf"[{_CJK}]")
_SENTENCE_RE = re.compile(r"(?<=[。！？!?；;])\s*|(?<=[.])\s+(?=[A-Z0-9\"'(\[])|\n+")

# Words so frequent in questions that they carry no topic; dropping them keeps the
# "how much of the question matched" score honest.
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "could",
        "do",
        "does",
        "did",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "should",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "am",
        "any",
        "about",
        "please",
        "tell",
        "know",
        "need",
        "want",
        "get",
        "s",
        "t",
        "don",
        "doesn",
        "isn",
        "aren",
    ]
)


def normalize(text: str) -> str:
    """NFKC folds full-width letters and digits (Ｗｉ－Ｆｉ, １２３) into their ASCII forms."""
    return unicodedata.normalize("NFKC", text).lower()


def is_cjk(ch: str) -> bool:
    return bool(_CJK_RE.match(ch))


def has_cjk(text: str) -> bool:
    return _CJK_RE.search(text) is not None


def script_group(text: str) -> int:
    """1 for text mostly written in CJK characters, 0 otherwise (Latin and the rest): the
    language groups whose similarity scores retrieval calibrates separately."""
    cjk = len(_CJK_RE.findall(text))
    letters = sum(ch.isalpha() for ch in text)
    return int(letters > 0 and cjk / letters >= 0.3)


def fold_word(word: str) -> str:
    """Light English suffix folding: enough to join plural and verb forms, never more."""
    if len(word) <= 3 or word.isdigit():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if word.endswith("ing") and len(word) > 5:
        return word[:-3]
    if word.endswith("ed") and len(word) > 4:
        return word[:-2]
    return word


def lexical_terms(text: str, *, drop_stopwords: bool = True) -> list[str]:
    """Terms for BM25: folded words, CJK unigrams and bigrams."""
    terms: list[str] = []
    append = terms.append
    for token in _TOKEN_RE.findall(normalize(text)):
        if is_cjk(token[0]):
            for i, ch in enumerate(token):
                append(ch)
                if i + 1 < len(token):
                    append(token[i : i + 2])
        elif not (drop_stopwords and token in STOPWORDS):
            append(fold_word(token))
    return terms


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_RE.split(text) if s and s.strip()]


def joiner(left: str, right: str) -> str:
    """What goes between two pieces of running text: nothing between CJK characters, else a space."""
    return "" if left and right and ord(left[-1]) > 0x2E80 and ord(right[0]) > 0x2E80 else " "
