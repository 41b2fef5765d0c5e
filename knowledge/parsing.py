"""Turn an uploaded file's bytes into text blocks that remember where they came from.

Every block keeps its heading path (and its page, for PDFs) so that a chunk, and the
answer citing it, can be traced back to a place a person can open. Anything that
cannot be read raises :class:`ParseError` with a reason written for the person who
uploaded the file, because that sentence is shown next to the file on the web page.

Pure Python, no database: the ingest worker calls :func:`parse_document` and stores
what comes back.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import Final

import docx
from bs4 import BeautifulSoup, NavigableString, Tag
from docx.document import Document as DocxDocument
from docx.text.paragraph import Paragraph
from lxml import etree
from markdown_it import MarkdownIt
from markdown_it.token import Token
from pypdf import PageObject, PasswordType, PdfReader
from pypdf.generic import Destination

__all__ = [
    "CSV",
    "DOCX",
    "HTML",
    "MARKDOWN",
    "PDF",
    "SUPPORTED_EXTENSIONS",
    "TEXT",
    "Block",
    "ParseError",
    "ParsedDocument",
    "parse_document",
    "sniff_media_type",
]

PDF: Final = "application/pdf"
DOCX: Final = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
HTML: Final = "text/html"
MARKDOWN: Final = "text/markdown"
TEXT: Final = "text/plain"
CSV: Final = "text/csv"

SUPPORTED_EXTENSIONS: Final[dict[str, str]] = {
    ".pdf": PDF,
    ".docx": DOCX,
    ".html": HTML,
    ".htm": HTML,
    ".md": MARKDOWN,
    ".markdown": MARKDOWN,
    ".txt": TEXT,
    ".csv": CSV,
}

_TEXT_TYPES: Final = frozenset({HTML, MARKDOWN, TEXT, CSV})
_ZIP: Final = "application/zip"
_OCTET_STREAM: Final = "application/octet-stream"

# How a sniffed media type is named in a sentence shown to the uploader.
_DESCRIPTIONS: Final[dict[str, str]] = {
    PDF: "a PDF document",
    DOCX: "a Word document (DOCX)",
    HTML: "an HTML page",
    MARKDOWN: "plain text",
    TEXT: "plain text",
    CSV: "plain text",
    _ZIP: "a ZIP archive",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "an Excel workbook (XLSX)",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": (
        "a PowerPoint presentation (PPTX)"
    ),
    "application/vnd.oasis.opendocument": "an OpenDocument file",
    "application/x-ole-storage": "an old-style Office file (DOC, XLS or PPT)",
    "image/png": "a PNG image",
    "image/jpeg": "a JPEG image",
    "image/gif": "a GIF image",
    "image/webp": "a WebP image",
    "image/tiff": "a TIFF image",
    "application/gzip": "a gzip archive",
    "application/x-7z-compressed": "a 7-Zip archive",
    "application/vnd.rar": "a RAR archive",
    "application/x-executable": "a program (ELF executable)",
    "application/vnd.microsoft.portable-executable": "a Windows program",
    "application/rtf": "an RTF document",
    "application/postscript": "a PostScript file",
    _OCTET_STREAM: "binary data, not text",
}

# Checked in order against the first bytes; longer, more specific signatures first.
_SIGNATURES: Final[tuple[tuple[bytes, str], ...]] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage"),
    (b"\x7fELF", "application/x-executable"),
    (b"\x1f\x8b", "application/gzip"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"Rar!\x1a\x07", "application/vnd.rar"),
    (b"{\\rtf", "application/rtf"),
    (b"%!PS", "application/postscript"),
)

_ENCRYPTED_PDF: Final = "This PDF is encrypted: remove the password and upload it again."
_SCANNED_PDF: Final = "No extractable text: the PDF seems to be scanned images; run OCR first."
_SUPPORTED_LIST: Final = "upload PDF, DOCX, HTML, Markdown, TXT or CSV."
_CONVERT_HINTS: Final[dict[str, str]] = {
    ".doc": " Open it in Word and save it as .docx first.",
    ".rtf": " Open it in Word and save it as .docx first.",
    ".odt": " Save it as .docx or PDF first.",
    ".xls": " Save the sheet as CSV first.",
    ".xlsx": " Save the sheet as CSV first.",
    ".ods": " Save the sheet as CSV first.",
    ".pptx": " Save the slides as PDF first.",
    ".ppt": " Save the slides as PDF first.",
}

# A DOCX member is "large" once a ratio above the limit could matter for memory.
_ZIP_RATIO_LIMIT: Final = 100
_ZIP_RATIO_MIN_MEMBER: Final = 10 * 1024 * 1024
_ZIP_MAX_MEMBERS: Final = 10_000


class ParseError(Exception):
    """The file cannot be turned into text; ``reason`` says what the uploader can do."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Block:
    """A run of text from one place in a document.

    ``kind`` is one of ``text``, ``table``, ``row`` (a CSV record, never split),
    ``code`` or ``list``; the chunker splits each kind along its own seams.
    """

    text: str
    heading_path: tuple[str, ...]
    page: int | None = None
    kind: str = "text"


@dataclass
class ParsedDocument:
    title: str
    media_type: str
    page_count: int | None
    blocks: list[Block]


# --------------------------------------------------------------------------- entry points


def sniff_media_type(*, data: bytes, filename: str) -> str:
    """Name the media type of ``data`` from its content.

    The filename only chooses between text formats, which bytes cannot tell apart
    (Markdown, CSV and plain text look the same); it never overrides a binary signature.
    """
    head = data[:1024]
    extension = _extension(filename)
    # Readers accept the header anywhere in the first 1024 bytes, but a text file that
    # merely mentions "%PDF-" is no PDF: only a file named .pdf gets that latitude.
    if head.lstrip().startswith(b"%PDF-") or (extension == ".pdf" and b"%PDF-" in head):
        return PDF
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _sniff_zip(data)
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "image/webp"
    # "MZ" alone also starts words; a real DOS header has NUL bytes right after it.
    if data.startswith(b"MZ") and b"\x00" in data[:64]:
        return "application/vnd.microsoft.portable-executable"
    for signature, media_type in _SIGNATURES:
        if data.startswith(signature):
            return media_type
    if not _looks_like_text(data):
        return _OCTET_STREAM
    # A README.md may open with <p align="center"> and still be Markdown: files named
    # as text count as HTML only when they open with <!doctype html> or <html>.
    if _looks_like_html(data, loose=extension not in (".md", ".markdown", ".txt", ".csv")):
        return HTML
    if extension in SUPPORTED_EXTENSIONS and SUPPORTED_EXTENSIONS[extension] in _TEXT_TYPES:
        return SUPPORTED_EXTENSIONS[extension]
    return TEXT


