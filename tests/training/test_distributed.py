"""DistributedDataParallel on the CPU: 2 processes joined by gloo, as torchrun starts them (the same
environment variables), run here with torch.multiprocessing.spawn so each process can report what
it holds. One task is checked number for number against a single process with the same global
batch; `all` checks that every task's GAN step (several forward passes, frozen players, the
gradient penalty's double backward) trains under DDP with the processes in step."""

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch.optim.optimizer import register_optimizer_step_pre_hook

from gandemo import registry
from tests.conftest import free_port, make_image_folder
from training import distributed
from training.cli import main
from training.loop import cpu_has_fast_bf16

WORLD = 2
FACES = ["--ngf", "8", "--ndf", "8", "--batch-size", "8", "--no-progress", "--threads", "1", "--steps", "3"]


def _models(trainer) -> dict:
    return {k: {n: v.detach().clone() for n, v in m.state_dict().items()} for k, m in trainer.task.models.items()}


def first_gradients(into: list) -> Callable[[], None]:
    """Record, into `into`, the gradients each optimiser is about to apply at its first step (in the
    order the optimisers step); returns the function that removes the hook."""
    seen: set[int] = set()

    def hook(optimizer: torch.optim.Optimizer, args, kwargs) -> None:
        if id(optimizer) in seen:
            return
        seen.add(id(optimizer))
        into.append(
            [p.grad.detach().clone() for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        )

    return register_optimizer_step_pre_hook(hook).remove


def _worker(rank: int, port: int, argv: list[str], dump: str, stand_ins: bool) -> None:
    """One process of the run: torchrun's environment, the ordinary command line, and a record of
    what this process wrote and the models it ended with."""
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)
    from training import loop

    if stand_ins:
        from tests.training.test_all import use_stand_ins

        use_stand_ins(setattr)
    save = torch.save
    record: dict = {"saved": [], "exported": [], "samples": 0, "models": {}, "grads": []}
    first_gradients(record["grads"])

    def counted_save(obj, path, *a, **k):
        record["saved"].append(str(path))
        return save(obj, path, *a, **k)

    def counted_checkpoint(folder, *a, **k):
        record["exported"].append(str(folder))
        return real_checkpoint(folder, *a, **k)

    real_checkpoint, real_samples, real_train = loop.save_checkpoint, loop.Trainer.write_samples, loop.Trainer.train
    torch.save, loop.save_checkpoint = counted_save, counted_checkpoint

    def samples(self):
        record["samples"] += 1
        return real_samples(self)

    def train(self):
        real_train(self)
        record["models"][f"{self.task.name}-{self.task.variant}"] = _models(self)
        record["processes"] = distributed.world()

    loop.Trainer.write_samples, loop.Trainer.train = samples, train
    try:
        code = main(argv)
    finally:
        distributed.shutdown()
    record["code"] = code
    save(record, Path(dump) / f"rank{rank}.pt")


