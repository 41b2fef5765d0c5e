from __future__ import annotations

import csv
import hashlib
import re
import time
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from docx import Document
from pypdf import PdfReader

from knowledge.demo.content import (
    HR_POLICY_FILE,
    HTML_BOILERPLATE_MARKERS,
    MANUAL_FILE,
    PRICE_LIST_FILE,
    PROCEDURE_FILE,
    QUESTIONS_FILE,
    WARRANTY_FILE,
)
from knowledge.demo.writer import DEMO_COMPANY, DOCUMENT_NAMES, demo_questions, write_demo_corpus


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("demo") / "nested" / "corpus"
    write_demo_corpus(dest)
    return dest


def _normalise(text: str) -> str:
    # PDF extraction breaks lines where fpdf2 wrapped them, and HTML text keeps the
    # source's indentation, so facts are compared with whitespace collapsed.
    return re.sub(r"\s+", " ", text).strip()


def _document_text(path: Path) -> str:
    if path.suffix == ".pdf":
        return "\n".join(page.extract_text() for page in PdfReader(path).pages)
    if path.suffix == ".docx":
        return "\n".join(paragraph.text for paragraph in Document(str(path)).paragraphs)
    if path.suffix == ".html":
        return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser").get_text(" ")
    return path.read_text(encoding="utf-8")


def _digests(paths: list[Path]) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in paths}


def test_it_writes_one_document_per_format(corpus_dir: Path) -> None:
    suffixes = sorted(path.suffix for path in corpus_dir.iterdir() if path.name != QUESTIONS_FILE)

    assert suffixes == [".csv", ".docx", ".html", ".md", ".pdf", ".txt"]
    assert (corpus_dir / QUESTIONS_FILE).is_file()


def test_it_returns_the_document_paths_without_the_questions(tmp_path: Path) -> None:
    paths = write_demo_corpus(tmp_path)

    assert [path.name for path in paths] == list(DOCUMENT_NAMES)
    assert all(path.parent == tmp_path and path.is_file() for path in paths)


def test_writing_twice_gives_identical_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _digests([*write_demo_corpus(tmp_path / "a"), tmp_path / "a" / QUESTIONS_FILE])
    # zipfile stamps DOCX members with time.time(); a later clock must not show up in the bytes.
    later = time.time() + 86_400
    monkeypatch.setattr(time, "time", lambda: later)
    second = _digests([*write_demo_corpus(tmp_path / "b"), tmp_path / "b" / QUESTIONS_FILE])

    assert first == second


def test_rewriting_overwrites_a_changed_file(tmp_path: Path) -> None:
    paths = write_demo_corpus(tmp_path)
    original = paths[0].read_bytes()
    paths[0].write_text("stale", encoding="utf-8")

    write_demo_corpus(tmp_path)

    assert paths[0].read_bytes() == original


def test_questions_cover_every_document(corpus_dir: Path) -> None:
    questions = demo_questions(corpus_dir)

    assert 12 <= len(questions) <= 16
    assert {question["source"] for question in questions} == set(DOCUMENT_NAMES)
    assert all(set(question) == {"question", "answer", "source"} for question in questions)


def test_each_answer_appears_in_its_source_and_nowhere_else(corpus_dir: Path) -> None:
    texts = {name: _normalise(_document_text(corpus_dir / name)) for name in DOCUMENT_NAMES}

    for question in demo_questions(corpus_dir):
        holders = {name for name, text in texts.items() if question["answer"] in text}
        assert holders == {question["source"]}, question


def test_the_company_is_named_in_the_documents(corpus_dir: Path) -> None:
    for name in DOCUMENT_NAMES:
        if name.endswith(".csv"):
            continue
        assert DEMO_COMPANY in _document_text(corpus_dir / name), name


def test_documents_are_long_enough_for_several_chunks(corpus_dir: Path) -> None:
    for name in DOCUMENT_NAMES:
        length = len(_normalise(_document_text(corpus_dir / name)))
        assert 1_500 <= length <= 6_000, (name, length)


def test_pdf_has_at_least_three_pages_with_a_text_layer(corpus_dir: Path) -> None:
    reader = PdfReader(corpus_dir / HR_POLICY_FILE)

    assert len(reader.pages) >= 3
    for page in reader.pages:
        assert len(page.extract_text().strip()) > 200
    bookmarks = [item.title for item in reader.outline if not isinstance(item, list)]
    assert bookmarks[:2] == ["1. Purpose and scope", "2. Working hours and flexitime"]


def test_docx_uses_real_heading_styles(corpus_dir: Path) -> None:
    document = Document(str(corpus_dir / WARRANTY_FILE))
    styles = {paragraph.style.name for paragraph in document.paragraphs if paragraph.style is not None}

    assert {"Title", "Heading 1", "Heading 2", "List Bullet"} <= styles


def test_markdown_nests_three_heading_levels(corpus_dir: Path) -> None:
    lines = (corpus_dir / MANUAL_FILE).read_text(encoding="utf-8").splitlines()

    for prefix in ("# ", "## ", "### "):
        assert any(line.startswith(prefix) for line in lines), prefix


def test_html_carries_boilerplate_outside_the_article(corpus_dir: Path) -> None:
    html = (corpus_dir / PROCEDURE_FILE).read_text(encoding="utf-8")
    soup = BeautifulSoup(html, "html.parser")
    article = soup.find("article")
    assert article is not None
    article_text = _normalise(article.get_text(" "))
    page_text = _normalise(html + " " + soup.get_text(" "))

    for tag in ("nav", "header", "footer", "script", "aside"):
        assert soup.find(tag) is not None, tag
    assert {"h1", "h2", "h3"} <= {heading.name for heading in article.find_all(["h1", "h2", "h3"])}
    for marker in HTML_BOILERPLATE_MARKERS:
        assert marker in page_text, marker
        assert marker not in article_text, marker


def test_csv_has_a_header_and_about_25_parts(corpus_dir: Path) -> None:
    with (corpus_dir / PRICE_LIST_FILE).open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))

    assert 20 <= len(rows) <= 30
    assert {"part_number", "name", "unit_price_eur", "lead_time_days"} <= set(rows[0])
    assert len({row["part_number"] for row in rows}) == len(rows)
    assert all(float(row["unit_price_eur"]) > 0 for row in rows)
