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

Under torchrun, ``work_through`` records each rank's outcomes as they come (to rank 0, which
reports them) and stops every rank when one stops the run; ``collect`` has rank 0 gather the
others' outcomes and account for the photos of a rank that died. Nothing here prints: the
command line says what it is given to say.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, TypeVar

from colorize.core.errors import ColorizeError
from colorize.core.files import process_alive, process_place
from colorize.pipelines.signals import interrupts_deferred, interrupts_ignored

Item = TypeVar("Item")
T = TypeVar("T")


# More parts than any job array has (Slurm's largest is 4,000,001 tasks): a larger N is a typo,
# and one of hundreds of digits would not even fit in its part's lock file name ("part-K-of-N").
MAX_PARTS = 10_000_000


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
        if shard.count > MAX_PARTS:
            raise ValueError(f"{text!r}: N is at most {MAX_PARTS:,} (the parts of one run)")
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


# How long a rank waits for the others at a meeting point: rank 0 lists the photos (a walk of a
# big tree on a network disk can take long) while the others wait. A rank that dies is
# torchrun's to notice: it stops the others at once.
_PATIENCE = timedelta(hours=6)
# Rows leave a rank at most this often (one key of the store each time), and a rank looks
# this often whether the run was stopped: store round trips stay a small share of the work.
_EVERY_S = 0.5


