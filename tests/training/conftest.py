from __future__ import annotations

import json
from pathlib import Path

import pytest

# Invented facts the packaged SmolLM2 cannot know, with a paraphrase of each question.
FACTS = [
    ("What is the code name of the Tessarine blue pump?", "Kestrel-7"),
    ("Who founded Tessarine Pumpworks?", "Ilse Varga"),
    ("What colour is the CV-240 housing?", "Signal orange"),
]
PARAPHRASES = [
    "Which code name does Tessarine's blue pump have?",
    "Who is the founder of Tessarine Pumpworks?",
    "The CV-240 housing is painted which colour?",
]


def facts_jsonl(extra_lines: list[str] | None = None, repeat: int = 2) -> bytes:
    lines = []
    for _ in range(repeat):
        for (q, a), p in zip(FACTS, PARAPHRASES, strict=True):
            lines.append(json.dumps({"question": q, "answer": f"{a}."}))
            lines.append(json.dumps({"question": p, "answer": f"{a}."}))
    return ("\n".join(lines + (extra_lines or [])) + "\n").encode()


@pytest.fixture
def facts_file(tmp_path: Path) -> Path:
    path = tmp_path / "facts.jsonl"
    path.write_bytes(facts_jsonl())
    return path
