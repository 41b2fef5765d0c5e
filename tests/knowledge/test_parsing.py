"""Parsing turns uploads into blocks, or says in plain words why it cannot.

Pure tests: no database, no Django settings.
"""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import pytest
from docx import Document
from docx.document import Document as DocxDocument
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from knowledge.parsing import (
    CSV,
    DOCX,
    HTML,
    MARKDOWN,
    PDF,
    TEXT,
    Block,
    ParsedDocument,
    ParseError,
    parse_document,
    sniff_media_type,
)
from tests.knowledge import badfiles


def _reason(data: bytes, filename: str, **kwargs: int) -> str:
    with pytest.raises(ParseError) as caught:
        parse_document(data=data, filename=filename, **kwargs)
    return caught.value.reason


def _all_text(document: ParsedDocument) -> str:
    return "\n".join(block.text for block in document.blocks)


def _block_with(document: ParsedDocument, needle: str) -> Block:
    matches = [block for block in document.blocks if needle in block.text]
    assert matches, f"{needle!r} not in {_all_text(document)!r}"
    return matches[0]


def _docx(document: DocxDocument) -> bytes:
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _sample_docx() -> bytes:
    document = Document()
    document.core_properties.title = "Warranty terms"
    document.add_heading("Warranty terms", level=0)
    document.add_paragraph("These terms apply to every pump we sell.")
    document.add_heading("Exclusions", level=1)
    document.add_heading("Wear parts", level=2)
    document.add_paragraph("Impellers and strainers wear out and are not covered.")
    document.add_paragraph("Damage from sand", style="List Bullet")
    document.add_paragraph("Damage from running dry", style="List Bullet")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "Part"
    table.cell(0, 1).text = "Months"
    table.cell(1, 0).text = "Seal"
    table.cell(1, 1).text = "12"
    document.add_heading("Claims", level=1)
    document.add_paragraph("Report a defect within 14 days.")
    return _docx(document)


# --------------------------------------------------------------------------- bad input


def test_it_rejects_encrypted_pdf() -> None:
    reason = _reason(badfiles.encrypted_pdf(), "salaries.pdf")

    assert "encrypted" in reason
    assert "password" in reason


def test_it_reads_a_pdf_locked_only_by_an_owner_password() -> None:
    document = parse_document(data=badfiles.owner_password_only_pdf(), filename="restricted.pdf")

    assert "reading is not" in _all_text(document)


def test_it_rejects_truncated_pdf() -> None:
    reason = _reason(badfiles.truncated_pdf(), "report.pdf")

    assert "damaged or truncated" in reason
    assert "upload" in reason


def test_it_rejects_pdf_without_a_text_layer() -> None:
    reason = _reason(badfiles.scanned_pdf(), "scan.pdf")

    assert "No extractable text" in reason
    assert "OCR" in reason


@pytest.mark.parametrize("filename", ["empty.pdf", "empty.txt", "empty.docx", "empty.csv"])
def test_it_rejects_empty_file(filename: str) -> None:
    assert _reason(badfiles.empty_file(), filename) == "The file is empty."


def test_it_rejects_png_named_pdf() -> None:
    reason = _reason(badfiles.png_image(), "invoice.pdf")

    assert "named .pdf" in reason
    assert "PNG image" in reason


def test_it_rejects_zip_named_pdf() -> None:
    reason = _reason(badfiles.zip_archive(), "invoice.pdf")

    assert "named .pdf" in reason
    assert "ZIP archive" in reason


def test_it_suggests_the_right_extension_when_the_content_is_supported() -> None:
    reason = _reason(badfiles.text_pdf(pages=["Hello"]), "letter.docx")

    assert "PDF" in reason
    assert "rename it to .pdf" in reason


def test_it_rejects_docx_zip_bomb_without_inflating_it() -> None:
    bomb = badfiles.docx_zip_bomb(padding_mb=300)
    assert len(bomb) < 5 * 1024 * 1024

    started = time.perf_counter()
    reason = _reason(bomb, "contract.docx")

    assert time.perf_counter() - started < 1.0
    assert "zip bomb" in reason
    assert "300 MB" in reason


def test_it_rejects_a_docx_member_compressed_far_beyond_normal() -> None:
    # 20 MB stays under the size limit, but zeros compress over 200 to 1.
    reason = _reason(badfiles.docx_zip_bomb(padding_mb=20), "contract.docx")

    assert "zip bomb" in reason
    assert "compressed" in reason


