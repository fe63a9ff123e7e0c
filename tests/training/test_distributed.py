"""DistributedDataParallel on the CPU: 2 processes joined by gloo, as torchrun starts them (the same
environment variables), run here with torch.multiprocessing.spawn so each process can report what
it holds. One task is checked number for number against a single process with the same global
batch; `all` checks that every task's GAN step (several forward passes, frozen players, the
gradient penalty's double backward) trains under DDP with the processes in step."""

import os
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from gandemo import registry
from tests.conftest import free_port, make_image_folder
from training import distributed
from training.cli import main

WORLD = 2
FACES = ["--ngf", "8", "--ndf", "8", "--batch-size", "8", "--no-progress", "--threads", "1", "--steps", "3"]


def _models(trainer) -> dict:
    return {k: {n: v.detach().clone() for n, v in m.state_dict().items()} for k, m in trainer.task.models.items()}


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
    record: dict = {"saved": [], "exported": [], "samples": 0, "models": {}}

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


def test_two_processes_train_faces_like_one_process_with_the_same_global_batch(tmp_path: Path):
    data = make_image_folder(tmp_path / "faces", n=24)
    out = tmp_path / "ddp"
    argv = ["faces", "--data", str(data), "--out", str(out), *FACES, "--sample-every", "2", "--save-every", "0"]
    ranks = spawn(argv, tmp_path)
    assert [r["code"] for r in ranks] == [0, 0] and ranks[0]["processes"] == WORLD
    # rank 0 alone writes: state (every step with --save-every 0), samples, the checkpoint
    assert ranks[0]["saved"] and all(p.endswith("state.pt.tmp") for p in ranks[0]["saved"])
    assert ranks[0]["exported"] == [str(out / "checkpoint")] and ranks[0]["samples"] == 1
    assert ranks[1]["saved"] == [] and ranks[1]["exported"] == [] and ranks[1]["samples"] == 0
    assert len((out / "log.csv").read_text().splitlines()) == 2  # one header, one row: not one per process
    # DDP keeps the processes' models identical, bit for bit
    a, b = ranks[0]["models"]["faces-default"], ranks[1]["models"]["faces-default"]
    assert_same(a, b)
    state = torch.load(out / "state.pt", weights_only=True)
    assert state["step"] == 3 and state["sessions"][0]["processes"] == WORLD
    assert_same(a, state["models"])  # the saved state is the processes' models

    # one process, the same global batch of 8: the same models up to floating-point order (the
    # largest difference measured is ~2e-7; one Adam step at this learning rate moves 2e-4)
    from training import loop

    single: dict = {}
    real_train = loop.Trainer.train
    try:
        loop.Trainer.train = lambda self: (real_train(self), single.update(_models(self)))[0]
        assert main(["faces", "--data", str(data), "--out", str(tmp_path / "one"), *FACES]) == 0
    finally:
        loop.Trainer.train = real_train
    assert_same(a, single, atol=1e-5)
    # ... and the logged losses (rank 0 logs the means over both processes) agree with one process's
    ddp_log = (out / "log.csv").read_text().splitlines()[-1].split(",")[2:]
    one_log = (tmp_path / "one" / "log.csv").read_text().splitlines()[-1].split(",")[2:]
    assert [float(x) for x in ddp_log] == pytest.approx([float(x) for x in one_log], abs=2e-4)


def test_every_task_trains_under_two_processes_and_the_app_loads_what_rank_0_ships(tmp_path: Path, use_checkpoints):
    from tests.training.test_all import TINY, make_data_root

    root, runs, ckpts = make_data_root(tmp_path / "data"), tmp_path / "runs", tmp_path / "ckpt"
    argv = ["all", "--data-root", str(root), "--out-root", str(runs), "--export-root", str(ckpts), *TINY]
    ranks = spawn([*argv, "--batch-size", "4", "--no-evaluate"], tmp_path, stand_ins=True)  # 2 a process
    assert [r["code"] for r in ranks] == [0, 0]
    keys = ["faces-default", "edges2photo-default", "superres-psnr", "superres-gan", "music-default"]
    keys.append("anomaly-magnetic_tile")
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