def parse_document(
    *, data: bytes, filename: str, max_unpacked_bytes: int = 200 * 1024 * 1024
) -> ParsedDocument:
    """Parse an uploaded file into blocks, or raise :class:`ParseError` saying why not."""
    extension = _extension(filename)
    expected = SUPPORTED_EXTENSIONS.get(extension)
    if expected is None:
        shown = f"'{extension}'" if extension else "(the file name has no extension)"
        hint = _CONVERT_HINTS.get(extension, "")
        raise ParseError(f"Unsupported file type {shown}: {_SUPPORTED_LIST}{hint}")
    if not data.strip():
        raise ParseError("The file is empty.")

    sniffed = sniff_media_type(data=data, filename=filename)
    if expected == PDF and sniffed == PDF:
        return _parse_pdf(data, filename=filename)
    # A damaged DOCX still starts like a ZIP; its parser says precisely what is wrong.
    if expected == DOCX and sniffed in (DOCX, _ZIP):
        return _parse_docx(data, filename=filename, max_unpacked_bytes=max_unpacked_bytes)
    if expected in _TEXT_TYPES and sniffed in _TEXT_TYPES:
        # A saved web page named .txt is still a web page: the tags must not reach the index.
        if sniffed == HTML or expected == HTML:
            return _parse_html(data, filename=filename)
        if expected == MARKDOWN:
            return _parse_markdown(data, filename=filename)
        if expected == CSV:
            return _parse_csv(data, filename=filename)
        return _parse_text(data, filename=filename)
    raise ParseError(_mismatch_reason(extension=extension, sniffed=sniffed))


def _mismatch_reason(*, extension: str, sniffed: str) -> str:
    description = _DESCRIPTIONS.get(sniffed, "a different kind of file")
    if sniffed == _OCTET_STREAM:
        return f"The file is named {extension} but its content is binary data, not text."
    right_extension = next((ext for ext, media in SUPPORTED_EXTENSIONS.items() if media == sniffed), None)
    if right_extension is not None and sniffed not in (MARKDOWN, CSV, TEXT):
        advice = f"rename it to {right_extension} and upload it again."
    else:
        advice = "check that you picked the right file."
    return f"The file is named {extension} but its content is {description}: {advice}"


# --------------------------------------------------------------------------- sniffing helpers


def _extension(filename: str) -> str:
    # Old browsers send the whole Windows path; only the last component names the file.
    return PurePosixPath(filename.replace("\\", "/")).suffix.lower()


def _sniff_zip(data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError):
        return _ZIP
    if "word/document.xml" in names:
        return DOCX
    if "xl/workbook.xml" in names:
        return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    if "ppt/presentation.xml" in names:
        return "application/vnd.openxmlformats-officedocument.presentationml.presentation"
    if "mimetype" in names and "content.xml" in names:
        return "application/vnd.oasis.opendocument"
    return _ZIP


_BOMS: Final[tuple[tuple[bytes, str], ...]] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _bom_encoding(data: bytes) -> str | None:
    # UTF-32 LE starts with the UTF-16 LE BOM, hence the order of _BOMS.
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding
    return None


def _looks_like_text(data: bytes) -> bool:
    if _bom_encoding(data) is not None:
        return True
    sample = data[:8192]
    if b"\x00" in sample:
        return False
    try:
        # Not final: the sample may end in the middle of a multi-byte character.
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return True
    except UnicodeDecodeError:
        pass
    # Single-byte text (Latin-1, cp1252) decodes anyway; binary shows itself by control bytes.
    controls = sum(1 for byte in sample if byte < 0x20 and byte not in b"\t\n\r\f\v\x1a")
    return controls <= len(sample) // 100


_HTML_START: Final = re.compile(
    rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html)[\s>]", re.I | re.S
)
_HTML_TAGS: Final = re.compile(rb"<(?:html|head|body)[\s>]", re.I)


def _looks_like_html(data: bytes, *, loose: bool) -> bool:
    encoding = _bom_encoding(data)
    head = data[:4096]
    if encoding is not None and encoding != "utf-8-sig":
        head = data[:8192].decode(encoding, errors="replace").encode("utf-8")
    head = head.removeprefix(codecs.BOM_UTF8)
    if _HTML_START.match(head):
        return True
    return loose and head.lstrip().startswith(b"<") and _HTML_TAGS.search(head) is not None


# --------------------------------------------------------------------------- decoding


def _decode_text(data: bytes) -> str:
    """Decode text whose encoding nobody declared: UTF-8, else cp1252, else Latin-1."""
    encoding = _bom_encoding(data)
    if encoding is not None:
        return _normalise_newlines(data.decode(encoding, errors="replace"))
    for candidate in ("utf-8", "cp1252"):
        try:
            return _normalise_newlines(data.decode(candidate))
        except UnicodeDecodeError:
            continue
    # Latin-1 maps every byte, so this is the last resort that never fails.
    return _normalise_newlines(data.decode("latin-1"))


