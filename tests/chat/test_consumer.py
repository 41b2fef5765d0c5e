from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from chat.models import Message, MessageStatus
from tests.chat.conftest import receive_until, ws_connect

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


async def test_a_rag_answer_streams_tokens_and_cites_passages(alice, rag_expert, redis_client) -> None:
    comm, connected, _ = await ws_connect(alice)
    assert connected
    await comm.send_json_to(
        {
            "type": "ask",
            "conversation": None,
            "expert": "pumps",
            "text": "How long is the warranty on the pumps?",
        }
    )
    frames = await receive_until(comm, "done")
    kinds = [f["type"] for f in frames]
    assert kinds[0] == "conversation" and "citations" in kinds and "token" in kinds, frames[-1]
    assert kinds[-1] == "done"
    citations = next(f for f in frames if f["type"] == "citations")["citations"]
    assert citations and citations[0]["n"] == 1 and citations[0]["source"]
    done = frames[-1]
    streamed = "".join(f["text"] for f in frames if f["type"] == "token")
    message = await sync_to_async(Message.objects.get)(pk=done["message"])
    assert message.content == streamed and message.status == MessageStatus.COMPLETE
    assert message.tokens > 0 and message.ttft_ms and message.ttft_ms > 0
    assert done["timings"]["retrieval_ms"] > 0
    await comm.disconnect()


async def test_a_follow_up_is_asked_against_the_conversation_history(
    alice, base_expert, redis_client
) -> None:
    from chat.pipeline import answer_prepare

    comm, _, _ = await ws_connect(alice)
    await comm.send_json_to(
        {"type": "ask", "conversation": None, "expert": "plain", "text": "My name is Ada."}
    )
    first = await receive_until(comm, "done")
    conv_id = first[-1]["conversation"]
    await comm.send_json_to({"type": "ask", "conversation": conv_id, "text": "What is my name?"})
    second = await receive_until(comm, "done")
    assert second[-1]["type"] == "done" and second[-1]["conversation"] == conv_id
    messages = await sync_to_async(
        lambda: list(Message.objects.filter(conversation_id=conv_id).values_list("role", "content"))
    )()
    assert [r for r, _ in messages] == ["user", "assistant", "user", "assistant"]
    # The prompt of a follow-up carries the earlier turns.
    from chat.models import Conversation
    from chat.services import conversation_history

    conv = await sync_to_async(Conversation.objects.select_related("expert").get)(pk=conv_id)
    history = await sync_to_async(conversation_history)(conversation=conv)
    prepared = await sync_to_async(answer_prepare)(expert=conv.expert, question="again?", history=history)
    assert "My name is Ada." in [m["content"] for m in prepared.request.messages]
    await comm.disconnect()


async def test_bad_frames_get_error_frames_and_the_socket_keeps_serving(
    alice, charlie, base_expert, redis_client
) -> None:
    comm, _, _ = await ws_connect(alice)
    await comm.send_to(text_data="{not json")
    assert (await comm.receive_json_from())["code"] == "bad_frame"
    await comm.send_json_to({"type": "ask", "expert": "plain", "text": "   "})
    assert (await comm.receive_json_from())["code"] == "empty_message"
    await comm.send_json_to({"type": "ask", "expert": "plain", "text": "x" * 5000})
    assert (await comm.receive_json_from())["code"] == "message_too_long"
    await comm.send_json_to({"type": "ask", "expert": "nope", "text": "hi"})
    assert (await comm.receive_json_from())["code"] == "not_found"
    await comm.send_json_to({"type": "dance"})
    assert (await comm.receive_json_from())["code"] == "bad_frame"
    # Still serving after all that.
    await comm.send_json_to({"type": "ask", "expert": "plain", "text": "Say hello."})
    assert (await receive_until(comm, "done"))[-1]["type"] == "done"
    await comm.disconnect()


