"""`python -m training evaluate faces` end to end on tiny data, with a stand-in feature network
(the real TF-Inception file is 87 MB and a training-only install)."""

from pathlib import Path

import torch

from gandemo.checkpoint import read_card
from tests.conftest import make_image_folder, write_tiny_faces_checkpoint
from training import inception
from training.cli import main
from training.faces import pca_gaussian_samples


class PooledColours(torch.nn.Module):
    """Stand-in for Inception: 6 numbers per picture (mean and std of each channel)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], dim=1)


def test_evaluate_writes_model_baseline_and_real_numbers_into_the_card(tmp_path: Path, monkeypatch):
    data = make_image_folder(tmp_path / "faces", n=120)
    folder = write_tiny_faces_checkpoint(tmp_path / "ck")
    monkeypatch.setattr(inception, "inception_network", PooledColours)
    preview = tmp_path / "preview.png"
    args = [
        "evaluate",
        "faces",
        "--checkpoint",
        str(folder),
        "--data",
        str(data),
        "--n",
        "8",
        "--preview",
        str(preview),
    ]
    assert main(args) == 0
    card = read_card(folder)
    m = card["metrics"]
    fid = next(v for k, v in m.items() if k.startswith("FID"))
    assert {"model", "baseline", "real", "method"} <= fid.keys()
    assert all(fid[k] >= 0 for k in ("model", "baseline", "real"))
    faces_found = m["faces found by a detector (%)"]
    assert 0 <= faces_found["model"] <= 100 and "held_out" in faces_found
    assert m["diversity (mean pairwise Inception distance)"]["model"] >= 0
    assert 0 <= m["precision (k=3)"]["model"] <= 1 and 0 <= m["recall (k=3)"]["baseline"] <= 1
    assert preview.is_file()
    assert card["sha256"]  # weights untouched: the card still verifies
    from gandemo.checkpoint import load_checkpoint

    load_checkpoint(folder)


def test_pca_baseline_reproduces_the_mean_and_spread():
    gen = torch.Generator().manual_seed(0)
    train = (torch.rand(200, 3, 8, 8, generator=gen) * 0.5 - 0.25) + torch.linspace(-0.5, 0.5, 8)
    samples = pca_gaussian_samples(train, 500, components=32)
    assert samples.shape == (500, 3, 8, 8)
    assert (samples.mean(0) - train.mean(0)).abs().mean() < 0.05
    assert abs(float(samples.std(0).mean()) - float(train.std(0).mean())) < 0.05