_DECLARED_CHARSET: Final = re.compile(rb"""(?:charset|encoding)\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)


def _decode_html(data: bytes) -> str:
    if _bom_encoding(data) is not None:
        return _decode_text(data)
    match = _DECLARED_CHARSET.search(data[:4096])
    if match is not None:
        declared = match.group(1).decode("ascii", errors="ignore").lower()
        # Browsers read pages labelled Latin-1 or ASCII as windows-1252, and so do we.
        if declared in ("iso-8859-1", "latin-1", "latin1", "us-ascii", "ascii", "iso8859-1"):
            declared = "cp1252"
        try:
            return _normalise_newlines(data.decode(declared))
        except (LookupError, UnicodeDecodeError):
            pass
    return _decode_text(data)


def _normalise_newlines(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return unicodedata.normalize("NFC", text)


_INVISIBLE: Final = re.compile("[\u00ad\u200b\u200c\u200d\u2060\ufeff]")
_SPACES: Final = re.compile(r"\s+")


def _clean_inline(text: str) -> str:
    return _SPACES.sub(" ", _INVISIBLE.sub("", text)).strip()


def _clean_lines(text: str) -> str:
    lines = (_clean_inline(line) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def _same_text(left: str, right: str) -> bool:
    return _comparable(left) == _comparable(right)


def _comparable(text: str) -> str:
    return re.sub(r"\W+", " ", text.casefold()).strip()


def _title_from_filename(filename: str) -> str:
    stem = PurePosixPath(filename.replace("\\", "/")).stem
    title = _clean_inline(re.sub(r"[_-]+", " ", stem))
    if title.islower():
        title = title[:1].upper() + title[1:]
    return title or "Untitled document"


# --------------------------------------------------------------------------- section tracking


class _Sections:
    """Collects blocks while headings come and go, keeping each block's heading path."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.headings: list[tuple[int, str]] = []
        self._stack: list[tuple[int, str]] = []
        self._bare = False
        self._bare_page: int | None = None

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(text for _, text in self._stack)

    def heading(self, *, level: int, text: str, page: int | None = None) -> None:
        text = _clean_inline(text)
        if not text:
            return
        if self._bare and self._stack and self._stack[-1][0] >= level:
            self._keep_bare_heading()
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, text))
        self.headings.append((level, text))
        self._bare = True
        self._bare_page = page

    def add(self, *, text: str, kind: str = "text", page: int | None = None) -> None:
        text = text.strip()
        if not text:
            return
        self.blocks.append(Block(text=text, heading_path=self.path, page=page, kind=kind))
        self._bare = False

    def finish(self, *, title: str) -> list[Block]:
        if self._bare and self._stack:
            self._keep_bare_heading()
        # A document that opens with one heading above all others has its title in the
        # path already; any other shape gets the title in front so a chunk still says
        # which document it belongs to.
        has_title_heading = self.title_heading is not None
        anchored = []
        for block in self.blocks:
            path = block.heading_path
            if not path or not has_title_heading:
                path = path if path and _same_text(path[0], title) else (title, *path)
            anchored.append(replace(block, heading_path=path) if path != block.heading_path else block)
        return anchored

    @property
    def title_heading(self) -> str | None:
        """The first heading, when it stands above every other heading in the document."""
        if not self.headings:
            return None
        top = min(level for level, _ in self.headings)
        if self.headings[0][0] != top or sum(1 for level, _ in self.headings if level == top) > 1:
            return None
        return self.headings[0][1]

    def _keep_bare_heading(self) -> None:
        # A heading followed straight by a sibling (numbered steps mistaken for headings,
        # an empty section) would vanish from the index: keep its words as text.
        level, text = self._stack[-1]
        parent = tuple(heading for heading_level, heading in self._stack if heading_level < level)
        self.blocks.append(Block(text=text, heading_path=parent, page=self._bare_page))
        self._bare = False


# --------------------------------------------------------------------------- PDF


def _parse_pdf(data: bytes, *, filename: str) -> ParsedDocument:
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        encrypted = reader.is_encrypted
    except Exception as exc:
        raise _damaged_pdf(data, exc) from exc
    if encrypted:
        try:
            # An owner password alone only restricts printing or copying: the empty user
            # password opens it, and the text is ours to index.
            opened = reader.decrypt("")
        except Exception:
            # pypdf needs the optional `cryptography` package for AES; without it an
            # AES file cannot be opened even with an empty password.
            opened = PasswordType.NOT_DECRYPTED
        if opened == PasswordType.NOT_DECRYPTED:
            raise ParseError(_ENCRYPTED_PDF)

    try:
        pages = list(reader.pages)
    except Exception as exc:
        raise _damaged_pdf(data, exc) from exc
    if not pages:
        raise ParseError("The PDF has no pages.")

    page_lines = [_pdf_page_lines(page, number=number) for number, page in enumerate(pages, start=1)]
    if not any(line for lines in page_lines for line in lines):
        raise ParseError(_SCANNED_PDF)
    page_lines = _drop_running_lines(page_lines)

    title = _pdf_title(reader, page_lines) or _title_from_filename(filename)
    outline = _pdf_outline(reader)
    sections = _Sections()
    for number, lines in enumerate(page_lines, start=1):
        _pdf_page_blocks(
            sections,
            lines=lines,
            page=number,
            outline=[entry for entry in outline if entry[2] == number],
            use_numbering=not outline,
        )
    blocks = sections.finish(title=title)
    # The title printed on the first page is already the head of every heading path,
    # unless it is all the text there is.
    blocks = [block for block in blocks if not (block.page == 1 and _same_text(block.text, title))] or blocks
    if not blocks:
        raise ParseError(_SCANNED_PDF)
    return ParsedDocument(title=title, media_type=PDF, page_count=len(pages), blocks=blocks)


def _damaged_pdf(data: bytes, exc: Exception) -> ParseError:
    if b"%%EOF" not in data[-2048:]:
        return ParseError(
            "The PDF is damaged or truncated (its end is missing, so the upload or download was "
            "probably cut short): upload the complete file again."
        )
    return ParseError(
        f"The PDF is damaged or truncated ({_detail(exc)}): save or export it again and upload the new file."
    )


