"""One generation at a time per model, first come first served, positions told to waiters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager


class _Ticket:
    __slots__ = ("changed",)

    def __init__(self) -> None:
        self.changed = asyncio.Event()


class FairQueue:
    """A FIFO lock whose waiters learn how many requests are ahead of them."""

    def __init__(self) -> None:
        self._line: list[_Ticket] = []

    def __len__(self) -> int:
        return len(self._line)

    @asynccontextmanager
    async def turn(self, on_position: Callable[[int], Awaitable[None]] | None = None) -> AsyncIterator[None]:
        ticket = _Ticket()
        self._line.append(ticket)
        try:
            last = -1
            while (ahead := self._line.index(ticket)) > 0:
                if ahead != last and on_position is not None:
                    await on_position(ahead)
                last = ahead
                ticket.changed.clear()
                await ticket.changed.wait()
            yield
        finally:
            # Leaving (done, stopped or disconnected while waiting) moves everyone behind up.
            self._line.remove(ticket)
            for waiting in self._line:
                waiting.changed.set()


_queues: dict[str, FairQueue] = {}


def queue_for(key: str) -> FairQueue:
    """Per-process queues: the event loop is one thread, so no lock is needed here."""
    if key not in _queues:
        _queues[key] = FairQueue()
    return _queues[key]
