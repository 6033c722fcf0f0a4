"""start_tied_child: a child forked from any thread, errors handed back to the caller."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from ccrelay_handler.tied_child import start_tied_child


def _in_thread(target: object) -> object:
    assert callable(target)
    box: list[object] = []
    thread = threading.Thread(target=lambda: box.append(_capture(target)))
    thread.start()
    thread.join(10)
    return box[0]


def _capture(target: object) -> object:
    assert callable(target)
    try:
        return target()
    except BaseException as exc:
        return exc


def test_a_child_started_off_the_main_thread_runs_and_reports_its_status() -> None:
    child = _in_thread(lambda: start_tied_child([sys.executable, "-c", "raise SystemExit(5)"]))
    assert isinstance(child, subprocess.Popen)
    assert child.wait(timeout=10) == 5


def test_a_missing_binary_raises_in_the_callers_thread() -> None:
    error = _in_thread(lambda: start_tied_child(["/no/such/binary"]))
    assert isinstance(error, FileNotFoundError)
    with pytest.raises(FileNotFoundError):
        start_tied_child(["/no/such/binary"])  # the main thread forks directly