def _detail(exc: BaseException) -> str:
    text = _clean_inline(str(exc)) or type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def _pdf_page_lines(page: PageObject, *, number: int) -> list[str]:
    # Layout mode reproduces the vertical gaps between paragraphs as blank lines, which
    # plain mode drops; it is fussier about odd fonts, so plain mode is the fallback.
    try:
        raw = page.extract_text(extraction_mode="layout")
    except Exception:
        try:
            raw = page.extract_text()
        except Exception as exc:
            raise ParseError(
                f"The PDF is damaged: page {number} could not be read ({_detail(exc)}). "
                "Save or export it again and upload the new file."
            ) from exc
    raw = unicodedata.normalize("NFC", raw or "")
    # Layout mode pads with spaces to reproduce horizontal positions.
    lines = [_INVISIBLE.sub("", re.sub(r"[ \t\u00a0]{2,}", " ", line)).strip() for line in raw.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


_FILE_NAME: Final = re.compile(r"\.(?:docx?|pdf|odt|rtf|txt|indd|pptx?|xlsx?|html?)$", re.I)
_PAGE_NUMBER: Final = re.compile(
    r"^(?:page|p\.|seite)?\s*[-\u2013\u2014(]?\s*#\s*[-\u2013\u2014)]?(?:\s*(?:of|/|von)\s*#)?$"
)


def _running_key(line: str) -> str:
    return re.sub(r"\d+", "#", _clean_inline(line).lower())


def _drop_running_lines(page_lines: list[list[str]]) -> list[list[str]]:
    """Drop running headers, footers and page numbers found at the top or bottom of pages."""

    def edges(lines: list[str]) -> list[int]:
        filled = [index for index, line in enumerate(lines) if line]
        return sorted(set(filled[:2] + filled[-2:]))

    pages_with_text = sum(1 for lines in page_lines if any(lines))
    seen: Counter[str] = Counter()
    for lines in page_lines:
        seen.update({_running_key(lines[index]) for index in edges(lines)})
    repeated = {
        key
        for key, count in seen.items()
        if pages_with_text >= 2 and count >= 2 and count * 2 >= pages_with_text
    }
    cleaned = []
    for lines in page_lines:
        kept = list(lines)
        for index in edges(lines):
            key = _running_key(lines[index])
            if key in repeated or _PAGE_NUMBER.match(key):
                kept[index] = ""
        cleaned.append(kept)
    return cleaned


def _pdf_title(reader: PdfReader, page_lines: list[list[str]]) -> str:
    try:
        metadata = reader.metadata
        title = _clean_inline(str(metadata.title or "")) if metadata is not None else ""
    except Exception:
        title = ""
    title = title.removeprefix("Microsoft Word - ")
    # Converters often store the source file name, which is no title at all.
    if title.lower() in ("untitled", "title", "document") or _FILE_NAME.search(title):
        title = ""
    if title:
        return title
    for lines in page_lines:
        for line in lines:
            if line:
                return line[:120]
    return ""


def _pdf_outline(reader: PdfReader) -> list[tuple[int, str, int]]:
    """Flatten the bookmarks into (level, title, page) in reading order."""
    entries: list[tuple[int, str, int]] = []

    def visit(items: list[Destination | list], level: int) -> None:
        for item in items:
            if isinstance(item, list):
                visit(item, level + 1)
                continue
            try:
                title = _clean_inline(str(item.title or ""))
                page_index = reader.get_destination_page_number(item)
            except Exception:
                continue
            if title and page_index is not None and page_index >= 0:
                entries.append((level, title, page_index + 1))

    try:
        visit(list(reader.outline), 1)
    except Exception:
        return []
    return entries


_NUMBERED_HEADING: Final = re.compile(r"^(\d{1,2}(?:\.\d{1,2}){0,3})\.?\s+[A-ZÄÖÜ][^\n]{1,70}$")


def _pdf_page_blocks(
    sections: _Sections,
    *,
    lines: list[str],
    page: int,
    outline: list[tuple[int, str, int]],
    use_numbering: bool,
) -> None:
    pending = list(outline)
    paragraph: list[str] = []

    def flush() -> None:
        if not paragraph:
            return
        text = _join_lines(paragraph)
        paragraph.clear()
        numbered = _NUMBERED_HEADING.match(text)
        if use_numbering and numbered and "\n" not in text and not re.search(r"[.,;:!?]$", text):
            sections.heading(level=numbered.group(1).count(".") + 1, text=text, page=page)
            return
        kind = "list" if all(_LIST_MARKER.match(line) for line in text.split("\n")) else "text"
        sections.add(text=text, kind=kind, page=page)

    index = 0
    while index < len(lines):
        line = lines[index]
        if not line:
            flush()
            index += 1
            continue
        matched = _match_outline(lines, index, pending)
        if matched is not None:
            position, used_lines = matched
            flush()
            for level, heading, _ in pending[: position + 1]:
                sections.heading(level=level, text=heading, page=page)
            del pending[: position + 1]
            index += used_lines
            continue
        paragraph.append(line)
        index += 1
    flush()
    # Bookmarks whose words never showed up on the page still open their section, so
    # the following pages land under the right heading.
    for level, heading, _ in pending:
        sections.heading(level=level, text=heading, page=page)


def _match_outline(
    lines: list[str], index: int, pending: list[tuple[int, str, int]]
) -> tuple[int, int] | None:
    if not pending:
        return None
    one = _comparable(lines[index])
    two = (
        _comparable(" ".join(lines[index : index + 2])) if index + 1 < len(lines) and lines[index + 1] else ""
    )
    for position, (_, heading, _) in enumerate(pending):
        wanted = _comparable(heading)
        if one == wanted:
            return position, 1
        if two and two == wanted:
            return position, 2
    return None


_LIST_MARKER: Final = re.compile(r"^(?:[-\u2013\u2022*\u25aa\u25e6\u00b7]|\(?\d{1,3}[.)]|\(?[a-z][.)])\s+")
_LINE_LABEL: Final = re.compile(r"^[A-Z][\w ]{0,20}:\s")


def _join_lines(lines: list[str]) -> str:
    """Join lines a layout wrapped, keeping list items and labelled lines on their own."""
    joined: list[str] = []
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if not joined or _LIST_MARKER.match(line) or _LINE_LABEL.match(line):
            joined.append(line)
            continue
        previous = joined[-1]
        last_word = previous.rsplit(" ", 1)[-1]
        # "docu-" + "ment" was hyphenated by the layout; "return-to-" + "work" was not.
        if re.search(r"[^\W\d_]-$", previous) and line[:1].islower() and "-" not in last_word[:-1]:
            joined[-1] = previous[:-1] + line
        else:
            joined[-1] = f"{previous} {line}"
    return "\n".join(joined)


# --------------------------------------------------------------------------- DOCX

_W: Final = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MC_FALLBACK: Final = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"


def _check_zip(data: bytes, *, max_unpacked_bytes: int, label: str) -> zipfile.ZipFile:
    """Open the archive, refusing zip bombs before a single member is inflated."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except Exception as exc:
        raise ParseError(
            f"The {label} is damaged or truncated: it is not a readable ZIP archive. "
            "Save it again and upload the new file."
        ) from exc
    if len(members) > _ZIP_MAX_MEMBERS:
        raise ParseError(f"The {label} contains {len(members):,} files inside: refusing a possible zip bomb.")
    # The sizes come from the central directory; zipfile never inflates a member past
    # its declared size, so a lying directory cannot get past this check either.
    unpacked = sum(member.file_size for member in members)
    if unpacked > max_unpacked_bytes:
        raise ParseError(
            f"The {label} would expand to {_megabytes(unpacked)} when unpacked: refusing a possible zip bomb."
        )
    for member in members:
        if member.file_size >= _ZIP_RATIO_MIN_MEMBER:
            ratio = member.file_size / max(member.compress_size, 1)
            if ratio > _ZIP_RATIO_LIMIT:
                raise ParseError(
                    f"The {label} holds a part that is compressed {ratio:,.0f} to 1 and would expand to "
                    f"{_megabytes(member.file_size)}: refusing a possible zip bomb."
                )
    return archive


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):,.0f} MB"


def _parse_docx(data: bytes, *, filename: str, max_unpacked_bytes: int) -> ParsedDocument:
    archive = _check_zip(data, max_unpacked_bytes=max_unpacked_bytes, label="DOCX")
    with archive:
        if "word/document.xml" not in archive.namelist():
            raise ParseError(
                "The file is named .docx but it is not a Word document (it has no word/document.xml): "
                "save it from Word as DOCX and upload it again."
            )
    try:
        document = docx.Document(io.BytesIO(data))
        body = document.element.body
    except Exception as exc:
        raise ParseError(
            f"The DOCX could not be opened as a Word document ({_detail(exc)}): "
            "save it again from Word as .docx and upload the new file."
        ) from exc

    sections = _Sections()
    list_lines: list[str] = []

    def flush_list() -> None:
        if list_lines:
            sections.add(text="\n".join(list_lines), kind="list")
            list_lines.clear()

    try:
        for element in _docx_body_elements(body):
            if element.tag == f"{_W}tbl":
                flush_list()
                sections.add(text=_docx_table_text(element), kind="table")
                continue
            text = _clean_lines(_docx_text(element))
            if not text:
                continue
            style_names = _docx_style_names(document, element)
            if any(name.lower().startswith("toc") for name in style_names[:1]):
                # A table of contents repeats the headings with page numbers: noise.
                continue
            level = _docx_heading_level(element, style_names)
            if level is not None:
                flush_list()
                sections.heading(level=level, text=text)
            elif _docx_is_list_item(element, style_names):
                list_lines.append(f"- {_clean_inline(text)}")
            else:
                flush_list()
                sections.add(text=text)
        flush_list()
    except ParseError:
        raise
    except Exception as exc:
        raise ParseError(
            f"The DOCX is damaged and could not be read ({_detail(exc)}): save it again from Word and "
            "upload the new file."
        ) from exc

    try:
        core_title = _clean_inline(document.core_properties.title or "")
    except Exception:
        # A broken docProps/core.xml costs the title, not the document.
        core_title = ""
    title = sections.title_heading or core_title or _title_from_filename(filename)
    blocks = sections.finish(title=title)
    if not blocks:
        raise ParseError("The DOCX contains no text.")
    return ParsedDocument(title=title, media_type=DOCX, page_count=None, blocks=blocks)


def _docx_body_elements(parent: etree._Element) -> Iterator[etree._Element]:
    """Paragraphs and tables in reading order, including those inside content controls."""
    for child in parent.iterchildren():
        if child.tag in (f"{_W}p", f"{_W}tbl"):
            yield child
        elif child.tag == f"{_W}sdt":
            content = child.find(f"{_W}sdtContent")
            if content is not None:
                yield from _docx_body_elements(content)
        elif child.tag == f"{_W}customXml":
            yield from _docx_body_elements(child)


def _docx_text(element: etree._Element) -> str:
    # Reading the XML rather than Paragraph.text keeps tracked insertions (w:ins), and
    # skipping mc:Fallback avoids reading a text box twice.
    parts: list[str] = []
    for node in element.iter(f"{_W}t", f"{_W}tab", f"{_W}br", f"{_W}cr"):
        if any(ancestor.tag == _MC_FALLBACK for ancestor in node.iterancestors()):
            continue
        if node.tag == f"{_W}t":
            parts.append(node.text or "")
        elif node.tag == f"{_W}tab":
            parts.append(" ")
        else:
            parts.append("\n")
    return "".join(parts)


def _docx_style_names(document: DocxDocument, paragraph: etree._Element) -> list[str]:
    """The paragraph's style name followed by the names of the styles it is based on."""
    names: list[str] = []
    try:
        style = Paragraph(paragraph, document).style
    except Exception:
        return names
    while style is not None and len(names) < 8:
        names.append(style.name or "")
        style = style.base_style
    return names


_HEADING_STYLE: Final = re.compile(r"^heading\s*([1-9])$", re.I)


def _docx_heading_level(paragraph: etree._Element, style_names: list[str]) -> int | None:
    for name in style_names:
        if name.lower() == "title":
            return 0
        match = _HEADING_STYLE.match(name.strip())
        if match is not None:
            return int(match.group(1))
    # Custom heading styles from other editors often carry only an outline level.
    properties = paragraph.find(f"{_W}pPr")
    outline = properties.find(f"{_W}outlineLvl") if properties is not None else None
    if outline is not None:
        value = outline.get(f"{_W}val", "")
        if value.isdigit() and int(value) < 9:
            return int(value) + 1
    return None


def _docx_is_list_item(paragraph: etree._Element, style_names: list[str]) -> bool:
    if any(name.lower().startswith("list") for name in style_names):
        return True
    properties = paragraph.find(f"{_W}pPr")
    return properties is not None and properties.find(f"{_W}numPr") is not None


def _docx_table_text(table: etree._Element) -> str:
    rows: list[str] = []
    for row in table.iterchildren(f"{_W}tr"):
        # Each w:tc appears once however many grid columns it spans, so merged
        # cells are not repeated the way python-docx's row.cells repeats them.
        cells = [
            _clean_inline(" ".join(_docx_text(paragraph) for paragraph in cell.iter(f"{_W}p")))
            for cell in row.iterchildren(f"{_W}tc")
        ]
        while cells and not cells[-1]:
            cells.pop()
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows)


