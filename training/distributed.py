"""Training on several processes with PyTorch's DistributedDataParallel (DDP), in one place.

`torchrun --nproc_per_node=N -m training <task> ...` (or `... all ...`) starts N copies of the same
command; torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) says which
one each is, and `init` joins them into one process group: NCCL on CUDA (one GPU per process,
cuda:LOCAL_RANK), gloo on the CPU. Multi-node runs use torchrun's rendezvous the same way. A
process started without torchrun (WORLD_SIZE unset or 1) is a single process, and nothing here
changes what it computes.

What makes N processes equal one process with the same global batch (up to floating-point order):
- **The data.** Every process runs the task's `next_batch` for the whole global batch (same
  seed, same sampler, same random augmentation, so the same batch everywhere) and keeps its own
  slice (`TrainTask.shard_batch`): rank r takes items r*B/N .. (r+1)*B/N - 1. Preparing the whole
  batch costs each process a little CPU, and buys the exact random draws of one process.
- **Random draws inside a step** (latents, DiffAugment, the gradient penalty's mixing weights)
  go through `randn` / `rand` / `randint` below: each process draws the global batch's numbers
  and keeps its slice, so every process's generator stays where a single process's would be.
  Dropout (the edges2photo U-Net's noise) likewise draws the global batch's mask and keeps
  its slice.
- **BatchNorm** in train mode normalises with the statistics of the *global* batch: inside a
  step, every BatchNorm layer sums over all processes (a differentiable all-reduce, so gradients
  flow back across processes as well), as `torch.nn.SyncBatchNorm` does; that class only runs
  on GPUs, this works with gloo on the CPU too. Outside a step (sample grids, evaluation,
  BatchNorm recalibration, export, all on rank 0 alone) the layers are plain BatchNorm.
- **Gradients** are averaged by DDP. A GAN step runs a model several times before one backward
  (D on real, then on fake) and runs D frozen inside G's step; `_DDP` runs a model whose
  parameters are all frozen, or that runs without gradients, past DDP's reducer (nothing to
  reduce), which keeps the reducer's one-backward-per-forward bookkeeping right for every task
  (tests/training/test_distributed.py trains each one under 2 processes).
- Rank 0 alone writes: logs, state, samples, evaluations, exports; the others wait at barriers.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

# rank 0 alone evaluates (an in-run FID takes minutes on a CPU) and exports (the anomaly task
# calibrates its thresholds) while the other processes wait at the next collective or barrier
TIMEOUT = dt.timedelta(hours=3)


class _State:
    active = False  # inside a training step of a multi-process run: shard draws, sync BatchNorm
    bn_group: Any = None  # the process group BatchNorm statistics are summed over


_state = _State()


# ---- the process group ------------------------------------------------------------------------
def requested_world() -> int:
    """How many processes torchrun started for this run (1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """Whether this process writes files and prints (rank 0, or the only process)."""
    return rank() == 0


def init(cuda: bool) -> torch.device:
    """The device this process trains on; joins torchrun's process group on the first call when
    torchrun started several processes (later calls reuse it: `python -m training all` trains
    every task in one group). On CUDA each process takes the GPU of its LOCAL_RANK."""
    if requested_world() <= 1:
        return torch.device("cuda" if cuda else "cpu")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if not dist.is_initialized():
        if cuda:
            torch.cuda.set_device(device)
        backend = "nccl" if cuda else "gloo"
        dist.init_process_group(backend, timeout=TIMEOUT, device_id=device if cuda else None)
        # BatchNorm's all-reduces run inside autograd, between DDP's own gradient all-reduces:
        # a group of their own keeps the two streams of collectives from depending on each other
        _state.bn_group = dist.new_group(backend=backend, timeout=TIMEOUT)
    elif device.type != backend_device():
        raise SystemExit(
            f"this {dist.get_backend()} process group cannot train on {device.type}: one torchrun "
            "command trains on one kind of device (use one --preset for every task)"
        )
    return device


def backend_device() -> str:
    return "cuda" if dist.get_backend() == "nccl" else "cpu"


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
        _state.bn_group = None


def barrier() -> None:
    """Wait until every process arrives (no-op for a single process)."""
    if is_distributed():
        if backend_device() == "cuda":
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


def broadcast(obj: Any) -> Any:
    """Rank 0's `obj` on every process (its own for a single process): decisions that must agree."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def same_everywhere(value: int, what: str) -> None:
    """Stop with a clear message unless every process holds the same integer `value`."""
    if not is_distributed():
        return
    device = torch.device(backend_device(), torch.cuda.current_device()) if backend_device() == "cuda" else None
    t = torch.tensor([value, -value], dtype=torch.int64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    if int(t[0]) != value or -int(t[1]) != value:
        raise SystemExit(
            f"the processes disagree on {what} (rank {rank()}: {value}, range {-int(t[1])}..{int(t[0])}); "
            "a multi-node run needs --out on a file system every node sees"
        )


@contextmanager
def local() -> Iterator[None]:
    """Inside a training step, work that is the same on every process and not a slice of the
    batch (e.g. re-estimating BatchNorm statistics on fixed inputs): plain layers, plain draws."""
    active, _state.active = _state.active, False
    try:
        yield
    finally:
        _state.active = active


# ---- sharded random draws ---------------------------------------------------------------------
def _shard(full: torch.Tensor, n: int) -> torch.Tensor:
    r = dist.get_rank()
    return full[r * n : (r + 1) * n]


def randn(n: int, *shape: int, **kwargs: Any) -> torch.Tensor:
    """`torch.randn(n, *shape)` for this process's `n` items of the global batch: in a training
    step of a multi-process run, the global batch's numbers are drawn and this process's slice
    kept; anywhere else, exactly `torch.randn(n, *shape, **kwargs)`."""
    if not _state.active:
        return torch.randn(n, *shape, **kwargs)
    return _shard(torch.randn(n * dist.get_world_size(), *shape, **kwargs), n)


def rand(n: int, *shape: int, **kwargs: Any) -> torch.Tensor:
    """`torch.rand(n, *shape)`, sharded like `randn`."""
    if not _state.active:
        return torch.rand(n, *shape, **kwargs)
    return _shard(torch.rand(n * dist.get_world_size(), *shape, **kwargs), n)


def randint(low: int, high: int, size: Sequence[int], **kwargs: Any) -> torch.Tensor:
    """`torch.randint(low, high, size)` with size[0] items of the batch, sharded like `randn`."""
    if not _state.active:
        return torch.randint(low, high, tuple(size), **kwargs)
    n = size[0]
    full = torch.randint(low, high, (n * dist.get_world_size(), *size[1:]), **kwargs)
    return _shard(full, n)


def shard(x: torch.Tensor, rank: int, world: int, dim: int = 0) -> torch.Tensor:
    """Items rank*B/N .. (rank+1)*B/N - 1 of `x` along `dim` (B of them in all)."""
    size = x.shape[dim]
    if size % world:
        raise SystemExit(
            f"a global batch of {size} cannot be split evenly across {world} processes: "
            f"pass --batch-size as a multiple of {world}"
        )
    n = size // world
    return x.narrow(dim, rank * n, n)


# ---- BatchNorm over the global batch ----------------------------------------------------------
class _AllReduceSum(torch.autograd.Function):
    """Sum over the processes, differentiable: the gradient of a sum is the sum of the gradients."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        dist.all_reduce(x, group=_state.bn_group)
        return x

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return _AllReduceSum.apply(grad.contiguous())


class _GlobalBatchNorm:
    """Mixed into a BatchNorm class: in a training step of a multi-process run, train-mode
    normalisation uses the mean and (biased) variance of the global batch, and the running
    statistics are updated with them exactly as `_BatchNorm.forward` updates them with its own."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn: nn.modules.batchnorm._BatchNorm = self  # type: ignore[assignment]
        if not (_state.active and bn.training):
            return super().forward(x)  # type: ignore[misc]
        bn._check_input_dim(x)
        factor = 0.0 if bn.momentum is None else bn.momentum
        if bn.track_running_stats and bn.num_batches_tracked is not None:
            bn.num_batches_tracked.add_(1)
            factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
        dims = [d for d in range(x.dim()) if d != 1]
        view = [1, -1] + [1] * (x.dim() - 2)
        xf = x.float()
        count = xf.new_tensor([x.numel() // x.shape[1]])
        sums = _AllReduceSum.apply(torch.cat([xf.sum(dims), count]))
        n = sums[-1]
        mean = sums[:-1] / n
        centred = xf - mean.view(view)
        var = _AllReduceSum.apply(centred.square().sum(dims)) / n  # two passes: as exact as one process
        y = centred * torch.rsqrt(var + bn.eps).view(view)
        if bn.affine:
            y = y * bn.weight.view(view) + bn.bias.view(view)
        if bn.track_running_stats:
            with torch.no_grad():
                bn.running_mean.mul_(1 - factor).add_(mean.detach(), alpha=factor)
                unbiased = var.detach() * (n.detach() / (n.detach() - 1).clamp_min(1))
                bn.running_var.mul_(1 - factor).add_(unbiased, alpha=factor)
        return y.to(x.dtype)


class _GlobalDropout:
    """Mixed into a dropout class: in a training step of a multi-process run, the layer's own
    forward is run on ones of the *global* batch's shape (so it draws, or does not draw, exactly
    the mask one process would draw for the whole batch, with the layer's own rule for when it
    drops) and this process's slice of that mask multiplies the input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _state.active:
            return super().forward(x)  # type: ignore[misc]
        n = x.shape[0]
        ones = x.new_ones((n * dist.get_world_size(), *x.shape[1:]))
        if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
            ones = ones.contiguous(memory_format=torch.channels_last)  # the same element order as x's
        return x * _shard(super().forward(ones), n)  # type: ignore[misc]


