"""The one place creator_sync asks whether a creator is offboarded (called by the transform step)."""

from __future__ import annotations

from collections.abc import Iterable

from creator_sync.pipeline.state import OffboardingState, StateStore, creator_hash


def offboarded_ids(candidates: Iterable[str], store: StateStore | None = None) -> set[str]:
    """The ids among ``candidates`` (InsightIQ user ids) that are offboarded and not re-enabled."""
    hashes = OffboardingState(store or StateStore()).offboarded_hashes()
    if not hashes:
        return set()
    return {c for c in candidates if creator_hash(str(c)) in hashes}
