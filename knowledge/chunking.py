"""Pack parsed blocks into chunks that fit the embedding model's window.

A chunk stays inside one section (one heading path) and, for PDFs, one page, so its
citation points at one place. Its size is measured on ``embedding_text``, the heading
path plus the text, because that is what the embedding model reads: all-MiniLM-L6-v2
truncates at 256 tokens, and whatever falls past the window is silently not embedded.

Pure Python, no database; deterministic, so re-ingesting a document yields the same
chunks and unchanged chunks keep their embeddings.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from knowledge.parsing import Block

__all__ = ["ChunkDraft", "chunk_blocks", "minilm_token_counter"]

# A last piece of a section smaller than this is merged into the chunk before it.
_MIN_FRAGMENT_TOKENS: Final = 20
# Within this many tokens of the limit, an additive counter's sum is checked by encoding.
_ESTIMATE_MARGIN: Final = 4

# Abbreviations whose full stop does not end a sentence.
_ABBREVIATIONS: Final = frozenset(
    {
        "approx",
        "ca",
        "cf",
        "dept",
        "dr",
        "e.g",
        "eg",
        "etc",
        "fig",
        "i.e",
        "ie",
        "inc",
        "incl",
        "ltd",
        "max",
        "min",
        "mr",
        "mrs",
        "ms",
        "no",
        "nr",
        "prof",
        "resp",
        "st",
        "vs",
        "z.b",
    }
)
_SENTENCE_END: Final = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]]*\s+")
_SENTENCE_START: Final = re.compile(r"[\"'\u201c\u2018(\[]?[A-Z0-9\u00c0-\u00de]")


@dataclass(frozen=True)
class ChunkDraft:
    text: str
    heading_path: tuple[str, ...]
    page: int | None
    token_count: int

    @property
    def embedding_text(self) -> str:
        # "Default: 100" means nothing alone; the path says what it is the default of.
        return _embedding_text(self.heading_path, self.text)


def _embedding_text(heading_path: tuple[str, ...], text: str) -> str:
    return " > ".join(heading_path) + "\n" + text if heading_path else text


def minilm_token_counter(tokenizer_dir: Path) -> Callable[[str], int]:
    """A token counter for the all-MiniLM-L6-v2 tokenizer found in ``tokenizer_dir``.

    Counts include the two special tokens ([CLS], [SEP]) the model always adds, so a
    count of 256 fills the model's window exactly.
    """
    return _load_counter(str(Path(tokenizer_dir).resolve()))


@functools.lru_cache(maxsize=8)
def _load_counter(tokenizer_dir: str) -> Callable[[str], int]:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(tokenizer_dir) / "tokenizer.json"))
    # tokenizer.json ships with truncation at the model's window; a counter that
    # truncates would report every long text as fitting.
    tokenizer.no_truncation()
    tokenizer.no_padding()

    def count_tokens(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False).ids) + 2

    # BERT's WordPiece splits at whitespace before anything else, so pieces joined by
    # whitespace count as the sum of their parts; the packer can add instead of encode.
    count_tokens.additive = True  # type: ignore[attr-defined]
    return count_tokens


@dataclass(frozen=True)
class _Unit:
    """The smallest piece a chunk is made of: a row, a line, a sentence or a run of words."""

    text: str
    block: int
    # What joined this unit to the previous one inside its block: " " or "\n".
    separator: str
    kind: str
    header: bool = False


def chunk_blocks(
    *,
    blocks: list[Block],
    count_tokens: Callable[[str], int],
    max_tokens: int = 200,
    overlap_tokens: int = 30,
) -> list[ChunkDraft]:
    """Pack ``blocks`` into chunks of at most ``max_tokens`` tokens of embedding text.

    The one exception to the limit is a CSV row (kind ``row``) that alone is larger:
    rows are never split, because half a price-list row answers nothing.
    """
    if max_tokens < 16:
        raise ValueError("max_tokens must be at least 16")
    overlap_tokens = max(0, min(overlap_tokens, max_tokens // 2))
    # Packing asks about the same candidate text more than once; bounded, so a
    # thousand-page document does not keep every candidate alive.
    count = functools.lru_cache(maxsize=4096)(count_tokens)

    chunks: list[ChunkDraft] = []
    for heading_path, page, members in _segments(blocks):
        packer = _Packer(
            heading_path=_fitting_path(heading_path, count=count, max_tokens=max_tokens),
            page=page,
            count=count,
            max_tokens=max_tokens,
            overlap_tokens=overlap_tokens,
        )
        chunks.extend(packer.pack(members))
    return chunks


def _segments(blocks: list[Block]) -> Iterable[tuple[tuple[str, ...], int | None, list[Block]]]:
    """Runs of consecutive blocks sharing a heading path and a page."""
    current: list[Block] = []
    for block in blocks:
        if not block.text.strip():
            continue
        if current and (block.heading_path, block.page) != (current[0].heading_path, current[0].page):
            yield current[0].heading_path, current[0].page, current
            current = []
        current.append(block)
    if current:
        yield current[0].heading_path, current[0].page, current


def _fitting_path(
    heading_path: tuple[str, ...], *, count: Callable[[str], int], max_tokens: int
) -> tuple[str, ...]:
    # A heading path eating more than half the window leaves too little room for
    # text; the outermost headings (the document title first) say the least, so they go.
    path = heading_path
    while len(path) > 1 and count(" > ".join(path)) > max_tokens // 2:
        path = path[1:]
    if path and count(path[0]) > max_tokens // 2:
        words = path[0].split()
        while len(words) > 1 and count(" ".join(words)) > max_tokens // 2:
            words = words[: len(words) // 2]
        path = (" ".join(words),)
    return path


class _Packer:
    """Packs the blocks of one segment (one heading path, one page) into chunks."""

    def __init__(
        self,
        *,
        heading_path: tuple[str, ...],
        page: int | None,
        count: Callable[[str], int],
        max_tokens: int,
        overlap_tokens: int,
    ) -> None:
        self.heading_path = heading_path
        self.page = page
        self.count = count
        self.max_tokens = max_tokens
        self.overlap_tokens = overlap_tokens
        # The header row of each table block, repeated wherever the table continues.
        self.table_headers: dict[int, _Unit] = {}
        self.additive = bool(getattr(count, "additive", False))
        self.unit_tokens: dict[str, int] = {}
        self.heading_tokens = count(_embedding_text(heading_path, "")) if heading_path else 2

    def tokens(self, units: list[_Unit]) -> int:
        if self.additive:
            return self.heading_tokens + sum(self.raw_tokens(u.text) for u in units)
        return self.exact_tokens(units)

    def exact_tokens(self, units: list[_Unit]) -> int:
        return self.count(_embedding_text(self.heading_path, _render(units)))

    def fits(self, units: list[_Unit]) -> bool:
        if self.additive:
            # Re-encoding the growing chunk for every unit added made packing quadratic;
            # the sum is exact for WordPiece, and the margin sends any doubt to the tokenizer.
            estimate = self.heading_tokens + sum(self.raw_tokens(u.text) for u in units)
            if estimate <= self.max_tokens - _ESTIMATE_MARGIN:
                return True
            if estimate > self.max_tokens + _ESTIMATE_MARGIN:
                return False
        return self.exact_tokens(units) <= self.max_tokens

    def raw_tokens(self, text: str) -> int:
        """Tokens of ``text`` without the two special tokens."""
        found = self.unit_tokens.get(text)
        if found is None:
            found = self.unit_tokens[text] = self.count(text) - 2
        return found

    def pack(self, blocks: list[Block]) -> list[ChunkDraft]:
        # Each chunk is (overlap carried from the previous chunk, its own new units).
        chunks: list[tuple[list[_Unit], list[_Unit]]] = []
        overlap: list[_Unit] = []
        fresh: list[_Unit] = []
        for index, block in enumerate(blocks):
            units = self.units(block, index=index)
            if fresh and not self.fits([*overlap, *fresh, *units]) and self.fits(units):
                # The block fits a chunk of its own: start one rather than cut a paragraph.
                chunks.append((overlap, fresh))
                overlap = self.overlap(fresh, units)
                fresh = []
            for unit in units:
                if self.fits([*overlap, *fresh, unit]):
                    fresh.append(unit)
                    continue
                if fresh:
                    chunks.append((overlap, fresh))
                    overlap = self.overlap(fresh, [unit])
                    fresh = []
                if not self.fits([*overlap, unit]):
                    # Only an oversized CSV row gets here; it travels alone.
                    overlap = []
                fresh.append(unit)
        if fresh:
            chunks.append((overlap, fresh))
        chunks = self.merge_small_tail(chunks)
        drafts = []
        for carried, own in chunks:
            text = _render([*carried, *own])
            drafts.append(
                ChunkDraft(
                    text=text,
                    heading_path=self.heading_path,
                    page=self.page,
                    token_count=self.tokens([*carried, *own]),
                )
            )
        return drafts

    def merge_small_tail(
        self, chunks: list[tuple[list[_Unit], list[_Unit]]]
    ) -> list[tuple[list[_Unit], list[_Unit]]]:
        if len(chunks) < 2:
            return chunks
        (previous_overlap, previous), (_, last) = chunks[-2], chunks[-1]
        if any(unit.kind == "row" for unit in last):
            return chunks
        if self.count(_render(last)) >= _MIN_FRAGMENT_TOKENS:
            return chunks
        if self.fits([*previous_overlap, *previous, *last]):
            return [*chunks[:-2], (previous_overlap, [*previous, *last])]
        # Greedy packing filled the previous chunk, so the fragment rarely fits beside
        # its overlap; a fragment alone retrieves worse than a chunk without overlap.
        if self.fits([*previous, *last]):
            return [*chunks[:-2], ([], [*previous, *last])]
        return chunks

    def overlap(self, previous: list[_Unit], following: list[_Unit]) -> list[_Unit]:
        """Trailing units of ``previous`` to repeat at the start of the next chunk."""
        if self.overlap_tokens == 0 or not previous or not following:
            return []
        last, first = previous[-1], following[0]
        if last.kind == "row" or first.kind == "row":
            return []
        if last.kind == "table" and first.block == last.block:
            # A table continues: its header row says more than the last data row.
            header = self.table_headers.get(last.block)
            if header is not None and self.fits([header, *following]):
                return [header]
            return []
        carried: list[_Unit] = []
        for unit in reversed(previous):
            if unit.header or unit.kind == "row":
                break
            candidate = [unit, *carried]
            if self.count(_render(candidate)) > self.overlap_tokens:
                break
            carried = candidate
        if not carried:
            carried = self.tail_words(previous[-1])
        # The overlap must leave room for what follows; drop it from the front if not.
        while carried and not self.fits([*carried, *following]):
            carried = carried[1:]
        return carried

    def tail_words(self, unit: _Unit) -> list[_Unit]:
        # The last sentence alone is longer than the overlap: carry its closing words.
        words = unit.text.split()
        taken: list[str] = []
        total = 2
        for word in reversed(words[1:]):
            if self.additive:
                total += self.raw_tokens(word)
                if total > self.overlap_tokens:
                    break
            elif self.count(" ".join([word, *taken])) > self.overlap_tokens:
                break
            taken.insert(0, word)
        if not taken:
            return []
        return [_Unit(text=" ".join(taken), block=unit.block, separator=unit.separator, kind=unit.kind)]

    def units(self, block: Block, *, index: int) -> list[_Unit]:
        text = block.text.strip()
        if block.kind == "row":
            return [_Unit(text=text, block=index, separator=" ", kind="row")]
        if block.kind == "code":
            lines = [line for line in text.split("\n") if line.strip()]
        else:
            lines = [line.strip() for line in text.split("\n") if line.strip()]
        units: list[_Unit] = []
        # Leave room for an overlap beside a piece cut out of an oversized sentence.
        piece_budget = self.max_tokens - self.overlap_tokens
        for line_number, line in enumerate(lines):
            is_header = block.kind == "table" and line_number == 0 and len(lines) > 1
            pieces = [line] if block.kind in ("table", "code") and self.fits_alone(line) else None
            if pieces is None:
                pieces = []
                for sentence in _sentences(line):
                    if self.fits_alone(sentence):
                        pieces.append(sentence)
                    else:
                        pieces.extend(self.split_words(sentence, budget=piece_budget))
            for piece_number, piece in enumerate(pieces):
                separator = "\n" if piece_number == 0 else " "
                units.append(
                    _Unit(text=piece, block=index, separator=separator, kind=block.kind, header=is_header)
                )
            if is_header and len(pieces) == 1:
                self.table_headers[index] = units[-1]
        return units

    def fits_alone(self, text: str) -> bool:
        if self.additive:
            return self.heading_tokens + self.raw_tokens(text) <= self.max_tokens
        return self.count(_embedding_text(self.heading_path, text)) <= self.max_tokens

    def split_words(self, text: str, *, budget: int) -> list[str]:
        """Cut ``text`` at word boundaries, or inside a word when one word is too long."""

        def fits(piece: str) -> bool:
            return self.count(_embedding_text(self.heading_path, piece)) <= budget

        words = text.split()
        if len(words) == 1:
            return _greedy(list(text), joiner="", fits=fits)
        pieces: list[str] = []
        for piece in _greedy(words, joiner=" ", fits=fits):
            pieces.extend([piece] if fits(piece) else _greedy(list(piece), joiner="", fits=fits))
        return pieces


def _greedy(items: list[str], *, joiner: str, fits: Callable[[str], bool]) -> list[str]:
    """Split ``items`` into the fewest consecutive runs that fit.

    Each run's end is found by doubling, then bisecting the last step, so a megabyte
    of unpunctuated text costs a few tokenizer calls per run rather than one per word
    or a pass over the whole remainder per probe. A single item that does not fit
    still forms a run of its own.
    """
    pieces: list[str] = []
    start = 0
    while start < len(items):
        good, bad, step = start + 1, len(items) + 1, 1
        while good < len(items):
            probe = min(len(items), good + step)
            if not fits(joiner.join(items[start:probe])):
                bad = probe
                break
            good, step = probe, step * 2
        while bad - good > 1:
            middle = (good + bad) // 2
            if fits(joiner.join(items[start:middle])):
                good = middle
            else:
                bad = middle
        pieces.append(joiner.join(items[start:good]))
        start = good
    return pieces


def _sentences(text: str) -> list[str]:
    sentences: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
        if end >= len(text) or not _SENTENCE_START.match(text, end):
            continue
        before = text[start : match.start() + 1].rsplit(None, 1)[-1].lower().rstrip(".")
        # "e.g. The", "approx. 5", "J. Smith": a full stop that does not end a sentence.
        if before in _ABBREVIATIONS or (len(before) == 1 and before.isalpha()):
            continue
        sentences.append(text[start:end].strip())
        start = end
    if text[start:].strip():
        sentences.append(text[start:].strip())
    return sentences


def _render(units: list[_Unit]) -> str:
    parts: list[str] = []
    previous: _Unit | None = None
    for unit in units:
        if previous is not None:
            parts.append(unit.separator if unit.block == previous.block else "\n\n")
        parts.append(unit.text)
        previous = unit
    return "".join(parts)
