"""The training loop shared by experts and the classifier: short, resumable, deterministic.

Under ``torchrun --nproc_per_node N`` the same loop runs with DistributedDataParallel
(gloo on CPU, nccl on GPU): every global batch is split across ranks, every rank validates
the same photos (so all take the same early-stopping decisions), and only rank 0 writes.

A run lives in a folder (``run_dir``) holding ``checkpoint.pt`` (model, optimiser,
schedule, position, RNG), ``best.safetensors`` and per-epoch sample sheets. Batches of an
epoch come from a permutation seeded by (seed, epoch), and every step reseeds torch from
(seed, global step), so a run resumed from any checkpoint continues exactly as an
uninterrupted one would.
"""

from __future__ import annotations

import io
import math
import os
import shutil
import signal
import time
from dataclasses import MISSING, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol

import torch
from torch import nn

from colorize.core.files import atomic_write
from colorize.core.locations import ONNX_SUFFIX
from colorize.core.modelfile import read_metadata
from colorize.experts.networks import replace_metadata, save_model
from colorize.experts.onnx_export import export_onnx_bytes
from colorize.pipelines.shards import Torchrun
from colorize.pipelines.signals import interrupts_deferred

if TYPE_CHECKING:
    from colorize.pipelines.data import ColorPhotoDataset

# A checkpoint is also written this often inside an epoch: on a CPU one epoch can take a
# quarter of an hour, and a crash or a kill -9 (which skips the save on interrupt) should cost
# minutes, not the epoch.
CHECKPOINT_SECONDS = 600.0

Callback = Callable[..., None]


class TrainingSetupError(ValueError):
    """A training run that cannot be set up as asked (one line for the user): settings out of
    range, an architecture that does not take its arguments, nothing to train on."""


class NotInstalledError(Exception):
    """A run that trained and was judged not worth installing (one line: why, and what to do)."""

    def __init__(self, judgement: str, out: Path, run_dir: Path):
        kept = f"{out} is unchanged" if out.exists() else f"nothing was installed at {out}"
        super().__init__(
            f"not installed: {judgement}; {kept}. The weights are in {run_dir / 'best.safetensors'}: the same "
            f"command with --resume --force installs them without training again"
        )


class TrainingTask(Protocol):
    """What a model family provides to ``fit``."""

    model: nn.Module
    train_set: ColorPhotoDataset  # fit sets its epoch, which its crops follow

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor | None:
        """Loss of ``model`` (maybe DDP-wrapped) on one collated batch; None when no sample was usable."""

    def validate(self, model: nn.Module) -> dict[str, Any]:
        """Validation metrics, JSON values (numbers, and tables such as a confusion matrix); must
        include ``score``, a number (lower is better)."""

    def metadata(self, history: list[dict[str, Any]]) -> dict[str, Any]:
        """The weights-file metadata for the model as it is now; ``history`` goes under
        ``training.history`` (``fit`` completes it there when later epochs lose)."""

    def on_epoch_end(self, epoch: int, run_dir: Path) -> None:
        """A hook for sample sheets and the like."""


@dataclass(frozen=True, kw_only=True)
class FitConfig:
    """The loop's knobs, shared by every model family. The recipe's values come from the
    family's TOML (configs/experts.toml, configs/classifier.toml), the one place they are set;
    only the run's own choices have defaults here."""

    epochs: int  # passes over the training photos; 0 only scores the starting weights
    batch_size: int
    lr: float  # peak learning rate: a short linear warm-up, then cosine decay to 2 % of it
    weight_decay: float
    seed: int  # photo order, crops and initialisation all follow from it
    patience: int  # trained epochs without a better validation score before stopping early
    workers: int  # data-loading processes; 0 decodes in the training process
    # A folder too small for this many batches is passed over again (new crops, new order) until
    # an epoch has them: 60 photos at batch 32 made one step an epoch, and an expert worse than gray.
    min_steps_per_epoch: int
    warmup_fraction: float  # share of the steps over which the learning rate rises to lr
    device: str = "cpu"
    resume: bool = False  # continue from the run folder's checkpoint
    max_steps_per_epoch: int | None = None  # for quick trials and tests
    # Validate the starting weights first, as epoch 0, a candidate like any epoch: fine-tuning
    # then never ships weights that score worse on validation than the ones it started from.
    score_start: bool = False
    # Convolution weights stored channels-last (NHWC) make oneDNN's CPU kernels skip a layout
    # conversion each layer: 1.3-1.4x the photos/s of every network we train, same losses
    # (benchmarks/training_speed.py; bf16 autocast was measured there too and loses to it).
    channels_last: bool = True

    def __post_init__(self):
        for name in ("batch_size", "min_steps_per_epoch"):
            if getattr(self, name) < 1:
                raise TrainingSetupError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("epochs", "workers", "patience"):
            if getattr(self, name) < 0:
                raise TrainingSetupError(f"{name} must be 0 or more, got {getattr(self, name)}")
        if not self.lr > 0 or not self.weight_decay >= 0:
            raise TrainingSetupError(
                f"lr must be above 0 and weight_decay 0 or more, got {self.lr} and {self.weight_decay}"
            )
        if self.max_steps_per_epoch is not None and self.max_steps_per_epoch < 1:
            raise TrainingSetupError(f"max_steps_per_epoch must be at least 1, got {self.max_steps_per_epoch}")
        if not 0 <= self.warmup_fraction < 1:
            raise TrainingSetupError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")


