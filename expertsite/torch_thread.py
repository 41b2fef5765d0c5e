"""One long-lived thread per process runs torch's CPU work: query embeddings and transformers.

torch threads with OpenMP, and libgomp keeps a separate team of worker threads for every
application thread that runs a parallel region. Once their sum exceeds the cores, libgomp
stops spinning between regions and sleeps instead: transformers decoding in a generation
thread then ran at 15-16 tokens/s instead of 26-27 on 2 cores, because the web process
had also embedded a query in another thread. With every torch call in this one thread
there is a single team.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

THREAD_NAME = "torch-cpu"
_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=THREAD_NAME)


def on_torch_thread() -> bool:
    return threading.current_thread().name.startswith(THREAD_NAME)


def torch_call(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``fn`` on the torch thread and wait for it; inline when already there."""
    if on_torch_thread():
        return fn(*args, **kwargs)
    return _executor.submit(fn, *args, **kwargs).result()


def torch_submit(fn: Callable[[], None]) -> Future[None]:
    """Start ``fn`` on the torch thread without waiting (a generation others stream from).

    Never call from the torch thread itself: ``fn`` would queue behind its caller.
    """
    if on_torch_thread():
        raise RuntimeError("torch_submit from the torch thread would wait on itself")
    return _executor.submit(fn)
