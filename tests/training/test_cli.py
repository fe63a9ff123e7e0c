"""The shared command line: presets fill what the user leaves out, tasks are found by name."""

import argparse

import pytest

from training.cli import main
from training.faces import FacesTask
from training.run import parse_train_args
from training.task import TrainTask, task_class, trainable_tasks


def test_the_preset_fills_what_the_command_line_leaves_out():
    base = ["--data", "d", "--out", "o"]
    cpu = parse_train_args(FacesTask, base)
    assert (cpu.steps, cpu.batch_size, cpu.ndf, cpu.eval_every) == (30000, 64, 32, 2500)
    gpu = parse_train_args(FacesTask, [*base, "--preset", "gpu"])
    assert (gpu.batch_size, gpu.ndf) == (128, 64)
    mine = parse_train_args(FacesTask, [*base, "--preset", "gpu", "--ndf", "16", "--steps", "5"])
    assert (mine.ndf, mine.steps, mine.batch_size) == (16, 5, 128)
    assert cpu.variant == "default"


def test_a_variant_may_refine_its_preset():
    from training.superres import SuperresTask

    base = ["--data", "d", "--out", "o"]
    psnr = parse_train_args(SuperresTask, [*base, "--variant", "psnr"])
    gan = parse_train_args(SuperresTask, [*base, "--variant", "gan"])
    assert (psnr.steps, psnr.lr, gan.steps, gan.lr, gan.blocks) == (7000, 2e-4, 2500, 1e-4, 8)
    assert parse_train_args(SuperresTask, [*base, "--variant", "gan", "--steps", "9"]).steps == 9
    gpu_psnr = parse_train_args(SuperresTask, [*base, "--variant", "psnr", "--preset", "gpu"])
    gpu_gan = parse_train_args(SuperresTask, [*base, "--variant", "gan", "--preset", "gpu"])
    assert gpu_psnr.steps == 200000 and gpu_psnr.lr_decay_start is None
    assert (gpu_gan.steps, gpu_gan.lr, gpu_gan.lr_decay_start, gpu_gan.blocks) == (100000, 1e-4, 0.5, 16)


def test_a_preset_may_only_set_known_options():
    class Broken(FacesTask):
        presets = {"cpu": {"stepz": 1}}

    with pytest.raises(ValueError, match="stepz"):
        parse_train_args(Broken, ["--data", "d", "--out", "o"])


def test_variant_choices_come_from_the_catalogue(capsys):
    with pytest.raises(SystemExit):
        parse_train_args(FacesTask, ["--data", "d", "--out", "o", "--variant", "gan"])
    assert "invalid choice: 'gan'" in capsys.readouterr().err


def test_every_trainer_follows_the_contract():
    for name in trainable_tasks():
        cls = task_class(name)
        assert issubclass(cls, TrainTask) and {"cpu", "gpu"} <= cls.presets.keys()
        parser = argparse.ArgumentParser()
        cls.add_arguments(parser)  # task options must not clash with the shared ones
        cls.add_evaluate_arguments(argparse.ArgumentParser())


def test_unknown_task_and_help(capsys):
    assert main(["cats"]) == 2
    assert main([]) == 0
    assert "python -m training" in capsys.readouterr().out
