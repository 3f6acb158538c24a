"""Training beyond one process: what a step costs in memory, and tools to check the claims.

* :func:`training_memory` and :func:`gpt_activation_bytes` -- a memory model: parameters,
  gradients, AdamW states and activations, in bytes; :func:`sharded_memory` divides it
  over N devices the way ZeRO stages 1, 2 and 3 (and FSDP) do.
* :func:`measure_memory` -- the peak memory of a step as torch's profiler measures it,
  split into parameters, gradients, optimizer state, activations, ...
* :class:`GradientRecorder` -- a Lightning callback that writes each rank's gradients (and
  the batches they came from) to a folder, to compare DDP or accumulation with one process.
* :func:`checkpoint_blocks` -- activation checkpointing of a model's Transformer blocks.
* :func:`resumable_loader` -- a data order fixed by a seed and the step a run starts at,
  so that a resumed run sees the batches an uninterrupted one would.
* :func:`profile_table` -- where a step's time goes, as a table of the top operators.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import lightning as L
import pandas as pd
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint
from torch.utils.data import DataLoader

__all__ = [
    "GradientRecorder",
    "MemoryEstimate",
    "checkpoint_blocks",
    "gpt_activation_bytes",
    "load_recorded",
    "measure_memory",
    "profile_table",
    "ResumableSampler",
    "resumable_loader",
    "run_fsdp_cpu",
    "sharded_memory",
    "training_memory",
]


# --- memory model ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MemoryEstimate:
    """Bytes held during a training step, by kind (one device)."""

    params: float
    grads: float
    optimizer: float
    activations: float

    @property
    def total(self) -> float:
        return self.params + self.grads + self.optimizer + self.activations

    def as_dict(self) -> dict[str, float]:
        return {**dataclasses.asdict(self), "total": self.total}


def _positive(**values):
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def training_memory(
    n_params: int,
    activations: float = 0.0,
    *,
    bytes_per_param: int = 4,
    optimizer_states: int = 2,
) -> MemoryEstimate:
    """The model of a training step's memory, in bytes: ``n_params`` parameters and as many
    gradients of ``bytes_per_param`` bytes (fp32: 4), ``optimizer_states`` fp32 values per
    parameter (Adam/AdamW: 2, the moments m and v; SGD with momentum: 1) and the
    ``activations`` kept for the backward pass (e.g. :func:`gpt_activation_bytes`).

    With fp32 and Adam that is 16 bytes per parameter before any activation."""
    _positive(n_params=n_params, bytes_per_param=bytes_per_param)
    if optimizer_states < 0 or activations < 0:
        raise ValueError("optimizer_states and activations must be >= 0")
    return MemoryEstimate(
        params=n_params * bytes_per_param,
        grads=n_params * bytes_per_param,
        optimizer=n_params * 4 * optimizer_states,
        activations=float(activations),
    )


def gpt_activation_bytes(
    batch: int,
    seq_len: int,
    d_model: int,
    n_layer: int,
    n_head: int,
    vocab_size: int,
    *,
    bytes_per_value: int = 4,
    checkpointing: bool = False,
) -> int:
    """Bytes of the tensors a GPT (:class:`fmbook.models.gpt.GPT`, no dropout) saves in its
    forward pass for the backward pass, counted from its operations. With B*T = N tokens:

    * per block ``17 N d + (4 + h) N`` values: the inputs of the two LayerNorms (2 N d)
      and their means and inverse deviations (4 N); the normalised inputs of the
      query/key/value and first MLP projections (2 N d); q, k, v and the attention output
      (4 N d) with one log-sum-exp per head and query (h N, a fused attention kernel that
      never stores the T x T matrix); the heads concatenated for the output projection
      (N d); the MLP's hidden layer before and after the GELU (2 x 4 N d);
    * after the blocks ``2 N d + 2 N + 2 N |V|``: the final LayerNorm, its output for the
      head, and the logits with their log-softmax.

    With ``checkpointing`` a block keeps only its input (N d) and recomputes the rest in the
    backward pass, where one block's activations exist again at a time."""
    _positive(
        batch=batch,
        seq_len=seq_len,
        d_model=d_model,
        n_layer=n_layer,
        n_head=n_head,
        vocab_size=vocab_size,
        bytes_per_value=bytes_per_value,
    )
    n, d = batch * seq_len, d_model
    block = 17 * n * d + (4 + n_head) * n
    head = 2 * n * d + 2 * n + 2 * n * vocab_size
    blocks = n_layer * n * d + block if checkpointing else n_layer * block
    return bytes_per_value * (blocks + head)


