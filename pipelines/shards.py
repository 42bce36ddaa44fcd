"""One ``colorize auto`` run split across processes and machines.

Two ways, which compose:

- ``--shard K/N``: N independent runs (a Slurm job array, a Kubernetes indexed Job), each of
  which lists the photos itself and does its own part; nothing passes between them, so the
  photos and the arguments must be the same for all N;
- ``torchrun ... -m colorize auto``: one run of WORLD_SIZE processes; rank 0 lists the photos
  once and hands the list to the others, and every rank sends its report rows to rank 0.

Either way the split is the same rule: the photos in the order the run lists them (the
arguments in order, each folder sorted by name), photo i going to part i mod N. Neighbours in
a folder, often of one size and kind, are dealt out to every part alike, so the parts finish
together; and every photo belongs to exactly one part, whatever N is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

Item = TypeVar("Item")


@dataclass(frozen=True)
class Shard:
    """Part ``number`` of ``count``, counted from 1 as job arrays count (``--shard 2/4``)."""

    number: int
    count: int

    @classmethod
    def parse(cls, text: str) -> "Shard":
        """``"K/N"`` with 1 ≤ K ≤ N; raises ValueError with a one-line reason."""
        number, slash, count = text.partition("/")
        try:
            shard = cls(int(number), int(count)) if slash else None
        except ValueError:
            shard = None
        if shard is None:
            raise ValueError(f"{text!r} is not K/N (this run's part K of N, e.g. 2/4)")
        if shard.count < 1 or not 1 <= shard.number <= shard.count:
            raise ValueError(f"{text!r}: K/N needs 1 ≤ K ≤ N (the parts are 1/{max(1, shard.count)} … N/N)")
        return shard

    @classmethod
    def of_rank(cls, rank: int, size: int) -> "Shard":
        """The part of a torchrun rank (counted from 0) among ``size`` ranks."""
        return cls(rank + 1, size)

    def take(self, items: list[Item]) -> list[Item]:
        """This part's items: the K-th, then every N-th after it."""
        return items[self.number - 1 :: self.count]

    @property
    def is_first(self) -> bool:
        """The first part also reports what failed before any photo was read (there is one such list)."""
        return self.number == 1

    def __str__(self) -> str:
        return f"{self.number}/{self.count}"