# --------------------------------------------------------------------------- HTML

_DROP_TAGS: Final = tuple(
    [
        "script",
        "style",
        "noscript",
        "template",
        "svg",
        "iframe",
        "object",
        "embed",
        "canvas",
        "button",
        "select",
        "input",
        "textarea",
        "dialog",
    ]
)
_DROP_ROLES: Final = frozenset({"navigation", "banner", "contentinfo", "search", "menu", "menubar"})
_BOILERPLATE_WORDS: Final = frozenset(
    [
        "nav",
        "navbar",
        "navigation",
        "menu",
        "menubar",
        "breadcrumb",
        "breadcrumbs",
        "sidebar",
        "footer",
        "toc",
        "pagination",
        "pager",
        "skiplink",
        "cookie",
        "cookies",
        "consent",
    ]
)
_HEADING_TAGS: Final = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_TEXT_TAGS: Final = frozenset({"p", "dt", "dd", "figcaption", "caption", "legend", "summary"})
_BLOCK_TAGS: Final = (
    frozenset(
        [
            "address",
            "article",
            "aside",
            "blockquote",
            "body",
            "center",
            "details",
            "div",
            "dl",
            "fieldset",
            "figure",
            "footer",
            "header",
            "hgroup",
            "hr",
            "html",
            "li",
            "main",
            "nav",
            "ol",
            "pre",
            "section",
            "table",
            "ul",
        ]
    )
    | _TEXT_TAGS
    | frozenset(_HEADING_TAGS)
)
# Words that make up "Prev | Next | Home", "Back to top", "Skip to main content".
_NAV_WORDS: Final = frozenset(
    [
        "prev",
        "previous",
        "next",
        "home",
        "back",
        "to",
        "top",
        "skip",
        "content",
        "main",
        "navigation",
        "menu",
        "index",
        "contents",
        "table",
        "of",
        "print",
        "share",
        "page",
        "first",
        "last",
        "older",
        "newer",
        "up",
        "go",
    ]
)
# Marks a <br> through whitespace collapsing, to become a line break afterwards.
_BREAK: Final = "\ue000"


