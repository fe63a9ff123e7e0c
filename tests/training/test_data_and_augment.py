from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from training.augment import diff_augment, diff_augment_pair, parse_policy
from training.data import EpochSampler, ImageSet, is_holdout, split_pair


def test_image_set_decodes_crops_and_splits_stably(image_folder: Path):
    (image_folder / "broken.jpg").write_bytes(b"not a jpeg")  # skipped, not fatal
    everything = ImageSet(image_folder, 32, "all", progress=False)
    assert everything.images.shape == (24, 3, 32, 32) and everything.images.dtype == torch.uint8
    train = ImageSet(image_folder, 32, "train", 0.25, progress=False)
    held = ImageSet(image_folder, 32, "holdout", 0.25, progress=False)
    assert len(train) + len(held) == 24 and len(held) > 0
    assert not {p.name for p in train.paths} & {p.name for p in held.paths}
    batch = train.batch(torch.tensor([0, 1]))
    assert batch.shape == (2, 3, 32, 32) and batch.min() >= -1 and batch.max() <= 1


def test_image_set_reads_a_b_pairs_side_by_side(tmp_path: Path):
    """pix2pix's aligned layout: A on the left, B on the right; both halves cropped and stacked."""
    rng = np.random.default_rng(0)
    halves = {}
    for i in range(6):
        a, b = rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
        halves[f"{i}.png"] = (a, b)
        Image.fromarray(np.concatenate([a, b], axis=1)).save(tmp_path / f"{i}.png")
    Image.new("RGB", (16, 16)).save(tmp_path / "square.png")  # not a pair: skipped like a broken file
    pairs = ImageSet(tmp_path, 16, "all", pairs=True, progress=False)
    assert pairs.images.shape == (6, 6, 16, 16) and pairs.pairs
    for k, path in enumerate(pairs.paths):
        a, b = halves[path.name]
        assert np.array_equal(pairs.images[k, :3].permute(1, 2, 0).numpy(), a)
        assert np.array_equal(pairs.images[k, 3:].permute(1, 2, 0).numpy(), b)
    assert pairs.batch(torch.tensor([0, 1])).shape == (2, 6, 16, 16)
    small = ImageSet(tmp_path, 8, "all", pairs=True, progress=False)  # each half resized on its own
    assert small.images.shape == (6, 6, 8, 8)
    split = [ImageSet(tmp_path, 16, part, 0.4, pairs=True, progress=False) for part in ("train", "holdout")]
    assert {p.name for s in split for p in s.paths} == set(halves) and len(split[1]) > 0


def test_split_pair_and_a_folder_without_pairs(tmp_path: Path):
    left, right = split_pair(Image.new("RGB", (21, 10)))
    assert left.size == right.size == (10, 10)
    with pytest.raises(ValueError, match="twice as wide"):
        split_pair(Image.new("RGB", (30, 10)))
    Image.new("RGB", (16, 16)).save(tmp_path / "a.png")
    with pytest.raises(FileNotFoundError, match="as A\\|B pairs"):
        ImageSet(tmp_path, 16, "all", pairs=True, progress=False)


def test_holdout_depends_on_the_name_only():
    assert is_holdout(Path("a/x.jpg"), 0.5) == is_holdout(Path("b/x.jpg"), 0.5)
    share = sum(is_holdout(Path(f"{i}.jpg"), 0.07) for i in range(5000)) / 5000
    assert 0.05 < share < 0.09


def test_empty_folder_is_a_clear_error(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="no images"):
        ImageSet(tmp_path, 32, progress=False)


def test_sampler_covers_each_epoch_and_resumes_mid_epoch():
    s = EpochSampler(10, 4, seed=0)
    first = torch.cat([s.next() for _ in range(5)])  # 20 indices = 2 epochs
    assert sorted(first[:10].tolist()) == list(range(10))
    state = s.state_dict()
    expected = [s.next() for _ in range(3)]
    t = EpochSampler(10, 4, seed=99)
    t.load_state_dict(state)
    assert all(torch.equal(a, t.next()) for a in expected)


def test_diffaugment_keeps_shape_and_passes_gradients():
    x = torch.randn(4, 3, 16, 16, requires_grad=True)
    y = diff_augment(x, parse_policy("color,translation,cutout"))
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert torch.equal(diff_augment(x, ()), x)


def test_diffaugment_of_a_pair_moves_both_alike_and_recolours_the_image_only():
    torch.manual_seed(0)
    image = torch.rand(4, 3, 16, 16) * 2 - 1
    condition = image[:, :1].clone()  # a condition that starts as a copy of the image's first channel
    c, i = diff_augment_pair(condition, image, ("translation", "cutout"))
    assert c.shape == condition.shape and i.shape == image.shape
    assert torch.equal(c, i[:, :1])  # shifted and cut together: still aligned
    c, i = diff_augment_pair(condition, image, ("color",))
    assert torch.equal(c, condition) and not torch.equal(i, image)  # the condition is not a photo
    assert diff_augment_pair(condition, image, ()) == (condition, image)


def test_policy_parsing():
    assert parse_policy("none") == () and parse_policy("") == ()
    assert parse_policy("color, cutout") == ("color", "cutout")
    with pytest.raises(ValueError, match="unknown augmentation"):
        parse_policy("flip")
