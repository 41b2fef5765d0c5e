from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts.services import api_token_create
from knowledge.models import Collection, Document, DocumentStatus
from knowledge.services import document_index
from tests.knowledge import badfiles
from tests.knowledge.conftest import ingest_inline

pytestmark = pytest.mark.django_db


def bearer(user) -> Client:
    _, raw = api_token_create(user=user, name="test")
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def test_the_api_publishes_an_openapi_schema() -> None:
    schema = Client().get("/api/openapi.json").json()
    paths = schema["paths"]
    assert "/api/collections/{collection_id}/documents" in paths
    assert "/api/documents/{document_id}" in paths and "/api/search" in paths
    assert "delete" in paths["/api/documents/{document_id}"]


def test_without_a_token_the_api_answers_401(handbook: Collection) -> None:
    assert Client().get(f"/api/collections/{handbook.pk}/documents").status_code == 401
    bad = Client(HTTP_AUTHORIZATION="Bearer es_nope")
    assert bad.get(f"/api/collections/{handbook.pk}/documents").status_code == 401


def test_upload_a_batch_where_bad_files_fail_alone(handbook: Collection, alice) -> None:
    client = bearer(alice)
    files = [
        SimpleUploadedFile("good.md", b"# Good\n\nIndexed fine.\n"),
        SimpleUploadedFile("empty.txt", b""),
        SimpleUploadedFile("encrypted.pdf", badfiles.encrypted_pdf()),
    ]
    resp = client.post(f"/api/collections/{handbook.pk}/documents", {"files": files})
    assert resp.status_code == 200, resp.content
    rows = {r["source_path"]: r for r in resp.json()}
    assert rows["good.md"]["status"] == "queued"
    assert rows["empty.txt"]["status"] == "rejected" and "empty" in rows["empty.txt"]["error"]
    assert rows["encrypted.pdf"]["status"] == "queued"
    for row in (rows["good.md"], rows["encrypted.pdf"]):
        document_index(document_id=row["document"]["id"])
    listing = {d["source_path"]: d for d in client.get(f"/api/collections/{handbook.pk}/documents").json()}
    assert listing["good.md"]["status"] == "ready"
    assert listing["encrypted.pdf"]["status"] == "failed" and "encrypted" in listing["encrypted.pdf"]["error"]
    detail = client.get(f"/api/documents/{listing['encrypted.pdf']['id']}").json()
    assert detail["error"] == listing["encrypted.pdf"]["error"]


def test_folder_paths_are_kept_and_delete_removes_the_document(handbook: Collection, alice) -> None:
    client = bearer(alice)
    resp = client.post(
        f"/api/collections/{handbook.pk}/documents",
        {"files": [SimpleUploadedFile("a.md", b"# A\n\ntext")], "paths": ["manuals/v2/a.md"]},
    )
    doc_id = resp.json()[0]["document"]["id"]
    assert resp.json()[0]["source_path"] == "manuals/v2/a.md"
    assert client.delete(f"/api/documents/{doc_id}").status_code == 204
    assert not Document.objects.filter(pk=doc_id).exists()


def test_another_team_gets_404_everywhere(handbook: Collection, charlie) -> None:
    doc_id = ingest_inline(handbook, "a.md", b"# A\n\nAcme only: the vault code is 1234.\n")
    client = bearer(charlie)
    assert client.get(f"/api/collections/{handbook.pk}/documents").status_code == 404
    assert client.get(f"/api/documents/{doc_id}").status_code == 404
    assert client.delete(f"/api/documents/{doc_id}").status_code == 404
    up = client.post(
        f"/api/collections/{handbook.pk}/documents", {"files": [SimpleUploadedFile("x.md", b"x")]}
    )
    assert up.status_code == 404
    results = client.get("/api/search", {"q": "vault code"}).json()["results"]
    assert all(r["document"] != doc_id for r in results)
    assert Document.objects.filter(pk=doc_id, status=DocumentStatus.READY).exists()


def test_members_read_but_only_editors_write(handbook: Collection, bob) -> None:
    doc_id = ingest_inline(handbook, "a.md", b"# A\n\nThe vault code is 1234.\n")
    client = bearer(bob)
    assert client.get(f"/api/documents/{doc_id}").status_code == 200
    assert client.delete(f"/api/documents/{doc_id}").status_code == 403
    hits = client.get(f"/api/search?q=vault+code&collection={handbook.pk}").json()["results"]
    assert hits[0]["document"] == doc_id and "1234" in hits[0]["text"]


def test_session_requests_need_the_csrf_token(handbook: Collection, alice) -> None:
    client = Client(enforce_csrf_checks=True)
    client.login(username="alice", password="alice-pass-123")
    resp = client.post(
        f"/api/collections/{handbook.pk}/documents", {"files": [SimpleUploadedFile("x.md", b"x")]}
    )
    assert resp.status_code == 403
