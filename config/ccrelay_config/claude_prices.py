"""Anthropic's list prices for the Claude models Claude Code 2.1.x asks for, and how to read a
Claude model id.

USD per million tokens, standard tier. Source, unless a line says otherwise: the "Model
pricing" table of https://platform.claude.com/docs/en/about-claude/pricing (a stored copy from
about September 2026: it lists Fable 5.1 down to Opus 4). The page's multipliers are
:data:`ccrelay_config.pricing.CACHE_WRITE_FACTOR` (a 5-minute cache write, 1.25x input) and
:data:`ccrelay_config.pricing.CACHE_READ_FACTOR` (a cache read, 0.1x); the models that read
cheaper say so here. Check the live page before relying on a figure marked uncertain.

Claude Code 2.1.197 asks for ``claude-opus-4-8`` by default and 2.1.332 for ``claude-opus-5-5``;
their binaries also name every id listed below (background requests: the Haiku of the day).

Ids come as ``claude-<family>-<major>[-<minor>][-<date>]`` (``claude-sonnet-4-5-20250929``) or,
before Claude 4, ``claude-<major>-<minor>-<family>[-<date>]`` (``claude-3-5-haiku-20241022``);
`claude_version` reads both, so a dated id, an alias (``claude-opus-4-0``) and ``-latest`` find
their model's price.
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Final

__all__ = ["CLAUDE_FAMILIES", "ClaudeVersion", "claude_version", "list_prices"]

CLAUDE_FAMILIES: Final = ("opus", "sonnet", "haiku", "fable", "mythos")

ClaudeVersion = tuple[str, int, int]
"""(family, major, minor): ``claude-opus-4-1-20250805`` is ("opus", 4, 1)."""

_FAMILY = "|".join(CLAUDE_FAMILIES)
_CURRENT = re.compile(rf"^claude-({_FAMILY})(?:-(\d+))?(?:-(\d{{1,2}}))?(?=$|[-@\[:])")
_BEFORE_4 = re.compile(rf"^claude-(\d+)(?:-(\d{{1,2}}))?-({_FAMILY})(?=$|[-@\[:])")


def claude_version(model: str) -> ClaudeVersion | None:
    """The family and version a Claude model id names; None when it names none."""
    name = model.strip().lower()
    found = _CURRENT.match(name)
    if found is not None:
        family, major, minor = found.groups()
        return family, int(major or 0), int(minor or 0)
    found = _BEFORE_4.match(name)
    if found is not None:
        major, minor, family = found.groups()
        return family, int(major), int(minor or 0)
    return None


def list_prices() -> MappingProxyType[str, tuple[float, float, float | None]]:
    """id -> (input, output, cache read when it is not 0.1x input)."""
    return _LIST_PRICES


_LIST_PRICES: Final = MappingProxyType(
    {
        # Fable and Mythos. 5.1 reads from the cache at 0.025x. No price is published for 5.2
        # (the SDK knows the ids): it is priced as the newest known of its family, and said so.
        "claude-fable-5-1": (10.0, 50.0, 0.25),
        "claude-mythos-5-1": (10.0, 50.0, 0.25),
        "claude-fable-5": (10.0, 50.0, None),
        "claude-mythos-5": (10.0, 50.0, None),
        # Opus. 5.5 (released 2026-09-22): $4/$20, cache reads at 0.05x ($0.20). Uncertain: not
        # in the stored copy of the page; from third-party quotes of it (the kurofune/claudit
        # v1.8.2 release notes, 2026-09-24, and a research note quoting the page).
        "claude-opus-5-5": (4.0, 20.0, 0.20),
        "claude-opus-5": (5.0, 25.0, None),
        "claude-opus-4-8": (5.0, 25.0, None),  # $5/$25 since Opus 4.5
        "claude-opus-4-7": (5.0, 25.0, None),
        "claude-opus-4-6": (5.0, 25.0, None),
        "claude-opus-4-5": (5.0, 25.0, None),
        "claude-opus-4-1": (15.0, 75.0, None),  # retired except on Bedrock / Google Cloud
        "claude-opus-4": (15.0, 75.0, None),  # also claude-opus-4-0, claude-opus-4-20250514
        # Sonnet. 5 and 5.5 at $2/$10: uncertain. Earlier copies of the page scheduled Sonnet 5
        # to rise to $3/$15 on 2026-09-01; a later quote says that will not happen. Sonnet
        # 5.5's cache read is quoted both as 0.1x ($0.20, most copies) and 0.05x.
        "claude-sonnet-5-5": (2.0, 10.0, None),
        "claude-sonnet-5": (2.0, 10.0, None),
        "claude-sonnet-4-6": (3.0, 15.0, None),  # the whole 1M window at this price
        "claude-sonnet-4-5": (3.0, 15.0, None),
        "claude-sonnet-4": (3.0, 15.0, None),
        "claude-3-7-sonnet": (3.0, 15.0, None),  # an older copy of the page
        "claude-3-5-sonnet": (3.0, 15.0, None),  # an older copy of the page
        # Haiku. 5.5 is priced by prompt length: $0.10/$0.50 up to 100K input tokens, $0.50/
        # $2.50 above (uncertain: one source says $0.20/$1). Claude Code's Haiku requests
        # (titles, summaries) are short, so the first tier is used.
        "claude-haiku-5-5": (0.10, 0.50, None),
        "claude-haiku-4-5": (1.0, 5.0, None),
        "claude-3-5-haiku": (0.80, 4.0, None),
        "claude-3-haiku": (0.25, 1.25, None),  # an older copy of the page
    }
)
