"""Answer and retrieval metrics that need no judge model."""

from __future__ import annotations

import re
import statistics
import string
import unicodedata
from collections import Counter
from pathlib import PurePosixPath

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans(dict.fromkeys(string.punctuation + "·°", " "))


def normalize(text: str) -> str:
    """SQuAD-style: lower case, no punctuation or articles, single spaces (accents folded)."""
    text = unicodedata.normalize("NFKC", text).lower().translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def token_f1(answer: str, reference: str) -> float:
    got, want = normalize(answer).split(), normalize(reference).split()
    if not got or not want:
        return float(got == want)
    common = sum((Counter(got) & Counter(want)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(got), common / len(want)
    return 2 * precision * recall / (precision + recall)


def contains(answer: str, reference: str) -> bool:
    want = normalize(reference)
    return bool(want) and f" {want} " in f" {normalize(answer)} "


def same_source(retrieved: str, expected: str) -> bool:
    """Sources match on the file name: a question file names documents, not upload paths."""
    return PurePosixPath(retrieved).name.lower() == PurePosixPath(expected).name.lower()


def first_rank(retrieved: list[str], expected: str) -> int | None:
    for i, source in enumerate(retrieved, 1):
        if same_source(source, expected):
            return i
    return None


def citation_precision(cited_texts: list[str], reference: str) -> float | None:
    """Of the passages the answer cited, the share that hold the reference fact."""
    if not cited_texts:
        return None
    return sum(contains(t, reference) for t in cited_texts) / len(cited_texts)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None
