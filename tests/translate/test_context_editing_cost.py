"""What context editing costs when it clears nothing: a trigger out of reach is not counted."""

from __future__ import annotations

from typing import Any

import pytest

from ccrelay_translate import apply_context_management, context_editing, estimate_tokens
from ccrelay_translate.tokens import tokens_ceiling

from .test_context_editing import TOOL_USES, count, session


def test_a_trigger_out_of_reach_is_not_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the package's estimate, a prompt whose every character as a token stays under the
    trigger is known not to reach it: the estimate is not taken. Above that bound it is."""
    counted: list[int] = []

    def estimate(body: dict[str, Any]) -> int:
        counted.append(estimate_tokens(body))
        return counted[-1]

    monkeypatch.setattr(context_editing, "estimate_tokens", estimate)
    request = session(6, [{"type": TOOL_USES}])  # under the default 100k, by far
    assert apply_context_management(request, count_tokens=estimate)[1] == []
    assert counted == []
    characters = tokens_ceiling(request)  # the bound: over the trigger, the estimate is not
    request["context_management"]["edits"][0]["trigger"] = count("input_tokens", characters - 1)
    assert apply_context_management(request, count_tokens=estimate)[1] == []
    assert len(counted) == 1 and counted[0] < characters - 1
    request["context_management"]["edits"][0]["trigger"] = count("input_tokens", counted[0] - 1)
    _, applied = apply_context_management(request, count_tokens=estimate)
    assert applied is not None and applied[0]["cleared_tool_uses"] == 3
