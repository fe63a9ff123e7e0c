"""The trainer contract's shared image plumbing (ImageTask) and task discovery."""

import argparse
from pathlib import Path

import pytest
import torch

from training.faces import FacesTask
from training.task import ImageTask, task_class, trainable_tasks


class Images(ImageTask):
    name = "faces"  # borrows a catalogue name; never registered
    image_size = 16
    holdout_fraction = 0.25
    presets = {"cpu": {}, "gpu": {}}

    def __init__(self, folder: Path, flip: bool) -> None:
        args = argparse.Namespace(data=folder, limit=None, progress=False, batch_size=8, seed=0)
        self.load_images(args, flip=flip)

    train_step = sample_grid = export_modules = card_fields = None


def test_tasks_are_found_by_their_name():
    assert task_class("faces") is FacesTask
    assert "faces" in trainable_tasks() and "basics" not in trainable_tasks()
    with pytest.raises(KeyError, match="unknown task"):
        task_class("cats")


def test_image_task_batches_flips_and_describes_its_data(image_folder: Path):
    plain, flipped = Images(image_folder, flip=False), Images(image_folder, flip=True)
    assert len(plain.data) + len(plain.held_out()) == 24  # every file is in exactly one split
    torch.manual_seed(0)
    a, b = plain.next_batch(), flipped.next_batch()  # same sampler seed: the same images
    assert a.shape == (8, 3, 16, 16) and a.min() >= -1 and a.max() <= 1
    mirrored = [not torch.equal(x, y) for x, y in zip(a, b, strict=True)]
    assert any(mirrored) and not all(mirrored)
    assert all(torch.equal(x.flip(2), y) for x, y, m in zip(a, b, mirrored, strict=True) if m)
    card = flipped.data_card()
    assert card["items"] == len(flipped.data) and card["resolution"] == "16x16"
    assert card["augmentation"] == "random horizontal flips" and "25%" in card["held_out"]


def test_image_task_sampler_state_resumes(image_folder: Path):
    a, b = Images(image_folder, flip=False), Images(image_folder, flip=False)
    a.next_batch()
    b.load_extra_state(a.extra_state())
    assert torch.equal(a.next_batch(), b.next_batch())