def test_the_unpacked_size_limit_is_a_parameter() -> None:
    reason = _reason(_sample_docx(), "terms.docx", max_unpacked_bytes=1_000)

    assert "zip bomb" in reason


def test_it_rejects_a_zip_that_is_not_a_word_document() -> None:
    reason = _reason(badfiles.zip_archive(), "notes.docx")

    assert "not a Word document" in reason


def test_it_rejects_truncated_docx() -> None:
    reason = _reason(badfiles.truncated_docx(_sample_docx()), "terms.docx")

    assert "damaged or truncated" in reason


def test_it_rejects_binary_content_named_txt() -> None:
    reason = _reason(badfiles.elf_binary(), "readme.txt")

    assert "named .txt" in reason
    assert "program" in reason


def test_it_rejects_png_named_markdown() -> None:
    reason = _reason(badfiles.png_image(), "notes.md")

    assert "PNG image" in reason


@pytest.mark.parametrize("filename", ["setup.exe", "archive.tar.gz", "README"])
def test_it_rejects_unsupported_file_types(filename: str) -> None:
    reason = _reason(b"some bytes", filename)

    assert reason.startswith("Unsupported file type")
    assert "PDF, DOCX, HTML, Markdown, TXT or CSV" in reason


def test_it_says_how_to_convert_a_legacy_word_file() -> None:
    reason = _reason(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100), "old.doc")

    assert reason.startswith("Unsupported file type '.doc'")
    assert "save it as .docx" in reason


def test_it_names_the_unsupported_extension() -> None:
    assert _reason(b"MZ\x90\x00", "setup.exe") == (
        "Unsupported file type '.exe': upload PDF, DOCX, HTML, Markdown, TXT or CSV."
    )


def test_it_decodes_latin1_text() -> None:
    document = parse_document(data=badfiles.latin1_text(), filename="cafe.txt")
    text = _all_text(document)

    assert "Café Müller in Köln" in text
    assert "Crème brûlée" in text
    assert "\ufffd" not in text


def test_it_drops_scripts_and_navigation_from_html() -> None:
    document = parse_document(data=badfiles.html_with_script_and_nav(), filename="care.html")
    text = _all_text(document)

    assert "Rinse the strainer with fresh water every week." in text
    assert "Store the pump upright" in text
    for boilerplate in ("alert", "tracking", "Shop", "About us", "Products", "Service menu", "Copyright"):
        assert boilerplate not in text, boilerplate
    for block in document.blocks:
        assert "Prev" not in block.text
        assert "Back to top" not in block.text
        assert "color: red" not in block.text


# --------------------------------------------------------------------------- sniffing


@pytest.mark.parametrize(
    ("data", "filename", "expected"),
    [
        (badfiles.text_pdf(pages=["x"]), "a.bin", PDF),
        (b"junk before header %PDF-1.7\n", "a.pdf", PDF),
        (badfiles.png_image(), "a.pdf", "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "a.pdf", "image/jpeg"),
        (b"GIF89a\x01\x00\x01\x00", "a.pdf", "image/gif"),
        (badfiles.zip_archive(), "a.docx", "application/zip"),
        (badfiles.elf_binary(), "a.txt", "application/x-executable"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100), "a.doc", "application/x-ole-storage"),
        (b"\n  <!DOCTYPE html><html><body>x</body></html>", "page.txt", HTML),
        (b"<html lang='en'><p>x</p></html>", "page.htm", HTML),
        (b"# Title\n\nText", "notes.md", MARKDOWN),
        (b"a,b\n1,2\n", "data.csv", CSV),
        (b"just words", "notes.txt", TEXT),
        (b"MZ-800 manual\n\nThe MZ-800 is a pump.", "mz.txt", TEXT),
        (b"MZ\x90\x00\x03\x00\x00\x00", "setup.txt", "application/vnd.microsoft.portable-executable"),
        (b"How a file starts: %PDF-1.7 and then objects.", "notes.md", MARKDOWN),
        (b'<p align="center"><img src="logo.png"></p>\n\n# Title\n\nNo <body> here.', "README.md", MARKDOWN),
        ("Café".encode("latin-1"), "cafe.txt", TEXT),
        ("\ufeffHello".encode("utf-16"), "utf16.txt", TEXT),
        (bytes(range(256)) * 8, "noise.txt", "application/octet-stream"),
    ],
)
def test_it_sniffs_media_type_from_content(data: bytes, filename: str, expected: str) -> None:
    assert sniff_media_type(data=data, filename=filename) == expected


