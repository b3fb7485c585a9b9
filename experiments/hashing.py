"""Deterministic assignment exactly as GrowthBook's SDKs do it (hash version 2).

Pure functions over strings and floats: identical in every process and machine (Python's
built-in string hashing is salted per process and never used here).
"""

from __future__ import annotations

from collections.abc import Sequence

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193
_MASK = 0xFFFFFFFF

Range = tuple[float, float]


def fnv1a32(text: str) -> int:
    """32-bit FNV-1a over the string's UTF-16 code units (what `charCodeAt` gives in JS)."""
    h = _FNV_OFFSET
    data = text.encode("utf-16-le")
    for i in range(0, len(data), 2):
        h ^= data[i] | (data[i + 1] << 8)
        h = (h * _FNV_PRIME) & _MASK
    return h


def gb_hash(seed: str, value: str, version: int = 2) -> float | None:
    """GrowthBook's hash: a number in [0, 1) for (seed, value); None for unknown versions."""
    if version == 2:
        return (fnv1a32(str(fnv1a32(seed + value))) % 10000) / 10000
    if version == 1:
        return (fnv1a32(value + seed) % 1000) / 1000
    return None


def bucket_ranges(
    num_variations: int, coverage: float = 1.0, weights: Sequence[float] | None = None
) -> list[Range]:
    """Variation ranges laid end to end, each shrunk to `coverage` of its weight.

    Bad inputs fall back as GrowthBook's `getBucketRanges` does: coverage is clamped to
    [0, 1]; weights of the wrong length or not summing to 1 (±0.01) become equal weights.
    """
    coverage = min(max(coverage, 0.0), 1.0)
    equal = [1.0 / num_variations] * num_variations if num_variations > 0 else []
    if weights is None or len(weights) != num_variations or not 0.99 <= sum(weights) <= 1.01:
        weights = equal
    ranges: list[Range] = []
    cumulative = 0.0
    for weight in weights:
        start = cumulative
        cumulative += weight
        ranges.append((start, start + coverage * weight))
    return ranges


def in_range(n: float, rng: Range) -> bool:
    return rng[0] <= n < rng[1]


def choose_variation(n: float, ranges: Sequence[Range]) -> int:
    """Index of the range holding `n`, or -1 when the user falls outside every range."""
    for index, rng in enumerate(ranges):
        if in_range(n, rng):
            return index
    return -1


def in_namespace(user_id: str, namespace: tuple[str, float, float]) -> bool:
    """Mutual exclusion: experiments sharing a namespace id own disjoint [start, end) slices."""
    name, start, end = namespace
    n = gb_hash("__" + name, user_id, 1)
    return n is not None and start <= n < end
