"""Hypothesis keeps its caches in a temporary directory, not in the clone (tests leave nothing
behind); the directory goes when the test process ends."""

from __future__ import annotations

import atexit
import shutil
import tempfile

from hypothesis.configuration import set_hypothesis_home_dir

_HOME = tempfile.mkdtemp(prefix="ccrelay-hypothesis-")
set_hypothesis_home_dir(_HOME)
atexit.register(shutil.rmtree, _HOME, True)