def _parse_html(data: bytes, *, filename: str) -> ParsedDocument:
    soup = BeautifulSoup(_decode_html(data), "lxml")
    title_tag = soup.find("title")
    first_h1 = soup.find("h1")
    title = _clean_inline(title_tag.get_text()) if title_tag is not None else ""
    title = title or (_clean_inline(first_h1.get_text(" ")) if first_h1 is not None else "")
    title = title or _title_from_filename(filename)

    for tag in soup.find_all(["head", *_DROP_TAGS]):
        if not tag.decomposed:
            tag.decompose()
    for br in soup.find_all("br"):
        br.replace_with(_BREAK)
    root = _html_root(soup)
    _drop_html_boilerplate(root)

    sections = _Sections()
    _HtmlWalker(sections).walk(root)
    blocks = sections.finish(title=title)
    if not blocks:
        raise ParseError("The HTML page contains no readable text.")
    return ParsedDocument(title=title, media_type=HTML, page_count=None, blocks=blocks)


def _html_root(soup: BeautifulSoup) -> Tag:
    body = soup.body or soup
    candidates = soup.find_all("main") or soup.find_all(role="main")
    if len(candidates) != 1:
        candidates = soup.find_all("article")
    if len(candidates) == 1:
        chosen = candidates[0]
        # A <main> that holds a fraction of the page is a mislabelled widget.
        if len(chosen.get_text(" ", strip=True)) >= min(200, len(body.get_text(" ", strip=True)) // 3):
            return chosen
    return body


def _drop_html_boilerplate(root: Tag) -> None:
    for tag in list(root.find_all(True)):
        if tag.decomposed:
            continue
        if tag.has_attr("hidden") or tag.get("aria-hidden") == "true":
            tag.decompose()
            continue
        style = str(tag.get("style", "")).replace(" ", "").lower()
        if "display:none" in style or "visibility:hidden" in style:
            tag.decompose()
            continue
        if tag.name in ("nav", "aside", "footer"):
            tag.decompose()
        elif tag.name == "header":
            # An article's own <header> usually carries its h1; the site banner does not.
            in_content = tag.find_parent(["article", "main"]) is not None or root.name in ("article", "main")
            if not (in_content and tag.find(list(_HEADING_TAGS))):
                tag.decompose()
        elif str(tag.get("role", "")).lower() in _DROP_ROLES:
            tag.decompose()

    total = len(root.get_text(" ", strip=True))
    for tag in list(root.find_all(True)):
        if tag.decomposed or not (tag.name == "form" or _names_boilerplate(tag)):
            continue
        # Class names like "has-sidebar" can sit on the wrapper of the whole article, and
        # ASP.NET wraps whole pages in one <form>: an element holding most of the text is
        # content, whatever its name says.
        if tag.find("h1") is None and len(tag.get_text(" ", strip=True)) * 2 < max(total, 1):
            tag.decompose()


def _names_boilerplate(tag: Tag) -> bool:
    classes = tag.get("class")
    names = [str(tag.get("id") or ""), *([classes] if isinstance(classes, str) else list(classes or []))]
    for name in names:
        for word in re.split(r"[^a-z0-9]+", name.lower()):
            if word in _BOILERPLATE_WORDS:
                return True
            if word.startswith(("nav", "menu")) or word.endswith(("nav", "menu")):
                return True
    return False


def _is_nav_line(line: str) -> bool:
    """True for short lines made only of navigation words: "Prev | Next | Home", "Back to top"."""
    if len(line) > 60:
        return False
    words = re.findall(r"[^\W_]+", line.lower())
    return all(word in _NAV_WORDS or word.isdigit() for word in words)


class _HtmlWalker:
    """Walks the content in document order, turning block elements into blocks."""

    def __init__(self, sections: _Sections) -> None:
        self.sections = sections
        self.inline: list[tuple[str, bool]] = []

    def walk(self, element: Tag) -> None:
        for child in element.children:
            if isinstance(child, NavigableString):
                # Comments, doctypes and CDATA are NavigableString subclasses.
                if type(child) is NavigableString:
                    self.inline.append((str(child), False))
                continue
            if not isinstance(child, Tag):
                continue
            name = child.name
            if name in _HEADING_TAGS:
                self.flush()
                self.sections.heading(level=_HEADING_TAGS[name], text=_html_text(child))
            elif name in ("ul", "ol"):
                self.flush()
                self._list(child)
            elif name == "dl" and child.find(list(_HEADING_TAGS)) is None:
                self.flush()
                self.sections.add(text=_definition_list_text(child))
            elif name == "pre":
                self.flush()
                code = "\n".join(line.rstrip() for line in child.get_text().replace(_BREAK, "\n").split("\n"))
                self.sections.add(text=code.strip("\n"), kind="code")
            elif name == "table":
                self.flush()
                if child.find(["p", "div", "table", "ul", "ol", *_HEADING_TAGS]) is not None:
                    # A layout table: its cells hold whole sections, not data.
                    self.walk(child)
                else:
                    self.sections.add(text=_html_table_text(child), kind="table")
            elif name in _BLOCK_TAGS or child.find(list(_BLOCK_TAGS)) is not None:
                self.flush()
                self.walk(child)
                self.flush()
            else:
                self.inline.extend(_inline_parts(child))

    def flush(self) -> None:
        parts, self.inline = self.inline, []
        if not parts or _is_link_only(parts):
            return
        text = _html_lines("".join(text for text, _ in parts))
        kept = [line for line in text.split("\n") if not _is_nav_line(line)]
        self.sections.add(text="\n".join(kept))

    def _list(self, element: Tag) -> None:
        items = element.find_all("li", recursive=False)
        if items and all(_is_anchor_link(item) for item in items):
            # An in-page table of contents only repeats the headings.
            return
        lines = self._list_lines(element, depth=0)
        if lines:
            self.sections.add(text="\n".join(lines), kind="list")

    def _list_lines(self, element: Tag, *, depth: int) -> list[str]:
        ordered = element.name == "ol"
        start = str(element.get("start", "1"))
        number = int(start) if start.lstrip("-").isdigit() else 1
        lines: list[str] = []
        for item in element.find_all("li", recursive=False):
            nested = [
                child for child in item.children if isinstance(child, Tag) and child.name in ("ul", "ol")
            ]
            parts: list[tuple[str, bool]] = []
            for child in item.children:
                if child not in nested:
                    parts.extend(_inline_parts(child))
            text = _clean_inline(_html_lines("".join(part for part, _ in parts)).replace("\n", " "))
            if text and not _is_link_only(parts) and not _is_nav_line(text):
                marker = f"{number}." if ordered else "-"
                lines.append(f"{'  ' * depth}{marker} {text}")
            number += 1
            for sub in nested:
                lines.extend(self._list_lines(sub, depth=depth + 1))
        return lines


def _inline_parts(node: object) -> list[tuple[str, bool]]:
    """Text pieces of ``node``, each flagged whether it sits inside a link."""
    if isinstance(node, NavigableString):
        return [(str(node), node.find_parent("a") is not None)] if type(node) is NavigableString else []
    if not isinstance(node, Tag):
        return []
    return [
        (str(string), string.find_parent("a") is not None)
        for string in node.find_all(string=True)
        if type(string) is NavigableString
    ]


def _is_link_only(parts: list[tuple[str, bool]]) -> bool:
    # "Imprint · Privacy · Contact": several links held together by separators only.
    links = [text for text, in_link in parts if in_link and text.strip()]
    loose = "".join(text for text, in_link in parts if not in_link)
    total = len(_clean_inline("".join(text for text, _ in parts)))
    return len(links) >= 2 and total <= 120 and not re.search(r"[^\W_]", loose)


def _is_anchor_link(item: Tag) -> bool:
    links = item.find_all("a", recursive=True)
    text = _clean_inline(item.get_text(" "))
    link_text = _clean_inline(" ".join(link.get_text(" ") for link in links))
    return (
        bool(links) and all(str(link.get("href", "")).startswith("#") for link in links) and text == link_text
    )


def _html_text(tag: Tag) -> str:
    return _clean_inline(tag.get_text(" ").replace(_BREAK, " "))


def _html_lines(text: str) -> str:
    lines = (_clean_inline(line) for line in text.split(_BREAK))
    return "\n".join(line for line in lines if line)


def _definition_list_text(definitions: Tag) -> str:
    # "Term: definition" on one line keeps a term and its meaning in the same chunk.
    lines: list[str] = []
    term, defined = "", True
    for child in definitions.find_all(["dt", "dd"]):
        text = _html_text(child)
        if child.name == "dt":
            if not defined and term:
                lines.append(term)
            term, defined = text, False
        elif text:
            lines.append(f"{term}: {text}" if term else text)
            defined = True
    if not defined and term:
        lines.append(term)
    return "\n".join(lines)


def _html_table_text(table: Tag) -> str:
    lines: list[str] = []
    caption = table.find("caption")
    if caption is not None and caption.find_parent("table") is table:
        lines.append(_html_text(caption))
    for row in table.find_all("tr"):
        if row.find_parent("table") is not table:
            continue
        cells = [_html_text(cell) for cell in row.find_all(["th", "td"], recursive=False)]
        while cells and not cells[-1]:
            cells.pop()
        if any(cells):
            lines.append(" | ".join(cells))
    return "\n".join(line for line in lines if line)


# --------------------------------------------------------------------------- Markdown

_FRONT_MATTER: Final = re.compile(r"\A---\n(.*?)\n(?:---|\.\.\.)\n", re.S)


def _parse_markdown(data: bytes, *, filename: str) -> ParsedDocument:
    text = _decode_text(data)
    front_title = ""
    front = _FRONT_MATTER.match(text)
    if front is not None:
        # YAML front matter would otherwise come out as a rule and a setext heading.
        text = text[front.end() :]
        found = re.search(r"^title:\s*[\"']?(.*?)[\"']?\s*$", front.group(1), re.M)
        front_title = _clean_inline(found.group(1)) if found else ""

    tokens = MarkdownIt("commonmark").enable("table").enable("strikethrough").parse(text)
    sections = _Sections()
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.type == "heading_open":
            heading = _markdown_inline(tokens[index + 1])
            sections.heading(level=int(token.tag[1]), text=heading)
            index += 3
        elif token.type == "paragraph_open":
            sections.add(text=_clean_lines(_markdown_inline(tokens[index + 1])))
            index += 3
        elif token.type in ("bullet_list_open", "ordered_list_open"):
            end = _closing(tokens, index)
            sections.add(text="\n".join(_markdown_list(tokens[index : end + 1])), kind="list")
            index = end + 1
        elif token.type == "table_open":
            end = _closing(tokens, index)
            sections.add(text=_markdown_table(tokens[index : end + 1]), kind="table")
            index = end + 1
        elif token.type in ("fence", "code_block"):
            sections.add(text=token.content.rstrip("\n"), kind="code")
            index += 1
        elif token.type == "html_block":
            sections.add(text=_html_fragment_text(token.content))
            index += 1
        else:
            index += 1

    # Several top-level headings are chapters, not a title: the file name serves better.
    title = front_title or sections.title_heading or _title_from_filename(filename)
    blocks = sections.finish(title=title)
    if not blocks:
        raise ParseError("The Markdown file contains no text.")
    return ParsedDocument(title=title, media_type=MARKDOWN, page_count=None, blocks=blocks)


def _closing(tokens: list[Token], index: int) -> int:
    opening = tokens[index]
    closing_type = opening.type.replace("_open", "_close")
    for end in range(index + 1, len(tokens)):
        if tokens[end].type == closing_type and tokens[end].level == opening.level:
            return end
    return len(tokens) - 1


def _markdown_inline(token: Token) -> str:
    parts: list[str] = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type == "softbreak":
            parts.append(" ")
        elif child.type == "hardbreak":
            parts.append("\n")
        elif child.type == "image":
            parts.append(child.content)
    return "".join(parts)


def _markdown_list(tokens: list[Token]) -> list[str]:
    lines: list[str] = []
    depth = 0
    markers: list[str] = []
    fresh_item = False
    for token in tokens:
        if token.type in ("bullet_list_open", "ordered_list_open"):
            depth += 1
        elif token.type in ("bullet_list_close", "ordered_list_close"):
            depth -= 1
        elif token.type == "list_item_open":
            markers.append(f"{token.info}{token.markup}" if token.info else "-")
            fresh_item = True
        elif token.type == "list_item_close":
            markers.pop()
        elif token.type == "inline":
            text = _clean_inline(_markdown_inline(token))
            indent = "  " * max(depth - 1, 0)
            if fresh_item:
                lines.append(f"{indent}{markers[-1] if markers else '-'} {text}")
                fresh_item = False
            else:
                lines.append(f"{indent}  {text}")
        elif token.type in ("fence", "code_block"):
            indent = "  " * depth
            lines.extend(f"{indent}{line}" for line in token.content.rstrip("\n").split("\n"))
    return [line for line in lines if line.strip()]


def _markdown_table(tokens: list[Token]) -> str:
    rows: list[str] = []
    cells: list[str] = []
    for token in tokens:
        if token.type == "tr_open":
            cells = []
        elif token.type == "inline":
            cells.append(_clean_inline(_markdown_inline(token)))
        elif token.type == "tr_close" and any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows)


