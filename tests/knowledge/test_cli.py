from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from knowledge.models import Collection, DocumentStatus
from tests.knowledge import badfiles

pytestmark = pytest.mark.django_db


def test_ingest_takes_folders_recursively_and_reports_json(handbook: Collection, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.md").write_text("# A\n\nFirst document.\n")
    (folder / "sub" / "b.txt").write_text("Second document, in a subfolder.")
    (folder / "sub" / "broken.pdf").write_bytes(badfiles.truncated_pdf())
    (folder / "empty.txt").write_bytes(b"")
    out = StringIO()
    call_command(
        "ingest", str(folder), "--collection", handbook.slug, "--json", stdout=out, stderr=StringIO()
    )
    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    assert summary["documents"] == 2 and summary["chunks"] == 2 and summary["skipped"] == 0
    errors = {Path(f["path"]).name: f["error"] for f in summary["failed"]}
    assert set(errors) == {"broken.pdf", "empty.txt"}
    assert "empty" in errors["empty.txt"]
    assert set(handbook.documents.values_list("source_path", flat=True)) == {
        "docs/a.md",
        "docs/sub/b.txt",
        "docs/sub/broken.pdf",
    }
    assert handbook.documents.get(source_path="docs/a.md").status == DocumentStatus.READY
    assert summary["seconds"] >= 0

    again = StringIO()
    call_command(
        "ingest", str(folder), "--collection", handbook.slug, "--json", stdout=again, stderr=StringIO()
    )
    assert json.loads(again.getvalue().strip().splitlines()[-1])["skipped"] == 3


def test_ingest_as_a_member_without_editor_role_is_refused(handbook: Collection, bob, tmp_path: Path) -> None:
    f = tmp_path / "x.md"
    f.write_text("# X\n\ntext")
    with pytest.raises(CommandError, match="editor"):
        call_command("ingest", str(f), "--collection", handbook.slug, "--user", "bob")


def test_ingest_as_another_team_is_refused(handbook: Collection, charlie, tmp_path: Path) -> None:
    f = tmp_path / "x.md"
    f.write_text("# X\n\ntext")
    with pytest.raises(CommandError, match="No collection"):
        call_command("ingest", str(f), "--collection", handbook.slug, "--user", "charlie")