def layered_config(cls, layers: list[dict[str, Any]], **required) -> Any:
    """A family's training config from its layers, later ones winning: configs/*.toml, then
    command-line flags (None: not given). A key that names a ``FitConfig`` field goes to the
    nested ``fit``; an unknown key is an error, and so is a recipe field no layer sets."""
    values = {k: v for layer in layers for k, v in layer.items() if v is not None}
    loop = {k: values.pop(k) for k in list(values) if k in FitConfig.__dataclass_fields__}
    unknown = set(values) - set(cls.__dataclass_fields__)
    if unknown:
        raise TrainingSetupError(f"unknown training setting(s): {', '.join(sorted(unknown))}")
    unset = [*_unset(cls, {**values, **required, "fit": None}), *_unset(FitConfig, loop)]
    if unset:
        raise TrainingSetupError(f"training setting(s) with no value in configs/*.toml: {', '.join(unset)}")
    return cls(**required, **values, fit=FitConfig(**loop))


def _unset(cls, values: dict[str, Any]) -> list[str]:
    """The fields of dataclass ``cls`` without a default that ``values`` leaves out."""
    return [
        name
        for name, spec in cls.__dataclass_fields__.items()
        if spec.default is MISSING and spec.default_factory is MISSING and name not in values
    ]


@dataclass
class FitState:
    epoch: int = 0  # the epoch in progress (or next to start)
    step: int = 0  # batches done within that epoch
    best_score: float = math.inf
    best_epoch: int = -1
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def stale_epochs(self) -> int:
        """Trained epochs since the best trained one.

        Patience asks whether training still improves on itself. The starting weights (epoch 0)
        are a candidate for the file but no yardstick for that: the first epochs of a warm
        restart are meant to score worse than where it started, and its cosine decay brings
        them back.
        """
        trained = [record["score"] for record in self.history if record["epoch"] > 0]
        return len(trained) - 1 - trained.index(min(trained)) if trained else 0


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, min_steps: int = 1) -> list[list[int]]:
    """The batches of one epoch: a seeded permutation of the ``n`` photos, cut into batches.

    A folder too small for ``min_steps`` batches is passed over again, each pass in a new order
    (with random crops, each pass sees new views), until the epoch has ``min_steps``: sixty
    photos would otherwise make one optimiser step an epoch, and a few epochs teach nothing.
    """
    batches: list[list[int]] = []
    passes = 0
    while passes == 0 or len(batches) < min_steps:
        generator = torch.Generator().manual_seed(seed * 100_003 + epoch + passes * 1_000_000_007)
        order = torch.randperm(n, generator=generator).tolist()
        # Drop the ragged tail: BatchNorm dislikes batches of one, and the order changes each
        # pass. A folder smaller than one batch is one (partial) batch.
        usable = (n // batch_size) * batch_size if n >= batch_size else n
        batches += [order[i : i + batch_size] for i in range(0, usable, batch_size)]
        passes += 1
    return batches if passes == 1 else batches[:min_steps]


def _schedule(optimizer: torch.optim.Optimizer, total_steps: int, warmup_fraction: float):
    warmup = max(1, int(total_steps * warmup_fraction))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@dataclass(frozen=True)
class _World:
    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def join(cls, device: str) -> tuple["_World", str]:
        """Join the process group that torchrun describes in the environment, if any."""
        job = Torchrun.here()
        if not job.shared:
            return cls(), device
        import torch.distributed as dist

        if device.startswith("cuda"):
            device = f"cuda:{job.gpu(torch.cuda.device_count())}"  # as resolve_device chose it
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        return cls(dist.get_rank(), dist.get_world_size()), device

    def sync_buffers(self, model: nn.Module) -> None:
        """Give every rank rank 0's BatchNorm statistics.

        DDP does this before each forward; after the last step of an epoch each rank has
        updated them with its own shard, so validation would otherwise differ per rank.
        """
        if self.size > 1:
            import torch.distributed as dist

            for buffer in model.buffers():
                dist.broadcast(buffer, src=0)

    def ranks_agree(self, model: nn.Module) -> bool:
        """True when every rank holds exactly the same weights (DDP's promise, checked)."""
        if self.size == 1:
            return True
        import torch.distributed as dist

        fingerprint = torch.stack(
            [t.detach().double().sum() for t in model.state_dict().values() if t.is_floating_point()]
        )
        gathered = [torch.zeros_like(fingerprint) for _ in range(self.size)]
        dist.all_gather(gathered, fingerprint)
        return all(torch.equal(gathered[0], g) for g in gathered[1:])


def worker_options(workers: int) -> dict[str, Any]:
    """A DataLoader's arguments for ``workers`` data-loading processes (0: load in this one),
    each leaving interrupts to the main process; for every loader, training's and validation's."""
    if not workers:
        return {"num_workers": 0}
    return {
        "num_workers": workers,
        "persistent_workers": False,
        "worker_init_fn": _leave_interrupts_to_the_main_process,
    }


def _leave_interrupts_to_the_main_process(worker_id: int) -> None:
    """In a data-loading worker: ignore Ctrl-C and SIGTERM. A terminal's Ctrl-C (or a kill of
    the process group) reaches every process at once; a worker that died of it first could leave
    the main process's interrupt unseen (training then ran on). The main process stops the
    workers itself when it stops."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _save_checkpoint(path: Path, model, optimizer, scheduler, state: FitState) -> None:
    payload = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "state": {k: v for k, v in vars(state).items()},
    }
    buffer = io.BytesIO()  # serialised first, so that a full disk is an OSError of the write alone
    torch.save(payload, buffer)
    atomic_write(path, lambda handle: handle.write(buffer.getbuffer()))


def fit(task: TrainingTask, config: FitConfig, run_dir: Path, callback: Callback = lambda *a, **k: None) -> FitState:
    """Train ``task.model`` in ``run_dir``; returns the final state. ``best.safetensors`` there
    holds the best epoch."""
    world, device = _World.join(config.device)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_path, best_path = run_dir / "checkpoint.pt", run_dir / "best.safetensors"
    model = task.model.to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)  # inputs follow the weights: no input change needed
    trained = model
    if world.size > 1:
        from torch.nn.parallel import DistributedDataParallel

        trained = DistributedDataParallel(model, device_ids=[device] if device.startswith("cuda") else None)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    n = len(task.train_set)
    steps_per_epoch = len(epoch_batches(n, config.batch_size, config.seed, 0, config.min_steps_per_epoch))
    if config.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, config.max_steps_per_epoch)
    if steps_per_epoch == 0:
        raise TrainingSetupError("no training batches: the training set is empty")
    scheduler = _schedule(optimizer, steps_per_epoch * config.epochs, config.warmup_fraction)
    state = FitState()
    if config.resume:
        if not checkpoint_path.is_file():
            raise TrainingSetupError(f"{checkpoint_path}: nothing to resume")
        saved = torch.load(checkpoint_path, map_location=device, weights_only=True)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        saved["state"].pop("stale_epochs", None)  # stored by checkpoints from before it was derived from the history
        state = FitState(**saved["state"])
        callback("resumed", epoch=state.epoch, step=state.step)

    loader_args: dict[str, Any] = dict(collate_fn=getattr(task, "collate", None), **worker_options(config.workers))
    if (config.epochs == 0 or config.score_start) and not state.history:
        # The starting model is scored as epoch 0: with nothing to train it is kept, and what
        # validation chooses (an expert's output gain) is chosen again on this run's photos; when
        # fine-tuning, it is the candidate every trained epoch has to beat.
        record = _score_epoch(task, model, state, world, best_path, epoch=0, images_per_s=None)
        callback("epoch_end", **record, best=True)
    last_saved = time.monotonic()
    unscored = None
    try:
        while state.epoch < config.epochs and state.stale_epochs < config.patience:
            task.train_set.epoch = state.epoch
            batches = epoch_batches(n, config.batch_size, config.seed, state.epoch, config.min_steps_per_epoch)
            batches = batches[:steps_per_epoch]
            batches = [batch[world.rank :: world.size] for batch in batches]
            loader = torch.utils.data.DataLoader(task.train_set, batch_sampler=batches[state.step :], **loader_args)
            model.train()
            callback("epoch_start", epoch=state.epoch, steps=steps_per_epoch, done=state.step)
            started, images = time.perf_counter(), 0
            for batch in loader:
                torch.manual_seed(config.seed * 1_000_003 + state.epoch * steps_per_epoch + state.step)
                loss = task.loss(trained, batch)
                with interrupts_deferred():  # a step is taken and counted, or not at all
                    if loss is not None:
                        optimizer.zero_grad(set_to_none=True)
                        loss.backward()
                        optimizer.step()
                    scheduler.step()
                    state.step += 1
                if world.is_main and time.monotonic() - last_saved >= CHECKPOINT_SECONDS:
                    _save_checkpoint(checkpoint_path, model, optimizer, scheduler, state)
                    last_saved = time.monotonic()
                images += len(batch[0]) * world.size
                rate = images / max(1e-9, time.perf_counter() - started)
                callback(
                    "step",
                    epoch=state.epoch,
                    step=state.step,
                    loss=None if loss is None else loss.item(),
                    images_per_s=rate,
                )
            world.sync_buffers(model)
            rate = images / max(1e-9, time.perf_counter() - started)
            # Until the epoch is counted done, an interrupt restores the state from before its
            # validation: a half-done one would leave a best epoch whose best file was never
            # written, or record the epoch twice once --resume validates it again.
            unscored = replace(state, history=list(state.history))
            record = _score_epoch(task, model, state, world, best_path, epoch=state.epoch + 1, images_per_s=rate)
            if world.is_main:
                task.on_epoch_end(state.epoch, run_dir)
            state.epoch, state.step = state.epoch + 1, 0
            unscored = None
            if world.is_main:
                _save_checkpoint(checkpoint_path, model, optimizer, scheduler, state)
                last_saved = time.monotonic()
            callback("epoch_end", **record, best=state.best_epoch + 1 == record["epoch"])
    except KeyboardInterrupt:
        state = unscored or state
        if world.is_main:
            _save_checkpoint(checkpoint_path, model, optimizer, scheduler, state)
        callback("interrupted", epoch=state.epoch, step=state.step, checkpoint=str(checkpoint_path))
        raise
    if world.is_main and state.history and state.history[-1]["epoch"] != state.best_epoch + 1:
        # The best file was written when it was best; the epochs tried after it, which did not
        # beat it, belong in its record too.
        best = read_metadata(best_path).metadata
        best["training"]["history"] = state.history
        replace_metadata(best_path, best)
    if world.size > 1:
        import torch.distributed as dist

        dist.barrier()  # rank 0 has written best.safetensors before anyone installs it
    return state


def _score_epoch(
    task: TrainingTask,
    model: nn.Module,
    state: FitState,
    world: _World,
    best_path: Path,
    epoch: int,
    images_per_s: float | None,
) -> dict[str, Any]:
    """Validate the model as it is after ``epoch`` epochs (0: before any training), record it
    in the history, and write ``best_path`` when it is the best so far."""
    metrics = task.validate(model)
    record = {"epoch": epoch, "images_per_s": None if images_per_s is None else round(images_per_s, 2), **metrics}
    if world.size > 1:
        record.update(world_size=world.size, ranks_agree=world.ranks_agree(model))
        if not record["ranks_agree"]:
            raise RuntimeError("distributed ranks hold different weights; stopping")
    state.history.append(record)
    if metrics["score"] < state.best_score:
        state.best_score, state.best_epoch = metrics["score"], epoch - 1
        if world.is_main:
            save_model(model, best_path, task.metadata(state.history))
    return record


def is_main_process() -> bool:
    """False on the other ranks of a torchrun job (they neither write nor print)."""
    return Torchrun.here().rank == 0


def backup_path(installed: Path) -> Path:
    """Where the file an install replaced is kept (one generation): ``backup/`` beside it."""
    return installed.parent / "backup" / installed.name


def install_best(run_dir: Path, out: Path) -> Path:
    """Install the run's best weights at ``out`` (a .safetensors file) and their ONNX graph
    beside it (what inference runs), each atomically: a reader never sees half a file. The ONNX
    file is written last, so it is at least as new as the safetensors file and stands for the
    model (core/locations.py). The files they replace are kept at ``backup_path``.

    On ranks other than 0 nothing is copied, and the run's own best file is returned.
    """
    best = Path(run_dir) / "best.safetensors"
    if not is_main_process():
        return best
    out = Path(out)
    graph = out.with_suffix(ONNX_SUFFIX)
    # Exported before anything is replaced: a network that cannot be exported leaves the
    # installed model as it was.
    data = export_onnx_bytes(best)
    for installed in (out, graph):
        _back_up(installed)
    with open(best, "rb") as source:
        atomic_write(out, lambda handle: shutil.copyfileobj(source, handle))
    atomic_write(graph, lambda handle: handle.write(data))
    return out


def _back_up(installed: Path) -> None:
    """Keep ``installed`` at its backup path with its own times, which decide whether its ONNX
    file or its safetensors file stands for the model; where there is none, no backup of it
    either (an older one would be brought back beside a file it was not made from)."""
    backup = backup_path(installed)
    if not installed.is_file():
        backup.unlink(missing_ok=True)
        return
    with open(installed, "rb") as previous:
        atomic_write(backup, lambda handle: shutil.copyfileobj(previous, handle))
    times = installed.stat()
    os.utime(backup, ns=(times.st_atime_ns, times.st_mtime_ns))
