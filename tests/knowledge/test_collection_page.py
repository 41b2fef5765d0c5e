"""The collection page in a real Chromium: upload a batch, watch statuses go live."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.services import collection_create
from tests.knowledge import badfiles
from tests.support import login

pytestmark = [pytest.mark.browser]


def test_a_batch_upload_shows_progress_and_live_status(
    asgi_server, worker, page, alice, acme, tmp_path: Path
) -> None:
    collection = collection_create(team=acme, name="Browser")
    good = tmp_path / "pump-notes.md"
    good.write_text("# Pump notes\n\nThe CV-410 impeller is bronze.\n")
    bad = tmp_path / "locked.pdf"
    bad.write_bytes(badfiles.encrypted_pdf())
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")

    login(page, asgi_server, "alice", "alice-pass-123")
    page.goto(f"{asgi_server.url}/knowledge/{collection.pk}/")
    page.wait_for_selector("#live.ready")
    page.set_input_files("#file-input", [str(good), str(bad), str(empty)])

    uploads = page.locator("#uploads li")
    uploads.filter(has_text="empty.txt").filter(has_text="The file is empty").wait_for()
    rows = page.locator("#documents tbody tr")
    rows.filter(has_text="pump-notes.md").locator(".badge.ready").wait_for(timeout=60_000)
    failed = rows.filter(has_text="locked.pdf")
    failed.locator(".badge.failed").wait_for(timeout=60_000)
    assert "encrypted" in failed.locator(".reason").inner_text().lower()
    assert page.locator("#uploads progress").evaluate_all("els => els.every(e => e.value === 100)")
    # The empty file was refused outright: it never became a document row.
    assert rows.filter(has_text="empty.txt").count() == 0


def test_another_teams_collection_page_is_not_found(asgi_server, page, charlie, acme) -> None:
    collection = collection_create(team=acme, name="Hidden")
    login(page, asgi_server, "charlie", "charlie-pass-123")
    resp = page.goto(f"{asgi_server.url}/knowledge/{collection.pk}/")
    assert resp is not None and resp.status == 404