def sharded_memory(estimate: MemoryEstimate, n_devices: int, stage: int) -> MemoryEstimate:
    """Memory per device when ``n_devices`` data-parallel devices share ``estimate``:

    * stage 0 (DDP): everything replicated;
    * stage 1 (ZeRO-1): optimizer states sharded (each device keeps 1/N of them);
    * stage 2 (ZeRO-2): gradients sharded too;
    * stage 3 (ZeRO-3, FSDP's full sharding): parameters sharded too.

    Activations are not sharded by data parallelism: each device keeps those of its own
    micro-batch. (The temporary buffers of the all-gathers are left out of the model.)"""
    _positive(n_devices=n_devices)
    if stage not in (0, 1, 2, 3):
        raise ValueError(f"stage must be 0, 1, 2 or 3, got {stage!r}")
    n = n_devices
    return MemoryEstimate(
        params=estimate.params / n if stage >= 3 else estimate.params,
        grads=estimate.grads / n if stage >= 2 else estimate.grads,
        optimizer=estimate.optimizer / n if stage >= 1 else estimate.optimizer,
        activations=estimate.activations,
    )


# --- measuring memory -----------------------------------------------------------------

# the columns of torch.profiler's memory timeline (torch.profiler._memory_profiler)
_TIMELINE_COLUMNS = (
    "unused",
    "params",
    "optimizer",
    "inputs",
    "temporary",
    "activations",
    "grads",
    "autograd",
    "unknown",
)


def measure_memory(step: Callable[[], object]) -> dict[str, int]:
    """Run ``step()`` under ``torch.profiler`` with memory profiling and return the peak
    of the CPU memory held by tensors during it, in bytes (``"peak"``), and what each kind
    of tensor held at that moment (``"params"``, ``"grads"``, ``"optimizer"``,
    ``"activations"``, ``"temporary"``, ...).

    The profiler records every allocation and free of the CPU allocator, with the operator
    that made it, and classifies each tensor by its role in the autograd graph (its memory
    timeline). Tensors that exist before ``step`` are counted from the start."""
    from torch.profiler import ProfilerActivity, profile

    with profile(
        activities=[ProfilerActivity.CPU],
        profile_memory=True,
        record_shapes=True,
        with_stack=True,
    ) as prof:
        step()
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # the timeline export is deprecated
        path = Path(folder) / "timeline.json"
        prof.export_memory_timeline(str(path), device="cpu")
        _, sizes = json.loads(path.read_text())
    if not sizes:
        raise RuntimeError("the profiler recorded no CPU memory events")
    totals = [sum(row) for row in sizes]
    at_peak = sizes[max(range(len(totals)), key=totals.__getitem__)]
    out = {"peak": max(totals)}
    out.update({k: v for k, v in zip(_TIMELINE_COLUMNS, at_peak, strict=True) if k != "unused"})
    return out


# --- gradients of each rank -----------------------------------------------------------


class GradientRecorder(L.Callback):
    """Writes, for each of the first ``steps`` optimizer steps, every rank's gradients
    (after DDP's all-reduce and after accumulation: what the optimizer is about to use),
    the micro-batches that produced them and the weights before the step, to
    ``folder/step{s}-rank{r}.pt``. Read them back with :func:`load_recorded`."""

    def __init__(self, folder: str | Path, steps: int = 1):
        _positive(steps=steps)
        self.folder, self.steps = Path(folder), steps
        self._batches: list = []
        self._weights: dict | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step >= self.steps:
            return
        if not self._batches:  # first micro-batch of this optimizer step
            self._weights = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
        self._batches.append([t.detach().cpu().clone() for t in batch])

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        step = trainer.global_step
        if step >= self.steps:
            return
        grads = {
            name: p.grad.detach().cpu().clone()
            for name, p in pl_module.named_parameters()
            if p.grad is not None
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        record = {"grads": grads, "batches": self._batches, "weights": self._weights}
        torch.save(record, self.folder / f"step{step}-rank{trainer.global_rank}.pt")
        self._batches, self._weights = [], None


def load_recorded(folder: str | Path, step: int = 0) -> list[dict]:
    """The records of :class:`GradientRecorder` for ``step``, one per rank, in rank order."""
    files = sorted(
        Path(folder).glob(f"step{step}-rank*.pt"),
        key=lambda p: int(p.stem.rsplit("rank", 1)[1]),
    )
    if not files:
        raise FileNotFoundError(f"no recorded gradients for step {step} in {folder}")
    return [torch.load(f, map_location="cpu", weights_only=True) for f in files]


# --- activation checkpointing ---------------------------------------------------------


class CheckpointedBlock(nn.Module):
    """A block whose activations are recomputed in the backward pass instead of stored
    (:func:`torch.utils.checkpoint.checkpoint`, non-reentrant). Same outputs and gradients."""

    def __init__(self, block: nn.Module):
        super().__init__()
        self.block = block

    def forward(self, x, *args, **kwargs):
        if not torch.is_grad_enabled():
            return self.block(x, *args, **kwargs)
        return checkpoint(self.block, x, *args, use_reentrant=False, **kwargs)


def checkpoint_blocks(model: nn.Module, attribute: str = "blocks") -> nn.Module:
    """Wrap every module of ``model.<attribute>`` (an ``nn.ModuleList``, e.g. a GPT's
    blocks) in :class:`CheckpointedBlock`, in place; returns ``model``."""
    blocks = getattr(model, attribute, None)
    if not isinstance(blocks, nn.ModuleList):
        raise ValueError(f"model.{attribute} must be an nn.ModuleList of blocks")
    for i, block in enumerate(blocks):
        if not isinstance(block, CheckpointedBlock):
            blocks[i] = CheckpointedBlock(block)
    return model


# --- data order that survives a restart -----------------------------------------------


class ResumableSampler(torch.utils.data.Sampler):
    """Indices of ``n`` items in an order fixed by ``seed`` alone (epoch e: a permutation
    drawn from ``seed + e``), starting after the first ``start`` of them.

    The order depends on no global random state, and a run resumed at optimizer step k
    continues with ``start = k * batch_size``: the batches an uninterrupted run would see
    (what large training frameworks call the *consumed samples*)."""

    def __init__(self, n: int, seed: int = 0, start: int = 0):
        _positive(n=n)
        if start < 0:
            raise ValueError(f"start must be >= 0, got {start}")
        self.n, self.seed, self.start = n, seed, start

    def __len__(self) -> int:
        return self.n - self.start % self.n

    def __iter__(self):
        epoch, offset = divmod(self.start, self.n)
        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + epoch))
        yield from order[offset:].tolist()