def _html_fragment_text(fragment: str) -> str:
    """The text of raw HTML inside Markdown, one line per block element."""
    soup = BeautifulSoup(fragment, "lxml")
    for tag in soup.find_all(["head", *_DROP_TAGS]):
        if not tag.decomposed:
            tag.decompose()
    for br in soup.find_all("br"):
        br.replace_with(_BREAK)
    sections = _Sections()
    _HtmlWalker(sections).walk(soup.body or soup)
    # Headings inside the fragment stay lines of text: the Markdown around it owns the outline.
    lines: list[str] = []
    previous_path: tuple[str, ...] = ()
    for block in sections.blocks:
        if block.heading_path and block.heading_path != previous_path:
            lines.append(block.heading_path[-1])
        previous_path = block.heading_path
        lines.append(block.text)
    return "\n".join(lines)


# --------------------------------------------------------------------------- plain text

_SETEXT: Final = re.compile(r"^(=+|-+)\s*$")


def _is_caps_heading(line: str) -> bool:
    letters = [char for char in line if char.isalpha()]
    return (
        3 <= len(line) <= 80
        and len(letters) >= 3
        and line == line.upper()
        and not re.search(r"[.,;!?]$", line)
    )


def _parse_text(data: bytes, *, filename: str) -> ParsedDocument:
    text = _decode_text(data)
    sections = _Sections()
    title = ""
    first_line = True
    for paragraph in re.split(r"\n\s*\n", text):
        lines = [line.strip() for line in paragraph.split("\n") if line.strip()]
        if not lines:
            continue
        if len(lines) >= 2 and _SETEXT.match(lines[1]) and len(lines[0]) <= 80:
            level = 1 if lines[1].startswith("=") else 2
            title = title or (lines[0] if first_line else "")
            sections.heading(level=level, text=lines[0])
            lines = lines[2:]
        elif _is_caps_heading(lines[0]):
            # The opening line of a file in capitals names the document; later ones name sections.
            sections.heading(level=1 if first_line else 2, text=lines[0])
            title = title or (lines[0] if first_line else "")
            lines = lines[1:]
        first_line = False
        if lines:
            body = _join_lines(lines)
            kind = "list" if all(_LIST_MARKER.match(line) for line in body.split("\n")) else "text"
            sections.add(text=body, kind=kind)
    title = title or _title_from_filename(filename)
    blocks = sections.finish(title=title)
    if not blocks:
        raise ParseError("The file contains no text.")
    return ParsedDocument(title=title, media_type=TEXT, page_count=None, blocks=blocks)


