from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from knowledge import services
from knowledge.models import Chunk, Collection, Document, DocumentStatus
from knowledge.services import DocumentBusy, document_index, document_upload
from tests.knowledge import badfiles
from tests.knowledge.conftest import ingest_inline

pytestmark = pytest.mark.django_db


def test_it_indexes_every_demo_document_with_pages_and_sections(handbook: Collection, demo_dir: Path) -> None:
    for path in sorted(demo_dir.iterdir()):
        if path.suffix != ".jsonl":
            ingest_inline(handbook, path.name, path.read_bytes())
    docs = {d.source_path: d for d in handbook.documents.all()}
    assert len(docs) == 6
    assert {d.status for d in docs.values()} == {DocumentStatus.READY}, {
        d.source_path: d.error for d in docs.values()
    }
    pdf = next(d for p, d in docs.items() if p.endswith(".pdf"))
    assert pdf.page_count and pdf.page_count >= 3
    assert set(pdf.chunks.values_list("page", flat=True)) >= {1, 2, 3}
    md = next(d for p, d in docs.items() if p.endswith(".md"))
    assert all(c.heading_path for c in md.chunks.all())
    html = next(d for p, d in docs.items() if p.endswith(".html"))
    text = " ".join(html.chunks.values_list("text", flat=True))
    assert "Prev | Next | Home" not in text and "trackPageView" not in text
    assert Chunk.objects.filter(collection=handbook).count() == sum(d.chunk_count for d in docs.values())


def test_the_same_bytes_twice_are_skipped(handbook: Collection) -> None:
    data = b"# Pumps\n\nThe CV-240 weighs 14 kg.\n"
    first = document_upload(collection=handbook, data=data, source_path="a.md", enqueue=False)
    again = document_upload(collection=handbook, data=data, source_path="copy/a.md", enqueue=False)
    assert first.status == "queued" and again.status == "skipped"
    assert again.document == first.document
    assert handbook.documents.count() == 1


def test_a_new_version_replaces_the_old_chunks_in_one_step(handbook: Collection) -> None:
    doc_id = ingest_inline(handbook, "notes.md", b"# Notes\n\nThe old pump ran at 900 rpm.\n")
    outcome = document_upload(
        collection=handbook,
        data=b"# Notes\n\nThe new pump runs at 1450 rpm.\n",
        source_path="notes.md",
        enqueue=False,
    )
    assert outcome.document is not None and outcome.document.pk == doc_id
    assert outcome.document.version == 2
    # Until the new version is indexed, searches still see the old one, whole.
    assert "900 rpm" in Chunk.objects.get(document_id=doc_id).text
    document_index(document_id=doc_id)
    texts = list(Chunk.objects.filter(document_id=doc_id).values_list("text", flat=True))
    assert len(texts) == 1 and "1450 rpm" in texts[0]