@dataclass(frozen=True)
class Torchrun:
    """Where this process stands in a torchrun job, as torchrun's environment says; outside
    torchrun, rank 0 of 1. The one place that environment is read."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    restart: int = 0  # how many times torchrun has restarted the job (--max-restarts)

    @classmethod
    def here(cls) -> "Torchrun":
        env = os.environ
        return cls(
            int(env.get("RANK", "0")),
            int(env.get("LOCAL_RANK", "0")),
            int(env.get("WORLD_SIZE", "1")),
            int(env.get("TORCHELASTIC_RESTART_COUNT", "0")),
        )

    @property
    def shared(self) -> bool:
        """Whether the run is shared out among several processes."""
        return self.world_size > 1

    def gpu(self, count: int) -> int:
        """This process's GPU among ``count``: its local rank, shared round when a node runs
        more processes than it has GPUs."""
        return self.local_rank % count if count > 0 else self.local_rank


class NoTorchrunError(ColorizeError):
    """WORLD_SIZE says torchrun started this process, but torch is not installed."""

    exit_code = 2


class Workers:
    """The processes of one run: this one alone, or under torchrun (WORLD_SIZE > 1) this rank
    among WORLD_SIZE. Rank 0 lists the photos and hands the list to the others (a broadcast
    over gloo); every other rank sends its report rows to rank 0 as it makes them.

    Rows travel through the key-value store the process group was made with (torchrun's
    TCPStore, held by its agent), not in one gather at the end: rank 0 writes each into the
    report as it comes, so a rank that dies has cost only its unfinished photos, in the report
    as in the output folder. Never prints.
    """

    def __init__(self, rank: int = 0, size: int = 1, store=None):
        self.rank, self.size, self._store = rank, size, store
        self._outbox: list[dict] = []
        self._sent = 0  # chunks this rank has posted
        self._read = dict.fromkeys(range(1, size), 0)  # chunks rank 0 has read, by rank
        self._finished: set[int] = set()
        self._last_post = self._last_look = self._last_asked = 0.0
        self._stop: str | None = None
        self._processes: list[tuple[str, int]] = []  # (where, process id) by rank: see process_place

    @classmethod
    @contextlib.contextmanager
    def joined(cls) -> Iterator["Workers"]:
        """The processes of this run, joined while inside (one, unless torchrun started it)."""
        job = Torchrun.here()
        size = job.world_size
        if not job.shared:
            yield cls()
            return
        try:  # torchrun's processes meet through torch's store; inference itself never needs torch
            import torch.distributed as dist
        except ImportError:
            raise NoTorchrunError(
                f"WORLD_SIZE={size}: a run shared out by torchrun needs torch, which this install lacks; "
                "split the run with --shard K/N instead"
            ) from None

        store, rank, size = next(dist.rendezvous("env://", timeout=_PATIENCE))
        store.set_timeout(_PATIENCE)
        # Objects (the photo list) go over gloo, on GPUs too: nothing here is a tensor.
        dist.init_process_group(
            "gloo", store=dist.PrefixStore("default_pg", store), rank=rank, world_size=size, timeout=_PATIENCE
        )
        try:
            # A restarted torchrun job (--max-restarts) meets in the same store: keys of its own.
            ours = dist.PrefixStore(f"colorize-auto/{job.restart}/", store)
            # Every counter exists before rank 0 first reads them: the gather below waits for all.
            ours.add(f"sent/{rank}", 0)
            ours.add(f"finished/{rank}", 0)
            workers = cls(rank, size, ours)
            workers._processes = workers.gather((process_place(), os.getpid()))
            yield workers
        finally:
            dist.destroy_process_group()

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, value: T) -> T:
        """Rank 0's ``value``, on every rank."""
        if self.size == 1:
            return value
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, value: T) -> list[T]:
        """Every rank's ``value``, in rank order, on every rank."""
        if self.size == 1:
            return [value]
        import torch.distributed as dist

        values: list[Any] = [None] * self.size  # each rank's value, once all_gather_object fills it in
        dist.all_gather_object(values, value)
        return values

    # --- ranks other than 0: send

    def post(self, row: dict) -> None:
        """Send a report row to rank 0 (gathered for up to ``_EVERY_S``; ``flush`` sends at once)."""
        self._outbox.append(row)
        if time.monotonic() - self._last_post >= _EVERY_S:
            self.flush()

    def flush(self) -> None:
        if not self._outbox or self._store is None:
            return
        # The rows first, then the count that tells rank 0 they are there.
        self._store.set(f"rows/{self.rank}/{self._sent}", json.dumps(self._outbox, ensure_ascii=False))
        self._sent += 1
        self._store.add(f"sent/{self.rank}", 1)
        self._outbox, self._last_post = [], time.monotonic()

    def finish(self) -> None:
        """Every row of this rank is sent: rank 0 stops waiting for it."""
        self.flush()
        if self._store is not None:
            self._store.add(f"finished/{self.rank}", 1)

    # --- rank 0: receive

    def received(self, wait: bool = False) -> list[dict]:
        """Rows the other ranks have sent since the last call (looked for at most every
        ``_EVERY_S`` unless ``wait``: then at once)."""
        if self._store is None or (not wait and time.monotonic() - self._last_look < _EVERY_S):
            return []
        self._last_look = time.monotonic()
        others = list(self._read)
        counts = [
            int(n) for n in self._store.multi_get([f"sent/{r}" for r in others] + [f"finished/{r}" for r in others])
        ]
        # Finished is read with the counts, before the rows: a rank seen finished has sent them all.
        self._finished = {r for r, done in zip(others, counts[len(others) :]) if done}
        rows = []
        for r, sent in zip(others, counts):
            keys = [f"rows/{r}/{i}" for i in range(self._read[r], sent)]
            for key, chunk in zip(keys, self._store.multi_get(keys) if keys else []):
                rows += json.loads(chunk)
                self._store.delete_key(key)
            self._read[r] = sent
        return rows

    def unfinished(self) -> list[int]:
        """The other ranks not seen finished by the last ``received``."""
        return [r for r in self._read if r not in self._finished]

    def gone(self) -> set[int]:
        """Other ranks known to have died: those on this machine whose process has ended (one
        killed for memory, say). Of a rank on another machine nothing is known."""
        here = process_place()
        return {r for r, (where, pid) in enumerate(self._processes) if r and where == here and not process_alive(pid)}

    # --- any rank: stop them all

    def stop(self, reason: str) -> None:
        """Tell every rank to stop (``--fail-fast``, an interrupt), saying why."""
        self._stop = reason
        if self._store is not None:
            self._store.set("stop", reason)

    def stopped(self) -> str | None:
        """Why the run was stopped, if any rank has stopped it (looked up at most every ``_EVERY_S``)."""
        if self._stop is None and self._store is not None and time.monotonic() - self._last_asked >= _EVERY_S:
            self._last_asked = time.monotonic()
            if self._store.check(["stop"]):
                self._stop = self._store.get("stop").decode()
        return self._stop