# --------------------------------------------------------------------------- CSV

_DELIMITERS: Final = (",", ";", "\t", "|")


def _parse_csv(data: bytes, *, filename: str) -> ParsedDocument:
    text = _decode_text(data)
    delimiter = _csv_delimiter(text)
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    except csv.Error as exc:
        raise ParseError(
            f"The CSV file could not be read ({_detail(exc)}): "
            "export it again as CSV and upload the new file."
        ) from exc
    rows = [[_clean_inline(cell) for cell in row] for row in rows]
    rows = [row for row in rows if any(row)]
    if not rows:
        raise ParseError("The CSV file contains no rows.")

    header = rows[0]
    title = _title_from_filename(filename)
    blocks: list[Block] = []
    for row in rows[1:]:
        names = [*header, *([""] * (len(row) - len(header)))]
        fields = [
            f"{name or f'Column {position}'}: {value}"
            for position, (name, value) in enumerate(zip(names, row, strict=False), start=1)
            if value
        ]
        if fields:
            blocks.append(Block(text="; ".join(fields), heading_path=(title,), kind="row"))
    if not blocks:
        # A header and nothing else still says something; index it rather than fail.
        blocks.append(
            Block(text="; ".join(cell for cell in header if cell), heading_path=(title,), kind="row")
        )
    return ParsedDocument(title=title, media_type=CSV, page_count=None, blocks=blocks)


def _csv_delimiter(text: str) -> str:
    """Pick the delimiter that gives the first rows one steady number of columns.

    csv.Sniffer guesses wrong when quoted values hold other candidates ("CV-410; CV-660").
    """
    sample = text[:65536].split("\n")[:50]
    best, best_score = ",", (-1.0, 0)
    for delimiter in _DELIMITERS:
        try:
            rows = [row for row in csv.reader(sample, delimiter=delimiter) if row]
        except csv.Error:
            continue
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        steady = sum(1 for row in rows if len(row) == width) / len(rows)
        if (steady, width) > best_score:
            best, best_score = delimiter, (steady, width)
    return best
