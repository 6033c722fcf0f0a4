"""Child processes that die with the worker, however the worker dies.

A worker killed with SIGKILL (or by a second signal, or by an ``os._exit``) runs no cleanup, so
stopping children in ``finally`` blocks is not enough: ``ollama serve`` or the embedded
redis-server would be left running, holding the GPU, the port or the RDB file. On Linux the
kernel can send a child a signal when its parent dies (``prctl(PR_SET_PDEATHSIG)``); we ask for
SIGTERM, so the child still shuts down cleanly.

That signal fires when the *thread* that forked the child exits, not the process (prctl(2)).
A child started from a worker thread (asyncio's executor, whose threads come and go) would be
killed while the worker still needs it, so children are forked by the main thread, or else by
one thread that lives as long as the interpreter.

Elsewhere than Linux the children are started plainly and rely on the cleanup paths alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["start_tied_child"]

_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[[int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
    prctl = libc.prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


_PRCTL = _load_prctl()


def _tie_to(parent_pid: int) -> Callable[[], None]:
    """The child's first step after fork: die with the parent, or now if it is gone already."""

    def tie() -> None:
        if _PRCTL is not None:
            _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent_pid:  # the parent died between fork and prctl
            os._exit(1)

    return tie


# One thread for the whole process forks the children asked for off the main thread; an
# executor's thread stays until interpreter exit, when the children should stop anyway.
_FORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ccrelay-forker")


def start_tied_child(argv: Sequence[str], **popen: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen(argv, **popen)``, with the child sent SIGTERM when this process dies."""
    if _PRCTL is None:
        return subprocess.Popen(list(argv), **popen)
    tie = _tie_to(os.getpid())

    def fork() -> subprocess.Popen[bytes]:
        return subprocess.Popen(list(argv), preexec_fn=tie, **popen)

    if threading.current_thread() is threading.main_thread():
        return fork()
    return _FORKER.submit(fork).result()
