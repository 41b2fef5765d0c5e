"""Reading training data: JSONL (chat messages, question/answer, instruction/input/output) or CSV.

A bad line is reported by number and left out; the good lines are kept.
"""

from __future__ import annotations

import csv
import io
import json
import random
from dataclasses import dataclass, field
from typing import Any, TypedDict

MAX_EXAMPLE_CHARS = 20_000


class LineError(TypedDict):
    line: int
    error: str


class ColumnMap(TypedDict, total=False):
    question: str
    answer: str
    system: str


@dataclass
class ParsedExample:
    line: int
    messages: list[dict[str, str]]


@dataclass
class ParseReport:
    format: str
    lines: int = 0
    examples: list[ParsedExample] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)


class DatasetInvalid(ValueError):
    def __init__(self, message: str, errors: list[LineError] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


def _text(value: Any, name: str) -> str:
    if value is None:
        raise ValueError(f"missing field '{name}'")
    if not isinstance(value, str):
        raise ValueError(f"field '{name}' must be text")
    return value


def record_to_messages(record: Any) -> list[dict[str, str]]:
    """One record of any supported shape → chat messages ending with the assistant's answer."""
    if not isinstance(record, dict):
        raise ValueError("each line must be a JSON object")
    if "messages" in record:
        raw = record["messages"]
        if not isinstance(raw, list) or not raw:
            raise ValueError("'messages' must be a non-empty list")
        messages = []
        for i, m in enumerate(raw):
            if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
                raise ValueError(f"message {i + 1} needs a role of system, user or assistant")
            messages.append({"role": m["role"], "content": _text(m.get("content"), "content")})
        if messages[-1]["role"] != "assistant":
            raise ValueError("the last message must be the assistant's answer")
        if not any(m["role"] == "user" for m in messages):
            raise ValueError("there is no user message")
    elif "question" in record or "answer" in record:
        messages = [
            {"role": "user", "content": _text(record.get("question"), "question")},
            {"role": "assistant", "content": _text(record.get("answer"), "answer")},
        ]
    elif "instruction" in record or "output" in record:
        instruction = _text(record.get("instruction"), "instruction")
        extra = record.get("input") or ""
        if not isinstance(extra, str):
            raise ValueError("field 'input' must be text")
        prompt = f"{instruction}\n\n{extra}".strip() if extra else instruction
        messages = [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": _text(record.get("output"), "output")},
        ]
    else:
        raise ValueError("expected 'messages', 'question'/'answer' or 'instruction'/'output' fields")
    if isinstance(record, dict) and isinstance(record.get("system"), str) and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": record["system"]})
    if not messages[-1]["content"].strip():
        raise ValueError("the answer is empty")
    if not any(m["content"].strip() for m in messages if m["role"] == "user"):
        raise ValueError("the question is empty")
    size = sum(len(m["content"]) for m in messages)
    if size > MAX_EXAMPLE_CHARS:
        raise ValueError(f"the example is {size} characters, over the {MAX_EXAMPLE_CHARS} limit")
    return messages


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def parse_jsonl(data: bytes) -> ParseReport:
    report = ParseReport(format="jsonl")
    for number, line in enumerate(_decode(data).splitlines(), 1):
        if not line.strip():
            continue
        report.lines += 1
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            report.errors.append({"line": number, "error": f"bad JSON: {exc.msg} at column {exc.colno}"})
            continue
        try:
            report.examples.append(ParsedExample(line=number, messages=record_to_messages(record)))
        except ValueError as exc:
            report.errors.append({"line": number, "error": str(exc)})
    return report


def parse_csv(data: bytes, columns: ColumnMap | None = None) -> ParseReport:
    text = _decode(data)
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    header = reader.fieldnames or []
    cols: ColumnMap = columns or {}
    question = cols.get("question") or next((h for h in header if h.lower() in ("question", "prompt")), "")
    answer = cols.get("answer") or next((h for h in header if h.lower() in ("answer", "response")), "")
    missing = [c for c in (question, answer) if c not in header]
    if not question or not answer or missing:
        raise DatasetInvalid(
            f"map the CSV columns to question and answer (columns found: {', '.join(header) or 'none'})"
        )
    report = ParseReport(format="csv")
    for row in reader:
        number = reader.line_num
        report.lines += 1
        record: dict[str, Any] = {"question": row.get(question), "answer": row.get(answer)}
        if cols.get("system"):
            record["system"] = row.get(cols["system"], "")
        try:
            report.examples.append(ParsedExample(line=number, messages=record_to_messages(record)))
        except ValueError as exc:
            report.errors.append({"line": number, "error": str(exc)})
    return report


def parse_upload(*, data: bytes, filename: str, columns: ColumnMap | None = None) -> ParseReport:
    if not data.strip():
        raise DatasetInvalid("the file is empty")
    if filename.lower().endswith(".csv"):
        return parse_csv(data, columns)
    return parse_jsonl(data)


def split_indices(n: int, *, eval_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """A seeded shuffle, then the first ceil(n * fraction) go to eval."""
    if eval_fraction <= 0:
        return list(range(n)), []
    n_eval = max(1, round(n * eval_fraction))
    if n - n_eval < 1:
        raise DatasetInvalid(
            f"the dataset is too small to split: {n} good examples leave none for training "
            f"with an eval fraction of {eval_fraction:g}; add examples or set the eval fraction to 0"
        )
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return sorted(order[n_eval:]), sorted(order[:n_eval])