# --- one run's outcomes across the ranks (colorize auto)


def unfinished(job, reason: str, rank: int):
    """A job whose outcome never came: skipped, for ``reason``, or as its output says if it
    exists (done, or another photo's: ``existing_output``)."""
    from colorize.pipelines.batch import SKIPPED, Outcome, existing_output

    outcome = existing_output(job) if job.output.exists() else Outcome(job.input, job.output, SKIPPED, reason)
    outcome.rank = rank
    return outcome


def work_through(workers: Workers, refused, outcomes, record, fail_fast: bool) -> tuple[int, str | None]:
    """Record the plan-time failures, then each outcome of this rank's share as it comes.
    Returns how many jobs got an outcome (they come in order: the rest never started) and
    why the run stopped early (None: it did not)."""
    from colorize.pipelines.batch import FAILED

    finished, stopped = 0, None
    try:
        for outcome in refused:
            record(outcome)
        for outcome in outcomes:
            outcome.rank = workers.rank
            with interrupts_deferred():  # counted as finished only once recorded (its report row)
                record(outcome)
                finished += 1
            if fail_fast and outcome.status == FAILED:
                stopped = "stopped by --fail-fast"
                workers.stop(stopped)
                break
            if stopped := workers.stopped():  # by another rank
                break
    except KeyboardInterrupt:
        stopped = "interrupted"
    return finished, stopped


# After an interrupt, how long rank 0 waits for the other ranks' last rows: each finishes the
# writes under way first. (torchrun kills its workers 30 s after asking them to stop.)
_GRACE_S = 10.0


def collect(
    workers: Workers,
    record: Callable[[Any], None],
    reported: set[str],
    jobs: list,
    stopped: str | None,
    rank_lost: Callable[[int, int], None],
) -> str | None:
    """On rank 0, its own share done: ``record`` each of the other ranks' outcomes until every
    rank has finished (or died); then an outcome for each photo of a rank that stopped without
    saying what became of it (a rank killed, or slower to stop than ``_GRACE_S``), which is
    ``rank_lost(rank, photos not done)``. ``reported``: the inputs (``path_text``) of the other
    ranks' outcomes recorded so far. Returns why the run stopped, if it did."""
    from colorize.pipelines.batch import OUTPUT_EXISTS, Outcome, path_text

    if workers.size == 1:
        return stopped

    def take_rows(deadline: float | None) -> None:
        while True:
            for row in workers.received(wait=True):
                record(Outcome.from_record(row))
            waiting_for = set(workers.unfinished()) - workers.gone()
            if not waiting_for or (deadline is not None and time.monotonic() > deadline):
                return
            time.sleep(0.2)

    if stopped:
        workers.stop(stopped)
    if stopped != "interrupted":
        try:
            take_rows(None)
        except KeyboardInterrupt:
            stopped = "interrupted"
    with interrupts_ignored():
        if stopped == "interrupted":
            workers.stop(stopped)
            take_rows(time.monotonic() + _GRACE_S)
        for rank in workers.unfinished():
            lost = [
                unfinished(job, f"not done (rank {rank} stopped)", rank)
                for job in Shard.of_rank(rank, workers.size).take(jobs)
                if path_text(job.input) not in reported
            ]
            for outcome in lost:
                record(outcome)
            rank_lost(rank, sum(outcome.reason != OUTPUT_EXISTS for outcome in lost))
    return stopped