_GLOBAL_CLASSES: dict[type, type] = {}
_MIXINS = ((nn.modules.batchnorm._BatchNorm, _GlobalBatchNorm), (nn.modules.dropout._DropoutNd, _GlobalDropout))


def make_global(module: nn.Module) -> int:
    """Make the batch-dependent layers of `module` act on the global batch inside training
    steps: BatchNorm normalises over it, dropout draws its mask for it. Each such layer's class
    becomes a subclass of its own class (state_dict, isinstance and copies are unchanged), which
    outside a step behaves as before. Returns how many layers were converted."""
    count = 0
    for m in module.modules():
        cls = type(m)
        for base, mixin in _MIXINS:
            if isinstance(m, base) and not issubclass(cls, mixin):
                if cls not in _GLOBAL_CLASSES:
                    _GLOBAL_CLASSES[cls] = type(f"Global{cls.__name__}", (mixin, cls), {})
                m.__class__ = _GLOBAL_CLASSES[cls]
                count += 1
    return count


# ---- the DDP wrapper --------------------------------------------------------------------------
class _DDP(DistributedDataParallel):
    """DDP for GAN steps: a call with every parameter frozen (D inside G's step, a frozen G) or
    without gradients goes straight to the model, past the reducer, which would otherwise wait
    for gradients that never come. Attributes the task reads (G.latent_dim, D.features) and the
    state dict pass through to the model."""

    def __init__(self, module: nn.Module, **kwargs: Any) -> None:
        super().__init__(module, **kwargs)
        self._params = [p for p in module.parameters()]
        self._ready = True

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if not torch.is_grad_enabled() or not any(p.requires_grad for p in self._params):
            return self.module(*args, **kwargs)
        return super().forward(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if not self.__dict__.get("_ready"):
                raise
            return getattr(self.__dict__["_modules"]["module"], name)

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self.module.state_dict(*args, **kwargs)

    def load_state_dict(self, *args: Any, **kwargs: Any) -> Any:
        return self.module.load_state_dict(*args, **kwargs)


def unwrap(module: nn.Module) -> nn.Module:
    """The model inside a DDP wrapper (the module itself otherwise)."""
    return module.module if isinstance(module, DistributedDataParallel) else module


class Replica:
    """One process's part of a multi-process run: the task's models wrapped in DDP, their
    BatchNorm made global, and the step context in which the task trains them."""

    def __init__(self, task: Any, device: torch.device) -> None:
        self.task, self.device = task, device
        self.rank, self.world = rank(), world()
        self.layers = sum(make_global(m) for m in task.models.values())
        ids = [device.index] if device.type == "cuda" else None
        # forward_sync_buffers=False: the BatchNorm statistics are global, hence equal everywhere
        # already, and re-broadcasting them between a model's forward passes would overwrite
        # buffers that autograd still needs
        self.wrapped = {
            k: _DDP(m, device_ids=ids, forward_sync_buffers=False)
            for k, m in task.models.items()
            if any(p.requires_grad for p in m.parameters())
        }

    @property
    def description(self) -> str:
        return f"DDP, {self.world} processes ({dist.get_backend()})"

    def shard(self, batch: Any) -> Any:
        return self.task.shard_batch(batch, self.rank, self.world)

    @contextmanager
    def step(self) -> Iterator[None]:
        """The task's train_step runs in here: `task.models` holds the DDP wrappers, random draws
        are sharded, BatchNorm is global."""
        plain = dict(self.task.models)
        self.task.models.update(self.wrapped)
        _state.active = True
        try:
            yield
        finally:
            _state.active = False
            self.task.models.update(plain)

    def average(self, values: list[float], stop: bool) -> tuple[list[float], bool]:
        """The mean of each loss over the processes (each is its slice's mean: together the global
        batch's), and whether any process was asked to stop: every process then decides alike."""
        dev = self.device if self.device.type == "cuda" else torch.device("cpu")
        t = torch.tensor([*values, float(stop)], dtype=torch.float64, device=dev)
        dist.all_reduce(t)
        out = (t[:-1] / self.world).tolist()
        return out, bool(t[-1] > 0)
