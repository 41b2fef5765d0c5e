from __future__ import annotations

from pathlib import Path

import pytest

from accounts.models import Team
from knowledge.demo.writer import write_demo_corpus
from knowledge.models import Collection
from knowledge.services import collection_create, document_index, document_upload


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("demo")
    write_demo_corpus(dest)
    return dest


@pytest.fixture
def handbook(acme: Team) -> Collection:
    return collection_create(team=acme, name="Handbook")


@pytest.fixture
def globex_notes(globex: Team) -> Collection:
    return collection_create(team=globex, name="Secret notes")


def ingest_inline(collection: Collection, name: str, data: bytes) -> int:
    outcome = document_upload(collection=collection, data=data, source_path=name, enqueue=False)
    assert outcome.document is not None, outcome.error
    document_index(document_id=outcome.document.pk)
    return outcome.document.pk