def resumable_loader(loader: DataLoader, seed: int = 0, start_step: int = 0) -> DataLoader:
    """``loader``'s dataset and batch size with a :class:`ResumableSampler`: the data order
    of a run that starts (or resumes) at optimizer step ``start_step``."""
    if start_step < 0:
        raise ValueError(f"start_step must be >= 0, got {start_step}")
    sampler = ResumableSampler(len(loader.dataset), seed, start_step * loader.batch_size)
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=sampler,
        drop_last=loader.drop_last,
        num_workers=loader.num_workers,
    )


# --- where the time goes --------------------------------------------------------------


def profile_table(step: Callable[[], object], top: int = 10) -> pd.DataFrame:
    """Run ``step()`` under ``torch.profiler`` and return the ``top`` operators by their
    own CPU time (time inside the operator, not in operators it calls): name, calls,
    self time in ms and its share of the step's total self time."""
    from torch.profiler import ProfilerActivity, profile

    _positive(top=top)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    rows = [
        {"op": e.key, "calls": e.count, "self_ms": e.self_cpu_time_total / 1000}
        for e in prof.key_averages()
    ]
    table = pd.DataFrame(rows).sort_values("self_ms", ascending=False, ignore_index=True)
    table["share"] = table["self_ms"] / table["self_ms"].sum()
    return table.head(top)


# --- FSDP on CPU ----------------------------------------------------------------------


def _fsdp_worker(rank: int, world: int, port: int, folder: str, make_model, batch) -> None:
    import os

    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    # A forked child must not use the OpenMP thread pool its parent started (it would wait
    # forever on the parent's threads, which fork does not copy): one thread per process,
    # as Lightning's DDP sets too.
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        mesh = init_device_mesh("cpu", (world,))
        model = make_model()  # every rank builds the same model (same seed)
        total = sum(p.numel() for p in model.parameters())
        for block in model.blocks:  # one all-gather unit per block, then the rest
            fully_shard(block, mesh=mesh)
        fully_shard(model, mesh=mesh)
        local = sum(p.to_local().numel() for p in model.parameters())
        x, y = (t.chunk(world)[rank] for t in batch)  # each rank its share of the batch
        _, loss = model(x, y)
        loss.backward()
        grads = {n: p.grad.full_tensor() for n, p in model.named_parameters()}
        result = {"rank": rank, "params_total": total, "params_local": local}
        torch.save({**result, "loss": loss.detach(), "grads": grads}, f"{folder}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def run_fsdp_cpu(make_model: Callable[[], nn.Module], batch, n_processes: int = 2, port=29533):
    """One forward and backward pass of ``make_model()`` fully sharded (FSDP2,
    :func:`torch.distributed.fsdp.fully_shard`, every block and the root) over
    ``n_processes`` CPU processes (gloo), each on its share of ``batch`` (x, y).

    Returns one dict per rank: ``params_total`` (the model's parameter count),
    ``params_local`` (the elements this rank stores), its ``loss`` and the full gradients
    (gathered from the shards). Uses ``fork``, so it runs from a notebook on Linux."""
    import torch.multiprocessing as mp

    _positive(n_processes=n_processes)
    with tempfile.TemporaryDirectory() as folder:
        args = (n_processes, port, folder, make_model, batch)
        mp.start_processes(_fsdp_worker, args=args, nprocs=n_processes, start_method="fork")
        return [torch.load(f"{folder}/rank{r}.pt", weights_only=True) for r in range(n_processes)]
