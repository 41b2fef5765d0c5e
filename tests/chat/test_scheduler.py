from __future__ import annotations

import asyncio

from chat.scheduler import FairQueue


async def test_waiters_are_served_first_come_first_served_and_told_their_position() -> None:
    queue = FairQueue()
    served: list[int] = []
    positions: dict[int, list[int]] = {i: [] for i in range(5)}
    gate = asyncio.Event()

    async def client(i: int) -> None:
        async def tell(pos: int) -> None:
            positions[i].append(pos)

        async with queue.turn(tell):
            served.append(i)
            if i == 0:
                await gate.wait()
            await asyncio.sleep(0.01)

    tasks = []
    for i in range(5):
        tasks.append(asyncio.create_task(client(i)))
        await asyncio.sleep(0.01)  # arrive in order
    gate.set()
    await asyncio.gather(*tasks)
    assert served == [0, 1, 2, 3, 4]
    assert positions[0] == [] and positions[1] == [1] and positions[4] == [4, 3, 2, 1]


async def test_a_waiter_that_leaves_moves_everyone_behind_up() -> None:
    queue = FairQueue()
    gate = asyncio.Event()
    seen: list[int] = []

    async def holder() -> None:
        async with queue.turn():
            await gate.wait()

    async def waiter(record: bool) -> None:
        async def tell(pos: int) -> None:
            if record:
                seen.append(pos)

        async with queue.turn(tell):
            pass

    h = asyncio.create_task(holder())
    await asyncio.sleep(0.01)
    leaver = asyncio.create_task(waiter(False))
    await asyncio.sleep(0.01)
    stayer = asyncio.create_task(waiter(True))
    await asyncio.sleep(0.01)
    leaver.cancel()
    await asyncio.sleep(0.01)
    gate.set()
    await asyncio.gather(h, stayer)
    assert seen == [2, 1] and len(queue) == 0