def test_a_crash_mid_document_leaves_the_old_chunks_whole(
    handbook: Collection, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc_id = ingest_inline(handbook, "notes.md", b"# Notes\n\nVersion one text.\n")
    document_upload(
        collection=handbook, data=b"# Notes\n\nVersion two text.\n", source_path="notes.md", enqueue=False
    )

    def boom(*args: object, **kwargs: object) -> None:
        raise MemoryError("worker killed")

    monkeypatch.setattr(services, "embed_texts", boom)
    with pytest.raises(MemoryError):
        document_index(document_id=doc_id)
    doc = Document.objects.get(pk=doc_id)
    assert doc.status == DocumentStatus.FAILED and "try re-indexing" in doc.error
    assert [c.text for c in Chunk.objects.filter(document_id=doc_id)] == ["Version one text."]


def test_an_abandoned_claim_is_taken_over_but_a_live_one_is_not(handbook: Collection) -> None:
    outcome = document_upload(
        collection=handbook, data=b"plain words here", source_path="a.txt", enqueue=False
    )
    assert outcome.document is not None
    pk = outcome.document.pk
    Document.objects.filter(pk=pk).update(status=DocumentStatus.EMBEDDING, claimed_at=timezone.now())
    with pytest.raises(DocumentBusy):
        document_index(document_id=pk)
    Document.objects.filter(pk=pk).update(claimed_at=timezone.now() - timedelta(hours=1))
    assert document_index(document_id=pk).status == "ready"


def test_a_ready_document_is_not_indexed_twice(handbook: Collection) -> None:
    pk = ingest_inline(handbook, "a.txt", b"some words to index")
    before = list(Chunk.objects.filter(document_id=pk).values_list("pk", flat=True))
    assert document_index(document_id=pk).status == DocumentStatus.READY
    assert list(Chunk.objects.filter(document_id=pk).values_list("pk", flat=True)) == before


BAD_FILES = {
    "encrypted.pdf": (badfiles.encrypted_pdf, "encrypted"),
    "truncated.pdf": (badfiles.truncated_pdf, "damaged"),
    "scanned.pdf": (badfiles.scanned_pdf, "no extractable text"),
    "picture.pdf": (badfiles.png_image, "content"),
    "bomb.docx": (badfiles.docx_zip_bomb, "zip bomb"),
}


def test_each_bad_file_fails_alone_with_its_reason(handbook: Collection) -> None:
    good = ingest_inline(handbook, "good.md", b"# Good\n\nThe good file is indexed.\n")
    for name, (build, reason) in BAD_FILES.items():
        outcome = document_upload(collection=handbook, data=build(), source_path=name, enqueue=False)
        assert outcome.document is not None
        result = document_index(document_id=outcome.document.pk)
        doc = Document.objects.get(pk=outcome.document.pk)
        assert result.status == "failed" and doc.status == DocumentStatus.FAILED, name
        assert reason in doc.error.lower(), (name, doc.error)
        assert not Chunk.objects.filter(document=doc).exists()
    assert Document.objects.get(pk=good).status == DocumentStatus.READY
    assert Chunk.objects.filter(document_id=good).count() == 1


def test_empty_oversized_and_unknown_files_are_refused_before_storing(handbook: Collection, settings) -> None:
    settings.MAX_UPLOAD_MB = 1
    empty = document_upload(collection=handbook, data=b"", source_path="empty.txt")
    big = document_upload(collection=handbook, data=b"x" * (1024 * 1024 + 1), source_path="big.txt")
    exe = document_upload(collection=handbook, data=b"MZ\x90\x00", source_path="tool.exe")
    assert (empty.status, big.status, exe.status) == ("rejected",) * 3
    assert "empty" in empty.error and "MAX_UPLOAD_MB" in big.error and "'.exe'" in exe.error
    assert not handbook.documents.exists()


def test_latin1_text_and_html_with_scripts_index_cleanly(handbook: Collection) -> None:
    pk = ingest_inline(handbook, "cafe.txt", badfiles.latin1_text())
    assert "Café" in Chunk.objects.get(document_id=pk).text
    pk = ingest_inline(handbook, "page.html", badfiles.html_with_script_and_nav())
    text = " ".join(Chunk.objects.filter(document_id=pk).values_list("text", flat=True))
    assert "alert(" not in text and text.strip()


def test_ingestion_runs_on_the_real_ingest_worker(worker, acme) -> None:
    from knowledge.services import collection_create

    collection = collection_create(team=acme, name="Queued")
    uploads = {
        name: document_upload(collection=collection, data=data, source_path=name)
        for name, data in [
            ("q.md", b"# Q\n\nQueued through Redis.\n"),
            ("r.md", b"# R\n\nQueued beside it.\n"),
            ("broken.pdf", badfiles.truncated_pdf()),
            ("s.txt", b"A third good one."),
        ]
    }
    ids = {name: u.document.pk for name, u in uploads.items() if u.document is not None}
    assert len(ids) == 4
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        docs = {d.source_path: d for d in Document.objects.filter(pk__in=ids.values())}
        if all(d.status in (DocumentStatus.READY, DocumentStatus.FAILED) for d in docs.values()):
            break
        time.sleep(0.2)
    assert {name: d.status for name, d in docs.items()} == {
        "q.md": DocumentStatus.READY,
        "r.md": DocumentStatus.READY,
        "broken.pdf": DocumentStatus.FAILED,
        "s.txt": DocumentStatus.READY,
    }, {name: d.error for name, d in docs.items()}
    assert "damaged" in docs["broken.pdf"].error.lower()
    assert [docs[n].chunk_count for n in ("q.md", "r.md", "s.txt")] == [1, 1, 1]


@pytest.fixture
def embed_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The real encoder, with the size of each call it gets recorded."""
    calls: list[int] = []
    real = services.embed_texts

    def counted(texts: list[str], *, batch_size: int | None = None) -> object:
        calls.append(len(texts))
        return real(texts, batch_size=batch_size)

    monkeypatch.setattr(services, "embed_texts", counted)
    return calls


def test_a_batch_embeds_in_one_call_and_a_broken_file_fails_alone(
    handbook: Collection, embed_calls: list[int]
) -> None:
    files = [
        ("a.md", b"# A\n\nThe A pump weighs 3 kg.\n"),
        ("bad.pdf", badfiles.encrypted_pdf()),
        ("b.txt", b"The B pump weighs 5 kg."),
        ("empty.pdf", badfiles.scanned_pdf()),
        ("c.md", b"# C\n\nThe C pump weighs 7 kg.\n"),
    ]
    ids = []
    for name, data in files:
        outcome = document_upload(collection=handbook, data=data, source_path=name, enqueue=False)
        assert outcome.document is not None
        ids.append(outcome.document.pk)
    outcomes = services.documents_index(document_ids=ids)
    assert [o.document_id for o in outcomes] == ids
    assert [o.status for o in outcomes] == ["ready", "failed", "ready", "failed", "ready"]
    assert "encrypted" in outcomes[1].error and "no extractable text" in outcomes[3].error.lower()
    assert embed_calls == [3]
    by_doc = dict(Chunk.objects.filter(collection=handbook).values_list("document_id", "text"))
    assert by_doc == {
        ids[0]: "The A pump weighs 3 kg.",
        ids[2]: "The B pump weighs 5 kg.",
        ids[4]: "The C pump weighs 7 kg.",
    }
    # Each document's vector is its own text's, not a neighbour's.
    a = Chunk.objects.get(document_id=ids[0])
    assert a.embedding is not None
    assert list(a.embedding) == pytest.approx(services.embed_texts(["A\n" + a.text])[0].tolist(), abs=1e-5)


def test_a_worker_takes_queued_documents_along_and_their_messages_then_do_nothing(
    handbook: Collection, embed_calls: list[int], settings
) -> None:
    from knowledge.tasks import document_index_task

    settings.INGEST_BATCH_DOCUMENTS = 3
    ids = []
    for i in range(4):
        outcome = document_upload(
            collection=handbook, data=f"Passage number {i}.".encode(), source_path=f"{i}.txt", enqueue=False
        )
        assert outcome.document is not None
        ids.append(outcome.document.pk)
    document_index_task.fn(ids[1])
    statuses = dict(Document.objects.filter(pk__in=ids).values_list("pk", "status"))
    assert [statuses[pk] for pk in ids] == ["ready", "ready", "ready", "queued"]
    assert embed_calls == [3]
    for pk in ids:
        document_index_task.fn(pk)
    assert embed_calls == [3, 1]
    assert set(Document.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"ready"}


def test_a_document_held_by_a_live_claim_is_left_to_its_holder(handbook: Collection) -> None:
    from knowledge.tasks import document_index_task

    outcome = document_upload(collection=handbook, data=b"held words", source_path="h.txt", enqueue=False)
    assert outcome.document is not None
    pk = outcome.document.pk
    Document.objects.filter(pk=pk).update(status=DocumentStatus.EMBEDDING, claimed_at=timezone.now())
    document_index_task.fn(pk)  # no retry storm: the holder finishes it or the reaper re-queues it
    assert Document.objects.get(pk=pk).status == DocumentStatus.EMBEDDING
