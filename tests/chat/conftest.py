from __future__ import annotations

from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client

from accounts.models import Team
from chat.models import Expert, Mode
from chat.services import expert_create
from expertsite.asgi import application
from knowledge.demo.writer import write_demo_corpus
from knowledge.models import Collection
from knowledge.services import collection_create, document_index, document_upload


def index_demo(collection: Collection, dest: Path) -> None:
    for path in write_demo_corpus(dest):
        outcome = document_upload(
            collection=collection, data=path.read_bytes(), source_path=path.name, enqueue=False
        )
        assert outcome.document is not None
        document_index(document_id=outcome.document.pk)


@pytest.fixture
def demo_collection(acme: Team, tmp_path: Path) -> Collection:
    collection = collection_create(team=acme, name="Demo handbook")
    index_demo(collection, tmp_path / "demo")
    return collection


@pytest.fixture
def rag_expert(acme: Team, demo_collection: Collection) -> Expert:
    return expert_create(
        team=acme,
        name="Pump expert",
        slug="pumps",
        collections=[demo_collection],
        mode=Mode.RAG,
        temperature=0.0,
        max_new_tokens=48,
    )


@pytest.fixture
def base_expert(acme: Team) -> Expert:
    return expert_create(
        team=acme, name="Plain", slug="plain", mode=Mode.BASE, temperature=0.0, max_new_tokens=24
    )


async def ws_connect(
    user: User | None, *, origin: bytes = b"http://localhost"
) -> tuple[WebsocketCommunicator, bool, int | None]:
    headers = [(b"origin", origin), (b"host", b"localhost")]
    if user is not None:
        client = Client()
        await sync_to_async(client.force_login)(user)
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    comm = WebsocketCommunicator(application, "/ws/chat/", headers=headers)
    connected, code = await comm.connect()
    return comm, connected, code


async def receive_until(comm: WebsocketCommunicator, kind: str, timeout: float = 120) -> list[dict]:
    frames: list[dict] = []
    while True:
        frame = await comm.receive_json_from(timeout=timeout)
        frames.append(frame)
        if frame["type"] in (kind, "error"):
            return frames
