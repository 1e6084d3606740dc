"""Optimization profiles (shape buckets) for dynamic batch and sequence length, and their selection.

Pure Python: unit-tested without TensorRT.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence


@dataclass(frozen=True)
class Profile:
    """Shapes [batch, seq] TensorRT tunes for: kernels are chosen for ``opt``, valid from min to max."""

    min_batch: int
    opt_batch: int
    max_batch: int
    min_seq: int
    opt_seq: int
    max_seq: int

    def covers(self, batch: int, seq: int) -> bool:
        return self.min_batch <= batch <= self.max_batch and self.min_seq <= seq <= self.max_seq

    def shapes(self) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
        return (self.min_batch, self.min_seq), (self.opt_batch, self.opt_seq), (self.max_batch, self.max_seq)

    def to_dict(self) -> dict:
        return asdict(self)


def default_profiles(max_seq_len: int = 128, max_batch: int = 256, opt_batch: int = 128) -> list[Profile]:
    """Length buckets: short text gets kernels tuned for short text. Sequence lengths are
    multiples of 8 (the tokenizer pads to them)."""
    edges = [e for e in (32, 64, 128, 256, 512) if e < max_seq_len] + [max_seq_len]
    profiles = []
    low = 1
    for high in edges:
        # Fewer rows fit a longer bucket in the same memory and time.
        rows = max(1, min(max_batch, max_batch * 128 // max(high, 128)))
        opt_rows = max(1, min(opt_batch, rows))
        opt_seq = max(low, min(high, (low + high) // 2 // 8 * 8 or 8))
        profiles.append(Profile(1, opt_rows, rows, low, opt_seq, high))
        low = high + 1
    return profiles


def packed_profiles(max_seq_len: int = 128, max_sequences: int = 128) -> list[Profile]:
    """Profiles for packed sequences (``tokenization.PackedBatch``): a group's width is
    ``PACK_WIDTH`` (128) unless a row is longer, so kernels are tuned at the bucket's widest."""
    profiles: list[Profile] = []
    for p in default_profiles(max_seq_len, max_sequences):
        if p.max_seq < min(max_seq_len, 128):
            continue  # narrower than any packed group
        profiles.append(Profile(1, min(32, p.max_batch), p.max_batch, 1 if not profiles else p.min_seq, p.max_seq,
                                p.max_seq))
    return profiles


def select_profile(profiles: Sequence[Profile], batch: int, seq: int) -> int:
    """Index of the narrowest profile covering (batch, seq); ValueError if none does."""
    candidates = [(p.max_seq - p.min_seq, p.max_batch, i) for i, p in enumerate(profiles) if p.covers(batch, seq)]
    if not candidates:
        raise ValueError(f"no optimization profile covers batch {batch} x {seq} tokens; "
                         f"profiles: {[p.shapes() for p in profiles]}")
    return min(candidates)[2]


def max_rows_for(profiles: Sequence[Profile], seq: int) -> int:
    """Largest batch any profile accepts at this sequence length (0 if none)."""
    return max((p.max_batch for p in profiles if p.min_seq <= seq <= p.max_seq), default=0)