async def test_another_teams_expert_and_conversation_are_not_found(
    alice, charlie, globex, base_expert, redis_client
) -> None:
    comm, _, _ = await ws_connect(alice)
    await comm.send_json_to({"type": "ask", "expert": "plain", "text": "Hello"})
    conv_id = (await receive_until(comm, "done"))[-1]["conversation"]
    await comm.disconnect()
    theirs, _, _ = await ws_connect(charlie)
    await theirs.send_json_to({"type": "ask", "expert": "plain", "text": "Hello"})
    assert (await theirs.receive_json_from())["code"] == "not_found"
    await theirs.send_json_to({"type": "ask", "conversation": conv_id, "text": "Hello"})
    assert (await theirs.receive_json_from())["code"] == "not_found"
    await theirs.disconnect()


async def test_unauthenticated_and_foreign_origin_sockets_are_refused(alice, redis_client) -> None:
    anonymous, connected, _ = await ws_connect(None)
    # Accepted, then closed with our code, so the page can tell "log in again" from a drop.
    assert connected
    assert (await anonymous.receive_output(timeout=5)) == {"type": "websocket.close", "code": 4401}
    _, connected, _ = await ws_connect(alice, origin=b"http://evil.example")
    assert not connected


async def test_stop_ends_generation_and_keeps_the_partial_answer(alice, acme, redis_client) -> None:
    from chat.models import Mode
    from chat.services import expert_create

    await sync_to_async(expert_create)(
        team=acme, name="Long", slug="long", mode=Mode.BASE, max_new_tokens=400
    )
    comm, _, _ = await ws_connect(alice)
    await comm.send_json_to({"type": "ask", "expert": "long", "text": "Write a long story about a pump."})
    while (await comm.receive_json_from(timeout=60))["type"] != "token":
        pass
    await comm.send_json_to({"type": "stop"})
    frames = await receive_until(comm, "done")
    done = frames[-1]
    assert done["status"] == "interrupted" and done["tokens"] < 400
    message = await sync_to_async(Message.objects.get)(pk=done["message"])
    assert message.status == MessageStatus.INTERRUPTED and message.content
    await comm.disconnect()


async def test_a_client_that_disconnects_mid_stream_leaves_an_interrupted_answer(
    alice, acme, redis_client
) -> None:
    import asyncio

    from chat.models import Mode
    from chat.services import expert_create

    await sync_to_async(expert_create)(
        team=acme, name="Long", slug="long2", mode=Mode.BASE, max_new_tokens=400
    )
    comm, _, _ = await ws_connect(alice)
    await comm.send_json_to({"type": "ask", "expert": "long2", "text": "Write a long story about a pump."})
    while (await comm.receive_json_from(timeout=60))["type"] != "token":
        pass
    await comm.disconnect()
    for _ in range(100):
        rows = await sync_to_async(lambda: list(Message.objects.filter(role="assistant")))()
        if rows:
            break
        await asyncio.sleep(0.1)
    assert rows and rows[0].status == MessageStatus.INTERRUPTED and rows[0].tokens < 400


async def test_a_model_that_fails_to_load_gets_an_error_frame(alice, acme, redis_client) -> None:
    from chat.models import Mode
    from chat.services import expert_create

    await sync_to_async(expert_create)(
        team=acme, name="Phi", slug="phi", mode=Mode.BASE, base_model="phi-3-mini-4k-instruct"
    )
    comm, _, _ = await ws_connect(alice)
    await comm.send_json_to({"type": "ask", "expert": "phi", "text": "Hello"})
    frames = await receive_until(comm, "done")
    assert frames[-1]["type"] == "error" and frames[-1]["code"] == "model_unavailable"
    assert "PHI3_MINI_PATH" in frames[-1]["message"]
    failed = await sync_to_async(Message.objects.get)(role="assistant")
    assert failed.status == MessageStatus.FAILED
    await comm.disconnect()


async def test_feedback_is_stored_on_the_answer(alice, base_expert, redis_client) -> None:
    comm, _, _ = await ws_connect(alice)
    await comm.send_json_to({"type": "ask", "expert": "plain", "text": "Hello"})
    message_id = (await receive_until(comm, "done"))[-1]["message"]
    await comm.send_json_to({"type": "feedback", "message": message_id, "value": 1, "comment": "good"})
    assert (await comm.receive_json_from())["type"] == "feedback"
    message = await sync_to_async(Message.objects.get)(pk=message_id)
    assert (message.feedback, message.feedback_comment) == (1, "good")
    await comm.disconnect()