def spawn(argv: list[str], dump: Path, stand_ins: bool = False) -> list[dict]:
    mp.spawn(_worker, args=(free_port(), argv, str(dump), stand_ins), nprocs=WORLD)
    return [torch.load(dump / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


def assert_same(a: dict, b: dict, atol: float = 0.0) -> None:
    for k in a:
        for n, v in a[k].items():
            if atol == 0.0 or not v.is_floating_point():
                assert torch.equal(v, b[k][n]), f"{k}.{n} differs"
            else:
                assert torch.allclose(v, b[k][n], rtol=0, atol=atol), f"{k}.{n}: {(v - b[k][n]).abs().max():.2e}"


def test_one_process_is_untouched_by_the_distributed_helpers():
    """Outside a multi-process step the helpers are torch's own draws and the converted layers are
    the layers they were: a single process computes what it computed before DDP existed."""
    from gandemo.nets.pix2pix import UNetGenerator

    for draw, plain in (
        (lambda: distributed.randn(3, 2), lambda: torch.randn(3, 2)),
        (lambda: distributed.rand(3, 1, 1, 1), lambda: torch.rand(3, 1, 1, 1)),
        (lambda: distributed.randint(-2, 3, (3, 1, 1)), lambda: torch.randint(-2, 3, (3, 1, 1))),
    ):
        torch.manual_seed(0)
        a = draw()
        torch.manual_seed(0)
        assert torch.equal(a, plain())
    torch.manual_seed(0)
    net = UNetGenerator(ngf=4, max_mult=2).train()  # BatchNorm and dropout
    twin = UNetGenerator(ngf=4, max_mult=2).train()
    twin.load_state_dict(net.state_dict())
    assert distributed.make_global(twin) == 14 and type(twin.down[1][1]).__name__ == "GlobalBatchNorm2d"
    assert isinstance(twin.down[1][1], torch.nn.BatchNorm2d) and twin.state_dict().keys() == net.state_dict().keys()
    x = torch.rand(2, 3, 128, 128) * 2 - 1
    torch.manual_seed(1)
    y = net(x)
    torch.manual_seed(1)
    assert torch.equal(y, twin(x))
    assert all(torch.equal(v, twin.state_dict()[k]) for k, v in net.state_dict().items())


def test_a_global_batch_is_split_in_equal_slices_along_the_tasks_batch_axis():
    x = torch.arange(12).reshape(6, 2)
    assert distributed.shard(x, 1, 3).tolist() == [[4, 5], [6, 7]]
    with pytest.raises(SystemExit, match="multiple of 4"):
        distributed.shard(x, 0, 4)
    from training.music import MusicTask
    from training.superres import SuperresTask

    lr_hr = (torch.zeros(4, 3, 8, 8), torch.ones(4, 3, 32, 32))  # a tuple batch: each part is split
    assert [t.shape[0] for t in SuperresTask.__new__(SuperresTask).shard_batch(lr_hr, 0, 2)] == [2, 2]
    critic = torch.arange(3 * 4).reshape(3, 4)  # n_critic batches of 4 items: the items are on dim 1
    assert MusicTask.__new__(MusicTask).shard_batch(critic, 1, 2).tolist() == [[2, 3], [6, 7], [10, 11]]


# Precision modes this CPU runs: fp32 everywhere, bf16 autocast where the CPU computes bf16 natively.
PRECISIONS = ["off"] + (["auto"] if cpu_has_fast_bf16() else [])
LR = 2e-4  # the faces preset's learning rate (both runs use it)


@pytest.mark.parametrize("amp", PRECISIONS)
def test_two_processes_train_faces_like_one_process_with_the_same_global_batch(tmp_path: Path, amp: str):
    """2 processes x 4 and 1 process x 8 are compared on what is invariant up to the arithmetic: the first
    step's gradients (the same sums in another order) and the bulk of the weights after 3 Adam steps.
    Single weights are not compared: Adam turns a tiny difference in a near-zero gradient into a step of
    ~lr, and the kernels and their summation order differ between CPUs (an AVX-512/AMX Xeon under bf16
    measured 1.2e-3 = 6 lr on one weight)."""
    data = make_image_folder(tmp_path / "faces", n=24)
    out = tmp_path / "ddp"
    faces = [*FACES, "--amp", amp]
    argv = ["faces", "--data", str(data), "--out", str(out), *faces, "--sample-every", "2", "--save-every", "0"]
    ranks = spawn(argv, tmp_path)
    assert [r["code"] for r in ranks] == [0, 0] and ranks[0]["processes"] == WORLD
    # rank 0 alone writes: state (every step with --save-every 0), samples, the checkpoint
    assert ranks[0]["saved"] and all(p.endswith("state.pt.tmp") for p in ranks[0]["saved"])
    assert ranks[0]["exported"] == [str(out / "checkpoint")] and ranks[0]["samples"] == 1
    assert ranks[1]["saved"] == [] and ranks[1]["exported"] == [] and ranks[1]["samples"] == 0
    assert len((out / "log.csv").read_text().splitlines()) == 2  # one header, one row: not one per process
    # DDP keeps the processes' models identical, bit for bit (the same averaged gradients, the same kernels)
    a, b = ranks[0]["models"]["faces-default"], ranks[1]["models"]["faces-default"]
    assert_same(a, b)
    assert ranks[0]["grads"] and all(
        torch.equal(x, y)
        for g, h in zip(ranks[0]["grads"], ranks[1]["grads"], strict=True)
        for x, y in zip(g, h, strict=True)
    )
    state = torch.load(out / "state.pt", weights_only=True)
    assert state["step"] == 3 and state["sessions"][0]["processes"] == WORLD
    assert_same(a, state["models"])  # the saved state is the processes' models

    # one process, the same global batch of 8
    from training import loop

    single: dict = {}
    real_train = loop.Trainer.train
    remove = first_gradients(single.setdefault("grads", []))
    try:
        loop.Trainer.train = lambda self: (real_train(self), single.update(_models(self)))[0]
        assert main(["faces", "--data", str(data), "--out", str(tmp_path / "one"), *faces]) == 0
    finally:
        loop.Trainer.train = real_train
        remove()
    grads = single.pop("grads")
    # the first step's gradients of each player (D's, then G's), as one vector: the same up to summation
    # order. fp32 measured ~1.5e-6 of the norm. bf16 autocast keeps 8 bits of mantissa per product and its
    # kernels block a batch of 4 and of 8 differently: D's measured 1.6e-2, G's (through D's backward) 0.10.
    # A real DDP fault is far above either bound: gradients summed, not averaged, are 1.0 off; a wrong slice more.
    tol = 1e-4 if amp == "off" else 0.25
    assert len(grads) == len(ranks[0]["grads"]) == 2
    for mine, theirs in zip(ranks[0]["grads"], grads, strict=True):
        x, y = torch.cat([g.flatten() for g in mine]), torch.cat([g.flatten() for g in theirs])
        err = float((x - y).norm() / y.norm())
        assert err <= tol, f"the gradients differ by {err:.1e} of their norm"
    # the weights after 3 steps, judged by quantiles of |difference| over all weights: a near-zero gradient
    # whose sign differs between summation orders moves its weight ~lr the other way (Adam normalises the
    # step), so the largest difference is not bounded by the arithmetic. Measured on an AVX-512-BF16 EPYC:
    # fp32 median 0, 99.9 % 7e-9; bf16 autocast median 0.12 lr, 99 % 2.3 lr (largest 6.4 lr).
    d = torch.cat([(a[k][n] - single[k][n]).abs().flatten() for k in a for n in a[k] if a[k][n].is_floating_point()])
    if amp == "off":
        assert float(d.median()) <= 1e-7 and float(d.quantile(0.999)) <= 1e-5, f"{float(d.quantile(0.999)):.1e}"
    else:
        assert float(d.median()) <= LR / 2 and float(d.quantile(0.99)) <= 5 * LR, f"{float(d.median()):.1e}"
    # ... and the logged losses (rank 0 logs the means over both processes) agree with one process's
    ddp_log = [float(x) for x in (out / "log.csv").read_text().splitlines()[-1].split(",")[2:]]
    one_log = [float(x) for x in (tmp_path / "one" / "log.csv").read_text().splitlines()[-1].split(",")[2:]]
    assert ddp_log == pytest.approx(one_log, abs=2e-4 if tol < 1e-3 else 2e-2)


def test_every_task_trains_under_two_processes_and_the_app_loads_what_rank_0_ships(tmp_path: Path, use_checkpoints):
    from tests.training.test_all import TINY, make_data_root

    root, runs, ckpts = make_data_root(tmp_path / "data"), tmp_path / "runs", tmp_path / "ckpt"
    argv = ["all", "--data-root", str(root), "--out-root", str(runs), "--export-root", str(ckpts), *TINY]
    ranks = spawn([*argv, "--batch-size", "4", "--no-evaluate"], tmp_path, stand_ins=True)  # 2 a process
    assert [r["code"] for r in ranks] == [0, 0]
    keys = ["faces-default", "edges2photo-default", "superres-psnr", "superres-gan", "music-default"]
    keys += ["music-harmonize", "anomaly-magnetic_tile"]
    assert list(ranks[0]["models"]) == keys == list(ranks[1]["models"])
    for key in keys:
        assert_same(ranks[0]["models"][key], ranks[1]["models"][key])
    assert ranks[1]["exported"] == [] and len(ranks[0]["exported"]) == len(keys)
    use_checkpoints(ckpts)
    for key in keys:
        task, variant = key.split("-", 1)
        card = registry.get(task, variant).card
        assert card["training"]["sessions"][0]["processes"] == WORLD
        assert card["hyperparameters"]["batch_size"] == 4  # the global batch
