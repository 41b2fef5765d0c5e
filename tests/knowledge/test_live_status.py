from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User

from expertsite.asgi import application
from knowledge.models import Collection
from knowledge.services import collection_create, document_index, document_upload

pytestmark = pytest.mark.django_db(transaction=True)


async def _connect(user: User | None, collection: Collection, origin: bytes = b"http://localhost"):
    from django.test import Client

    headers = [(b"origin", origin), (b"host", b"localhost")]
    if user is not None:
        client = Client()
        await sync_to_async(client.force_login)(user)
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    comm = WebsocketCommunicator(application, f"/ws/knowledge/collections/{collection.pk}/", headers=headers)
    connected, code = await comm.connect()
    return comm, connected, code


async def test_status_changes_reach_the_collection_page_socket(alice, acme, redis_client) -> None:
    collection = await sync_to_async(collection_create)(team=acme, name="Live")
    comm, connected, _ = await _connect(alice, collection)
    assert connected
    outcome = await sync_to_async(document_upload)(
        collection=collection, data=b"# Live\n\nStatus pushed.\n", source_path="live.md", enqueue=False
    )
    assert outcome.document is not None
    await sync_to_async(document_index)(document_id=outcome.document.pk)
    seen = []
    while "ready" not in seen:
        event = await comm.receive_json_from(timeout=10)
        assert event["type"] == "document" and event["source_path"] == "live.md"
        seen.append(event["status"])
    assert seen[0] == "queued" and "parsing" in seen and "embedding" in seen
    await comm.disconnect()


async def test_anonymous_foreign_team_and_foreign_origin_are_refused(
    alice, charlie, acme, redis_client
) -> None:
    collection = await sync_to_async(collection_create)(team=acme, name="Private")
    _, connected, code = await _connect(None, collection)
    assert not connected and code == 4401
    _, connected, code = await _connect(charlie, collection)
    assert not connected and code == 4404
    _, connected, _ = await _connect(alice, collection, origin=b"http://evil.example")
    assert not connected
