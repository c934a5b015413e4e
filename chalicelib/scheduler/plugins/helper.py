"""Score normalisation shared by plugins, as upstream's plugins/helper.DefaultNormalizeScore."""

from __future__ import annotations

MAX_NODE_SCORE = 100  # framework.MaxNodeScore
MIN_NODE_SCORE = 0


def default_normalize(scores: dict[str, int], *, reverse: bool = False) -> dict[str, int]:
    """Scale so the highest raw score becomes 100 (integer division, as Go's); `reverse` flips it.

    All-zero scores stay 0, or all become 100 when reversed.
    """
    highest = max(scores.values(), default=0)
    if highest == 0:
        return dict.fromkeys(scores, MAX_NODE_SCORE) if reverse else dict(scores)
    if reverse:
        return {name: MAX_NODE_SCORE - MAX_NODE_SCORE * s // highest for name, s in scores.items()}
    return {name: MAX_NODE_SCORE * s // highest for name, s in scores.items()}
