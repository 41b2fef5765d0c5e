"""Writes the demo knowledge base (one document per format) and its evaluation questions."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

from docx import Document
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from knowledge.demo import content
from knowledge.demo.content import Section

DEMO_COMPANY: str = content.COMPANY

DOCUMENT_NAMES: tuple[str, ...] = (
    content.MANUAL_FILE,
    content.PROCEDURE_FILE,
    content.HR_POLICY_FILE,
    content.WARRANTY_FILE,
    content.PRICE_LIST_FILE,
    content.FAQ_FILE,
)

# A DOCX is a zip, and zipfile stamps every member with the current time.
_ZIP_DATE_TIME = content.DOCUMENT_DATE.timetuple()[:6]


def write_demo_corpus(dest: Path) -> list[Path]:
    """Write every demo document and ``questions.jsonl`` into ``dest``.

    Returns the document paths, not the questions file. The output is byte-for-byte
    the same on every run, so running it again changes nothing on disk.
    """
    dest.mkdir(parents=True, exist_ok=True)
    documents = {
        content.MANUAL_FILE: content.PRODUCT_MANUAL_MD.encode(),
        content.PROCEDURE_FILE: content.MAINTENANCE_PROCEDURE_HTML.encode(),
        content.HR_POLICY_FILE: _hr_policy_pdf(),
        content.WARRANTY_FILE: _warranty_docx(),
        content.PRICE_LIST_FILE: _price_list_csv(),
        content.FAQ_FILE: content.FAQ_TXT.encode(),
    }
    paths = [_write_if_changed(dest / name, data) for name, data in documents.items()]
    _write_if_changed(dest / content.QUESTIONS_FILE, _questions_jsonl())
    return paths


def demo_questions(dest: Path) -> list[dict[str, str]]:
    """Read back the evaluation questions written by ``write_demo_corpus``."""
    lines = (dest / content.QUESTIONS_FILE).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _write_if_changed(path: Path, data: bytes) -> Path:
    # Leaving identical files untouched keeps their mtime, so a folder watcher or
    # an ingest job keyed on mtime does not re-process the corpus on every start.
    if not path.is_file() or path.read_bytes() != data:
        path.write_bytes(data)
    return path


def _questions_jsonl() -> bytes:
    lines = [json.dumps(question, ensure_ascii=False) for question in content.QUESTIONS]
    return ("\n".join(lines) + "\n").encode()


def _price_list_csv() -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(content.PRICE_LIST_HEADER)
    writer.writerows(content.PRICE_LIST_ROWS)
    return buffer.getvalue().encode()


class _HandbookPdf(FPDF):
    # fpdf2 calls header() and footer() on every page, which gives the PDF the
    # running header and page numbers that real handbooks carry.
    def header(self) -> None:
        self.set_font("Helvetica", "I", 8)
        self.cell(0, 6, f"{content.COMPANY} - {content.HR_POLICY_TITLE}", align="R")
        self.ln(10)

    def footer(self) -> None:
        self.set_y(-15)
        self.set_font("Helvetica", "I", 8)
        self.cell(0, 10, f"Page {self.page_no()} of {{nb}}", align="C")


def _hr_policy_pdf() -> bytes:
    pdf = _HandbookPdf(format="A4")
    pdf.set_margins(20, 18, 20)
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.set_title(content.HR_POLICY_TITLE)
    pdf.set_author(content.COMPANY)
    pdf.set_creator(content.COMPANY)
    pdf.set_creation_date(content.DOCUMENT_DATE)

    for page_number, sections in enumerate(content.HR_POLICY_PAGES):
        pdf.add_page()
        if page_number == 0:
            pdf.set_font("Helvetica", "B", 18)
            pdf.multi_cell(0, 9, content.HR_POLICY_TITLE, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.ln(4)
        for section in sections:
            _pdf_section(pdf, section)
    return bytes(pdf.output())


def _pdf_section(pdf: FPDF, section: Section) -> None:
    # The outline entry becomes a PDF bookmark, a second place for a parser to
    # find the heading structure besides the bold text itself.
    pdf.start_section(section.heading, level=section.level - 1)
    pdf.set_font("Helvetica", "B", 13)
    pdf.multi_cell(0, 8, section.heading, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(1)
    pdf.set_font("Helvetica", "", 11)
    for paragraph in section.paragraphs:
        pdf.multi_cell(0, 6, paragraph, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(2)
    for bullet in section.bullets:
        pdf.multi_cell(0, 6, f"- {bullet}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)


def _warranty_docx() -> bytes:
    document = Document()
    properties = document.core_properties
    properties.title = content.WARRANTY_TITLE
    properties.author = content.COMPANY
    properties.last_modified_by = content.COMPANY
    properties.revision = 1
    properties.created = content.DOCUMENT_DATE
    properties.modified = content.DOCUMENT_DATE
    properties.last_printed = content.DOCUMENT_DATE

    document.add_heading(content.WARRANTY_TITLE, level=0)
    for section in content.WARRANTY_SECTIONS:
        document.add_heading(section.heading, level=section.level)
        for paragraph in section.paragraphs:
            document.add_paragraph(paragraph)
        for bullet in section.bullets:
            document.add_paragraph(bullet, style="List Bullet")

    buffer = io.BytesIO()
    document.save(buffer)
    return _with_fixed_zip_timestamps(buffer.getvalue())


def _with_fixed_zip_timestamps(archive: bytes) -> bytes:
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(archive)) as source,
        zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target,
    ):
        for member in source.infolist():
            info = zipfile.ZipInfo(member.filename, date_time=_ZIP_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(info, source.read(member.filename))
    return out.getvalue()