def test_it_sniffs_docx_by_its_document_part() -> None:
    assert sniff_media_type(data=_sample_docx(), filename="terms.zip") == DOCX


# --------------------------------------------------------------------------- PDF


def test_it_keeps_pdf_page_numbers() -> None:
    data = badfiles.text_pdf(
        title="Quarterly report",
        pages=[
            "Revenue grew in the first quarter.",
            "The second page explains the margin of 17 percent.",
            "Outlook for the third quarter.",
        ],
    )

    document = parse_document(data=data, filename="report.pdf")

    assert document.media_type == PDF
    assert document.page_count == 3
    assert document.title == "Quarterly report"
    assert _block_with(document, "margin of 17 percent").page == 2
    assert _block_with(document, "Outlook").page == 3
    assert all(block.heading_path[0] == "Quarterly report" for block in document.blocks)


def test_it_takes_pdf_title_from_the_first_line_without_metadata() -> None:
    document = parse_document(data=badfiles.text_pdf(pages=["Safety rules\n\nWear boots."]), filename="x.pdf")

    assert document.title == "Safety rules"


def test_it_splits_pdf_paragraphs_and_joins_wrapped_lines() -> None:
    long_paragraph = "Every pump is tested at the factory before it leaves the warehouse. " * 6
    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    pdf.add_page()
    for text in (long_paragraph.strip(), "", "A separate paragraph about deliv-", "ery times."):
        pdf.multi_cell(0, 6, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    document = parse_document(data=bytes(pdf.output()), filename="x.pdf")
    texts = [block.text for block in document.blocks]

    assert long_paragraph.strip() in texts
    assert "A separate paragraph about delivery times." in texts


def test_it_uses_pdf_bookmarks_as_headings_and_drops_running_footers() -> None:
    class Handbook(FPDF):
        def footer(self) -> None:
            self.set_y(-15)
            self.set_font("Helvetica", size=8)
            self.cell(0, 10, f"Page {self.page_no()}", align="C")

    pdf = Handbook()
    pdf.set_title("Handbook")
    for heading, body in [("1. Leave", "Staff get 27 days of leave."), ("2. Travel", "Trains are booked.")]:
        pdf.add_page()
        pdf.start_section(heading)
        pdf.set_font("Helvetica", "B", 14)
        pdf.multi_cell(0, 8, heading, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(4)
        pdf.set_font("Helvetica", size=11)
        pdf.multi_cell(0, 6, body)

    document = parse_document(data=bytes(pdf.output()), filename="handbook.pdf")

    leave = _block_with(document, "27 days")
    assert leave.heading_path == ("Handbook", "1. Leave")
    assert leave.page == 1
    assert _block_with(document, "Trains").heading_path == ("Handbook", "2. Travel")
    assert "Page 1" not in _all_text(document)
    assert "1. Leave" not in [block.text for block in document.blocks]


# --------------------------------------------------------------------------- DOCX


def test_it_keeps_docx_headings_lists_and_tables() -> None:
    document = parse_document(data=_sample_docx(), filename="terms.docx")

    assert document.media_type == DOCX
    assert document.title == "Warranty terms"
    assert _block_with(document, "every pump").heading_path == ("Warranty terms",)
    wear = _block_with(document, "Impellers")
    assert wear.heading_path == ("Warranty terms", "Exclusions", "Wear parts")
    bullets = _block_with(document, "Damage from sand")
    assert bullets.kind == "list"
    assert bullets.text == "- Damage from sand\n- Damage from running dry"
    table = _block_with(document, "Seal")
    assert table.kind == "table"
    assert table.text == "Part | Months\nSeal | 12"
    assert table.heading_path == ("Warranty terms", "Exclusions", "Wear parts")
    assert _block_with(document, "14 days").heading_path == ("Warranty terms", "Claims")


def test_docx_headings_without_a_title_get_the_document_title_in_front() -> None:
    document = Document()
    document.add_heading("Scope", level=1)
    document.add_paragraph("Applies to pumps.")
    document.add_heading("Limits", level=1)
    document.add_paragraph("Two years.")

    parsed = parse_document(data=_docx(document), filename="service_terms.docx")

    assert parsed.title == "Service terms"
    assert _block_with(parsed, "Applies").heading_path == ("Service terms", "Scope")
    assert _block_with(parsed, "Two years").heading_path == ("Service terms", "Limits")


# --------------------------------------------------------------------------- HTML


def test_it_keeps_html_headings() -> None:
    html = b"""<html><head><title>Guide</title></head><body><main>
    <h1>Pump guide</h1><p>Intro text.</p>
    <section><h2>Installation</h2><h3>Wiring</h3><p>Use a 30 mA breaker.</p>
    <ol><li>Connect earth.</li><li>Connect phases.</li></ol>
    <table><tr><th>Model</th><th>Fuse</th></tr><tr><td>CV-240</td><td>10 A</td></tr></table>
    <pre>code  stays
  as is</pre>
    </section><h2>Service</h2><div>Loose text in a div.</div>
    <dl><dt>Interval</dt><dd>500 hours</dd></dl></main></body></html>"""

    document = parse_document(data=html, filename="guide.html")

    assert document.title == "Guide"
    assert document.media_type == HTML
    assert _block_with(document, "Intro").heading_path == ("Pump guide",)
    assert _block_with(document, "30 mA").heading_path == ("Pump guide", "Installation", "Wiring")
    steps = _block_with(document, "Connect earth")
    assert (steps.kind, steps.text) == ("list", "1. Connect earth.\n2. Connect phases.")
    table = _block_with(document, "CV-240")
    assert (table.kind, table.text) == ("table", "Model | Fuse\nCV-240 | 10 A")
    assert _block_with(document, "code").text == "code  stays\n  as is"
    assert _block_with(document, "Loose text").heading_path == ("Pump guide", "Service")
    assert _block_with(document, "500 hours").text == "Interval: 500 hours"


def test_it_honours_the_declared_html_charset() -> None:
    # The en dash and the euro sign sit where cp1252 and Latin-1 differ.
    html = '<html><head><meta charset="windows-1252"><title>Prix</title></head><body><p>Crème \u2013 5 €</p>'

    document = parse_document(data=html.encode("cp1252"), filename="prix.html")

    assert _all_text(document) == "Crème \u2013 5 €"


def test_it_parses_a_saved_web_page_named_txt_as_html() -> None:
    html = b"<!DOCTYPE html><html><body><script>x()</script><p>Visible words.</p></body></html>"

    document = parse_document(data=html, filename="page.txt")

    assert _all_text(document) == "Visible words."


# --------------------------------------------------------------------------- Markdown


def test_it_keeps_markdown_headings() -> None:
    markdown = b"""# Operating manual

Read this first.

## Safety

### Electrical

Use a **30 mA** residual-current device. See [the guide](https://example.com).

- Isolate the supply
- Lock it out
  1. with a padlock

| Model | Head |
|-------|------|
| CV-240 | 11 m |

```sh
pump --start
```

<div class="note">Raw <b>HTML</b> note<p>Second line</p></div>

## Maintenance

Check the oil.
"""
    document = parse_document(data=markdown, filename="manual.md")

    assert document.title == "Operating manual"
    assert document.media_type == MARKDOWN
    assert _block_with(document, "Read this first").heading_path == ("Operating manual",)
    electrical = _block_with(document, "30 mA")
    assert electrical.heading_path == ("Operating manual", "Safety", "Electrical")
    assert electrical.text == "Use a 30 mA residual-current device. See the guide."
    bullets = _block_with(document, "Isolate")
    assert (bullets.kind, bullets.text) == (
        "list",
        "- Isolate the supply\n- Lock it out\n  1. with a padlock",
    )
    assert _block_with(document, "CV-240").text == "Model | Head\nCV-240 | 11 m"
    assert _block_with(document, "pump --start").kind == "code"
    assert _block_with(document, "Raw HTML note").text == "Raw HTML note\nSecond line"
    assert _block_with(document, "oil").heading_path == ("Operating manual", "Maintenance")


def test_markdown_without_a_top_heading_gets_the_file_name_as_title() -> None:
    document = parse_document(
        data=b"## Setup\n\nPlug it in.\n\n## Use\n\nPress start.\n", filename="quick-start.md"
    )

    assert document.title == "Quick start"
    assert _block_with(document, "Plug").heading_path == ("Quick start", "Setup")
    assert _block_with(document, "Press").heading_path == ("Quick start", "Use")


def test_markdown_with_no_headings_at_all() -> None:
    document = parse_document(data=b"Just a note.\n", filename="quick_note.md")

    assert document.title == "Quick note"
    assert document.blocks == [Block(text="Just a note.", heading_path=("Quick note",))]


# --------------------------------------------------------------------------- TXT


def test_it_splits_text_on_blank_lines_and_finds_capital_headings() -> None:
    text = (
        b"PUMP FAQ\n"
        b"Answers for customers.\n"
        b"\n"
        b"ORDERING\n"
        b"\n"
        b"Q: How do I order?\n"
        b"A: Send the part number\n"
        b"to the parts desk.\n"
        b"\n"
        b"Returns\n"
        b"=======\n"
        b"Within 45 days.\n"
    )

    document = parse_document(data=b"\xef\xbb\xbf" + text, filename="faq.txt")

    assert document.title == "PUMP FAQ"
    assert document.media_type == TEXT
    assert _block_with(document, "Answers").heading_path == ("PUMP FAQ",)
    answer = _block_with(document, "How do I order")
    assert answer.text == "Q: How do I order?\nA: Send the part number to the parts desk."
    assert answer.heading_path == ("PUMP FAQ", "ORDERING")
    assert _block_with(document, "45 days").heading_path[-1] == "Returns"


# --------------------------------------------------------------------------- CSV


def test_it_keeps_csv_rows_whole() -> None:
    data = (
        b"part_number,name,compatible_models,price\n"
        b'TP-1,"Seal kit, small","CV-410; CV-660",184.50\n'
        b"\n"
        b"TP-2,Impeller,,142.00\n"
    )

    document = parse_document(data=data, filename="price-list.csv")

    assert document.media_type == CSV
    assert document.title == "Price list"
    assert document.blocks == [
        Block(
            text="part_number: TP-1; name: Seal kit, small; compatible_models: CV-410; CV-660; price: 184.50",
            heading_path=("Price list",),
            kind="row",
        ),
        Block(
            text="part_number: TP-2; name: Impeller; price: 142.00", heading_path=("Price list",), kind="row"
        ),
    ]


def test_it_sniffs_semicolon_csv_in_cp1252() -> None:
    data = "Artikel;Preis\nKühler;12,50\nDüse;3,10\n".encode("cp1252")

    document = parse_document(data=data, filename="preise.csv")

    assert [block.text for block in document.blocks] == [
        "Artikel: Kühler; Preis: 12,50",
        "Artikel: Düse; Preis: 3,10",
    ]


# --------------------------------------------------------------------------- demo corpus


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    writer = pytest.importorskip("knowledge.demo.writer")
    dest = tmp_path_factory.mktemp("demo")
    writer.write_demo_corpus(dest)
    return dest


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_it_parses_every_demo_document(demo_dir: Path) -> None:
    from knowledge.demo.writer import DOCUMENT_NAMES, demo_questions

    parsed = {
        name: parse_document(data=(demo_dir / name).read_bytes(), filename=name) for name in DOCUMENT_NAMES
    }

    for name, document in parsed.items():
        assert document.blocks, name
        assert all(block.heading_path for block in document.blocks), name
    # Every evaluation answer must survive parsing, or retrieval can never find it.
    for question in demo_questions(demo_dir):
        text = _normalise(_all_text(parsed[question["source"]]))
        assert question["answer"] in text, question


def test_demo_boilerplate_is_stripped(demo_dir: Path) -> None:
    from knowledge.demo.content import HR_POLICY_FILE, HTML_BOILERPLATE_MARKERS, PROCEDURE_FILE

    html = parse_document(data=(demo_dir / PROCEDURE_FILE).read_bytes(), filename=PROCEDURE_FILE)
    text = _all_text(html)
    for marker in HTML_BOILERPLATE_MARKERS:
        assert marker not in text, marker

    pdf = parse_document(data=(demo_dir / HR_POLICY_FILE).read_bytes(), filename=HR_POLICY_FILE)
    assert pdf.page_count is not None and pdf.page_count >= 3
    assert "Page 2 of" not in _all_text(pdf)
    leave = _block_with(pdf, "27 days of paid annual leave")
    assert leave.page == 2
    assert leave.heading_path[-1] == "4. Annual leave"
