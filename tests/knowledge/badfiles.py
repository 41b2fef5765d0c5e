"""Builders for the files people really upload by mistake, each returned as bytes.

Everything is built in memory at test time, so the repository holds no binary
fixtures and each file's flaw is spelled out in the code that makes it.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

from fpdf import FPDF
from pypdf import PdfReader, PdfWriter

CONTENT_TYPES_XML = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    "</Types>"
)
DOCUMENT_XML = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
    "<w:body><w:p><w:r><w:t>Harmless looking text.</w:t></w:r></w:p></w:body></w:document>"
)


def text_pdf(*, pages: list[str], title: str | None = None) -> bytes:
    """A PDF with a real text layer, one string per page."""
    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    if title is not None:
        pdf.set_title(title)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 6, text)
    return bytes(pdf.output())


def encrypted_pdf() -> bytes:
    """A PDF that opens only with the user password "secret"."""
    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    pdf.add_page()
    pdf.multi_cell(0, 6, "Salary bands for 2024. Confidential.")
    pdf.set_encryption(owner_password="owner-secret", user_password="secret")
    return bytes(pdf.output())


def owner_password_only_pdf() -> bytes:
    """An encrypted PDF with an empty user password: any viewer opens it without asking."""
    source = PdfReader(io.BytesIO(text_pdf(pages=["Printing is restricted, reading is not."])))
    writer = PdfWriter(clone_from=source)
    # RC4 because pypdf needs the optional `cryptography` package for AES.
    writer.encrypt(user_password="", owner_password="owner-secret", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def truncated_pdf() -> bytes:
    """A real three-page PDF cut in half, as an interrupted upload leaves it."""
    whole = text_pdf(
        pages=[f"Page {number} of a report that never fully arrived. " * 20 for number in (1, 2, 3)]
    )
    return whole[: len(whole) // 2]


def scanned_pdf() -> bytes:
    """A PDF whose pages hold only drawings, as a scanner without OCR produces."""
    pdf = FPDF()
    for _ in range(2):
        pdf.add_page()
        pdf.set_fill_color(40, 40, 40)
        pdf.rect(20, 20, 120, 80, style="F")
        pdf.line(20, 120, 180, 140)
    return bytes(pdf.output())


def empty_file() -> bytes:
    return b""


def png_image() -> bytes:
    """A valid 1x1 PNG, built by hand so the test needs no imaging library."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def zip_archive() -> bytes:
    """A plain ZIP of text files: not a DOCX, whatever its name says."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("notes.txt", "Meeting notes.")
        archive.writestr("budget.csv", "item,amount\npaper,12\n")
    return out.getvalue()


def docx_zip_bomb(*, padding_mb: int = 300) -> bytes:
    """A DOCX-shaped ZIP with a member of ``padding_mb`` MB of zeros.

    Written through ZipFile.open in 1 MB slices, so building it never holds the
    inflated member in memory; the result is about 1.4 MB at compression level 1.
    """
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES_XML)
        archive.writestr("word/document.xml", DOCUMENT_XML)
        zeros = bytes(1024 * 1024)
        with archive.open("word/media/image1.png", "w", force_zip64=True) as member:
            for _ in range(padding_mb):
                member.write(zeros)
    return out.getvalue()


def truncated_docx(docx: bytes) -> bytes:
    """A DOCX cut short: the ZIP central directory at its end is gone."""
    return docx[: len(docx) * 2 // 3]


def latin1_text() -> bytes:
    """Plain text saved by an old Windows editor: Latin-1, not UTF-8."""
    text = (
        "Café Müller opening hours\n"
        "\n"
        "The Café Müller in Köln opens at 8:00. Crème brûlée is served until 22:00.\n"
    )
    return text.encode("latin-1")


def html_with_script_and_nav() -> bytes:
    """A web page whose article is wrapped in scripts, menus and pager links."""
    return b"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Pump care | Example Portal</title>
<script>alert(1)</script>
<style>body { color: red; }</style>
</head>
<body>
<div id="main-nav" class="menu">
  <a href="/">Home</a> <a href="/shop">Shop</a> <a href="/about">About us</a>
</div>
<nav><ul><li><a href="/a">Products</a></li><li><a href="/b">Service menu entry</a></li></ul></nav>
<div class="breadcrumbs"><a href="/">Home</a> &gt; <a href="/care">Care</a></div>
<h1>Pump care</h1>
<p>Rinse the strainer with fresh water every week.<script>alert(1)</script></p>
<h2>Storage</h2>
<p>Store the pump upright in a frost-free room.</p>
<div class="pager"><a href="/p1">Prev</a> | <a href="/p3">Next</a> | <a href="/">Home</a></div>
<p>Prev | Next | Home</p>
<p><a href="#top">Back to top</a></p>
<footer>Copyright 2024 Example GmbH. All rights reserved.</footer>
<script>document.write("tracking pixel")</script>
</body></html>
"""


def elf_binary() -> bytes:
    """The first bytes of a Linux program, renamed to look like a text file."""
    return b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4
