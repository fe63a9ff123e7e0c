"""Anomaly: AnoGAN / f-AnoGAN on one MVTec-style category, trained on its normal images only.

`--data DIR/<category>` is a folder in the MVTec AD layout:
    train/good/*.png                         normal images (the only ones trained on)
    val/good/*.png                           normal images, never trained on: thresholds are calibrated here
    val/<defect>/*.png                       defective images (evaluation only)
    ground_truth/<defect>/<stem>_mask.png    their defect masks (255 = defect)

One run of the shared loop, in two stages split by step (`--encoder-steps` are the last steps):
1. steps 1 .. steps - encoder_steps: a DCGAN G and a spectrally normalised D (gandemo.nets.anogan)
   on train/good, softplus losses (D: minimax; G: non-saturating), Adam (beta1 0.5). Real images
   are augmented as suits the product (`--augment`, default per category: flips for the magnetic
   tiles' texture, small rotations and shifts for the hanging metal plates, tiny shifts for the
   transistors, whose position and orientation are part of what "normal" means), and DiffAugment
   (`--diffaugment`) on everything D sees, strongest for metal_plate's 56 images.
2. the last encoder_steps: f-AnoGAN's izi_f. G's BatchNorm statistics are re-estimated once
   (eval mode from here on); G and D are frozen and the encoder E learns z = E(x) with
       ||x - G(E(x))||^2 / n + kappa * ||f(x) - f(G(E(x)))||^2 / n_f,     kappa = 1 (the paper's)
   where f is D's last hidden layer.
No EMA: E must learn the inverse of exactly the G that is shipped, and G stops changing in stage 2.
log.csv has the same columns in both stages (a stage's unused losses are 0).

At export the thresholds of both methods are calibrated on val/good (gandemo.tasks.anomaly.calibrate)
and written into the card with G, D and E. `python -m training evaluate anomaly` measures image and
pixel AUROC of both methods and of the trivial baseline on val/, seconds per image, and whether the
model meets its aims (each method >= 0.90 image AUROC and above the baseline), with the evidence why not.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from tqdm import tqdm

from gandemo import metrics
from gandemo.checkpoint import load_checkpoint, update_card
from gandemo.imaging import ImageInputError, list_images, load_image, make_grid, tensor_to_pils
from gandemo.nets.anogan import Discriminator, Encoder, Generator
from gandemo.tasks import TASKS
from gandemo.tasks import anomaly as task
from training import distributed
from training.augment import parse_policy
from training.data import EpochSampler
from training.loop import Amp, recalibrate_batchnorm
from training.steps import dcgan_step
from training.task import ImageTask

Z_DIM = 100
SAMPLES = 8  # items per row of the sample grid
CALIBRATION = (16, 64)  # batches x latents on which G's BatchNorm statistics are re-estimated before stage 2
AIM_AUROC = 0.90  # the aim for each method's image AUROC (and above the baseline)

# Real-image augmentation per category (comma list of name[:value]); what keeps an image normal:
#   magnetic_tile: a texture with vertical streaks: mirror images are as normal (no 90° turns);
#   metal_plate: a plate hanging on a wire at varying angles (56 images): small turns and shifts,
#     mirrored left-right, slight brightness changes (colour changes would look like rust);
#   transistor: position and orientation are part of "normal" (misplaced is a defect): tiny shifts.
AUGMENT = {
    "magnetic_tile": "hflip,vflip",
    "metal_plate": "hflip,rotate:15,shift:0.04,brightness:0.1",
    "transistor": "shift:0.02",
}
DIFFAUGMENT = {
    "magnetic_tile": "translation",
    "metal_plate": "color,translation,cutout",
    "transistor": "color,translation",
}
AUGMENTS = ("hflip", "vflip", "rotate", "shift", "brightness")


# ---- the MVTec layout ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Item:
    path: Path
    defect: str  # "good" or the defect type (its folder's name)
    mask: Path | None  # ground_truth/<defect>/<stem>_mask.png; None for good images

    @property
    def anomalous(self) -> bool:
        return self.defect != "good"


def mvtec_items(folder: str | Path, split: str) -> list[Item]:
    """The images of `folder/split/*/` with their labels and mask files, sorted (good first)."""
    folder = Path(folder)
    root = folder / split
    if not (root / "good").is_dir():
        raise FileNotFoundError(
            f"{root / 'good'} is not a folder: --data must be a category folder in the MVTec layout "
            "(train/good, val/good, val/<defect>, ground_truth/<defect>/<stem>_mask.png)"
        )
    kinds = ["good"] + sorted(p.name for p in root.iterdir() if p.is_dir() and p.name != "good")
    items = []
    for kind in kinds:
        for path in list_images(root / kind):
            mask = None
            if kind != "good":
                mask = folder / "ground_truth" / kind / f"{path.stem}_mask.png"
                if not mask.is_file():
                    raise FileNotFoundError(f"{path} has no mask: expected {mask}")
            items.append(Item(path, kind, mask))
    return items


def load_mask(item: Item, size: tuple[int, int]) -> np.ndarray:
    """The item's defect mask as bool (H, W) for an image of `size` = (W, H); all False for good
    images. A mask of another size is resized with nearest neighbour, as the data's preparation did."""
    w, h = size
    if item.mask is None:
        return np.zeros((h, w), bool)
    mask = Image.open(item.mask).convert("L")
    if mask.size != size:
        mask = mask.resize(size, Image.Resampling.NEAREST)
    return np.asarray(mask) > 127


def is_greyscale(images: list[Image.Image]) -> bool:
    """Whether every (RGB-decoded) image has R = G = B: a greyscale category gets a 1-channel model."""
    for img in images:
        a = np.asarray(img)
        if not (np.array_equal(a[..., 0], a[..., 1]) and np.array_equal(a[..., 0], a[..., 2])):
            return False
    return True


class ModelImages:
    """Images decoded once into memory at the model's input: uint8 (N, C, S, S), prepared by the
    app's own `gandemo.tasks.anomaly.to_input` (whole image resized, greyscale when C = 1), with
    their original sizes (heatmaps are mapped back to them)."""

    def __init__(self, originals: list[Image.Image], paths: list[Path], size: int, channels: int) -> None:
        if not originals:
            raise FileNotFoundError("no images to load")
        self.paths = paths
        self.sizes = [img.size for img in originals]
        x = torch.stack([task.to_input(img, size, channels) for img in originals])
        self.images = x.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, indices: torch.Tensor | slice) -> torch.Tensor:
        return self.images[indices].float().div_(127.5).sub_(1.0)


def decode(paths: list[Path], progress: bool = False, desc: str = "decoding") -> tuple[list[Image.Image], list[Path]]:
    """Decode image files with the app's decoder; unreadable ones are skipped, not fatal."""
    images, kept = [], []
    for p in tqdm(paths, desc=desc, disable=not progress, leave=False):
        try:
            images.append(load_image(p))
        except ImageInputError:
            continue
        kept.append(p)
    if not images:
        raise FileNotFoundError(f"none of the {len(paths)} files could be decoded")
    return images, kept


# ---- real-image augmentation -------------------------------------------------------------------------
def parse_augment(text: str | None) -> dict[str, float]:
    """ "hflip,rotate:15,shift:0.04" -> {"hflip": 1.0, "rotate": 15.0, "shift": 0.04}; "none" -> {}.
    rotate is in degrees (±), shift a fraction of the side (±), brightness a relative change (±)."""
    if not text or text.strip().lower() == "none":
        return {}
    out: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, _, value = part.partition(":")
        if name not in AUGMENTS:
            raise ValueError(f"unknown augmentation {name!r}; choose from {', '.join(AUGMENTS)}")
        try:
            out[name] = float(value) if value else 1.0
        except ValueError:
            raise ValueError(f"augmentation {part!r}: the value after ':' must be a number") from None
        if not math.isfinite(out[name]) or out[name] < 0:
            raise ValueError(f"augmentation {part!r}: the value must be a finite number >= 0")
    return out


def augment(x: torch.Tensor, spec: dict[str, float]) -> torch.Tensor:
    """Random flips (each with p = 1/2), a random turn and shift (one resampling, for half of the
    items; the others stay crisp; reflected borders), and brightness, per item. x in [-1, 1]."""
    n = len(x)
    x = x.clone()
    for name, dim in (("hflip", 3), ("vflip", 2)):
        if name in spec:
            m = torch.rand(n) < 0.5
            x[m] = x[m].flip(dim)
    deg, frac = spec.get("rotate", 0.0), spec.get("shift", 0.0)
    if deg or frac:
        m = torch.rand(n) < 0.5
        angle = (torch.rand(n) * 2 - 1) * math.radians(deg) * m
        shift = (torch.rand(n, 2) * 2 - 1) * 2 * frac * m[:, None]  # a fraction of the side; the grid spans 2
        cos, sin = torch.cos(angle), torch.sin(angle)
        theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        moved = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        x = torch.where(m[:, None, None, None], moved, x)
    if spec.get("brightness"):
        b = 1 + (torch.rand(n, 1, 1, 1) * 2 - 1) * spec["brightness"]
        x = ((x + 1) * b - 1).clamp(-1, 1)
    return x


def describe_augment(spec: dict[str, float]) -> str:
    words = {
        "hflip": lambda v: "left-right flips",
        "vflip": lambda v: "up-down flips",
        "rotate": lambda v: f"turns of up to ±{v:g}°",
        "shift": lambda v: f"shifts of up to ±{v:.0%} of the side",
        "brightness": lambda v: f"brightness ±{v:.0%}",
    }
    return ", ".join(words[k](v) for k, v in spec.items()) or "none"


class AnomalyTask(ImageTask):
    name = "anomaly"
    image_size = 64
    holdout_fraction = 0.0  # val/ is the held-out split: a separate folder, never trained on
    ema_of = None  # see the module docstring: E learns the inverse of the G that ships
    # Sized on these 2-core machines (AVX2-only EPYC: fp32 + channels_last). Measured as CPU time per step
    # with 1 thread while another training run kept both cores busy (so only roughly what 1 idle core does):
    #   64x64, ngf = ndf = nef = 32, batch 32: a stage-1 step (D + G) 0.35-0.40 s, a stage-2 step (E) ~0.25 s
    #   128x128 at the same widths: ~4x a 64x64 step, which the CPU budget cannot afford
    # With 2 threads on 2 idle cores a step should take ~0.2-0.3 s (an estimate: idle cores were not to be had),
    # so the cpu preset's 7,000 + 2,000 steps take ~30-45 min per category, plus ~2-4 min of calibration at
    # export (a batched latent search costs ~4.6 ms per image and iteration). It trains at 64x64 (the heatmap is
    # mapped back to the images' 128x128). The gpu preset trains at the data's 128x128 with DCGAN's widths;
    # it has not been timed on a GPU.
    presets = {
        "cpu": {
            "steps": 9000,
            "encoder_steps": 2000,
            "batch_size": 32,
            "lr": 2e-4,
            "image_size": 64,
            "ngf": 32,
            "ndf": 32,
            "nef": 32,
            "sample_every": 500,
        },
        "gpu": {
            "steps": 40000,
            "encoder_steps": 10000,
            "batch_size": 64,
            "lr": 2e-4,
            "image_size": 128,
            "ngf": 64,
            "ndf": 64,
            "nef": 64,
            "sample_every": 2000,
        },
    }

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        # no super(): flips are one of this task's per-category augmentations (--augment), not a switch
        parser.add_argument("--image-size", type=int, help="the model's resolution (a power of two >= 16)")
        parser.add_argument("--ngf", type=int, help="generator width (DCGAN: 64)")
        parser.add_argument("--ndf", type=int, help="discriminator width (DCGAN: 64)")
        parser.add_argument("--nef", type=int, help="encoder width")
        parser.add_argument("--encoder-steps", type=int, help="the last N steps train the encoder (stage 2)")
        parser.add_argument(
            "--augment",
            help=f"real-image augmentation, comma list of {','.join(AUGMENTS)} with :value, or none "
            f"(default per category: {AUGMENT})",
        )
        parser.add_argument(
            "--diffaugment", help=f"DiffAugment policy for D's inputs (default per category: {DIFFAUGMENT})"
        )
        parser.add_argument("--kappa", type=float, default=1.0, help="weight of izi_f's feature term (paper: 1)")
        parser.add_argument(
            "--search-iterations",
            type=int,
            default=task.SEARCH_ITERATIONS,
            help="latent-search iterations the thresholds are calibrated at (the app's default)",
        )
        parser.add_argument("--heatmap-sigma", type=float, default=task.HEATMAP_SIGMA, help="heatmap smoothing, px")
        parser.add_argument("--image-fpr", type=float, default=task.IMAGE_FPR, help="share of normal images flagged")
        parser.add_argument("--pixel-fpr", type=float, default=task.PIXEL_FPR, help="share of normal pixels flagged")

    def __init__(self, args: argparse.Namespace, device: torch.device) -> None:
        self.device = device
        self.variant = args.variant
        self.folder = Path(args.data)
        categories = TASKS[self.name].variants
        if self.folder.name in categories and self.folder.name != self.variant:
            raise SystemExit(
                f"--data {self.folder} is the {self.folder.name!r} category but --variant is {self.variant!r}: "
                f"add --variant {self.folder.name}"
            )
        self.image_size = int(args.image_size)
        self.steps, self.encoder_steps = int(args.steps), int(args.encoder_steps)
        if not (self.folder / "train" / "good").is_dir():
            raise SystemExit(
                f"{self.folder / 'train' / 'good'} is not a folder: --data must be a category folder in the MVTec "
                "layout (train/good, val/good, val/<defect>, ground_truth/<defect>/<stem>_mask.png)"
            )
        if not 0 <= self.encoder_steps <= self.steps:
            raise SystemExit(
                f"--encoder-steps must be from 0 to --steps ({self.steps}), got {self.encoder_steps} "
                "(the preset's value unless given): the last --encoder-steps steps train the encoder"
            )
        self.gan_steps = self.steps - self.encoder_steps
        self.augment = parse_augment(args.augment if args.augment is not None else AUGMENT.get(self.variant, "hflip"))
        self.policy = parse_policy(
            args.diffaugment if args.diffaugment is not None else DIFFAUGMENT.get(self.variant, "color,translation")
        )
        self.kappa = float(args.kappa)
        self.search_iterations = task.check_iterations(args.search_iterations)
        self.sigma = float(args.heatmap_sigma)
        self.image_fpr, self.pixel_fpr = float(args.image_fpr), float(args.pixel_fpr)
        self.progress = bool(args.progress)

        self.load_images(args)
        torch.manual_seed(args.seed)
        self.g_kwargs = {
            "z_dim": Z_DIM,
            "ngf": int(args.ngf),
            "channels": self.channels,
            "image_size": self.image_size,
        }
        self.d_kwargs = {"ndf": int(args.ndf), "channels": self.channels, "image_size": self.image_size}
        self.e_kwargs = {"z_dim": Z_DIM, "nef": int(args.nef), "channels": self.channels, "image_size": self.image_size}
        G, D, E = Generator(**self.g_kwargs), Discriminator(**self.d_kwargs), Encoder(**self.e_kwargs)
        self.models = {"G": G.to(device), "D": D.to(device), "E": E.to(device)}
        betas = (0.5, 0.999)  # DCGAN's beta1 = 0.5 steadies the adversarial game
        self.optimizers = {k: torch.optim.Adam(m.parameters(), lr=args.lr, betas=betas) for k, m in self.models.items()}
        self.hparams = {
            "batch_size": args.batch_size,
            "lr": args.lr,
            "betas": list(betas),
            "gan_steps": self.gan_steps,
            "encoder_steps": self.encoder_steps,
            "augment": ",".join(f"{k}:{v:g}" for k, v in self.augment.items()) or "none",
            "diffaugment": ",".join(self.policy) or "none",
            "kappa": self.kappa,
            "ngf": self.g_kwargs["ngf"],
            "ndf": self.d_kwargs["ndf"],
            "nef": self.e_kwargs["nef"],
        }
        self.done = 0  # steps this task has taken (the stage follows from it); resumed with the run
        self.g_frozen = False  # G's BatchNorm re-estimated and G frozen for stage 2
        self.sample_z = torch.randn(SAMPLES, Z_DIM, generator=torch.Generator().manual_seed(0))

    # ---- data --------------------------------------------------------------------------------------
    def load_images(self, args: argparse.Namespace, flip: bool = False) -> None:
        """train/good in memory (greyscale categories as one channel) and val/good for calibration."""
        train_dir = self.folder / "train" / "good"
        paths = list_images(train_dir)[: args.limit] if args.limit else list_images(train_dir)
        originals, paths = decode(paths, self.progress, "decoding train/good")
        self.channels = 1 if is_greyscale(originals) else 3
        self.data = ModelImages(originals, paths, self.image_size, self.channels)
        self.data.folder = train_dir
        good = [i.path for i in mvtec_items(self.folder, "val") if not i.anomalous]
        val, val_paths = decode(good, self.progress, "decoding val/good")
        if len(val) < 2:
            raise SystemExit(f"{self.folder / 'val' / 'good'} needs at least two normal images to calibrate on")
        self.val = ModelImages(val, val_paths, self.image_size, self.channels)
        self.sampler = EpochSampler(len(self.data), args.batch_size, seed=args.seed)
        self.flip = False

    def next_batch(self) -> torch.Tensor:
        return augment(self.data.batch(self.sampler.next()), self.augment)

    # ---- the two stages ----------------------------------------------------------------------------
    def train_step(self, real: torch.Tensor, amp: Amp) -> dict[str, torch.Tensor]:
        self.done += 1
        zero = torch.zeros((), device=real.device)
        if self.done <= self.gan_steps:
            out = self._gan_step(real, amp)
            return {"stage": torch.ones(()), **out, "loss_e": zero}
        loss_e = self._encoder_step(real, amp)
        return {
            "stage": torch.full((), 2.0),
            "loss_d": zero,
            "loss_g": zero,
            "D(x)": zero,
            "D(G(z))": zero,
            "loss_e": loss_e,
        }

    def _gan_step(self, real: torch.Tensor, amp: Amp) -> dict[str, torch.Tensor]:
        z = distributed.randn(real.shape[0], Z_DIM, device=real.device)  # under DDP: this slice's latents
        return dcgan_step(self.models["G"], self.models["D"], self.optimizers, real, z, amp, self.policy)

    def freeze_generator(self) -> None:
        """Before stage 2: G's BatchNorm statistics re-estimated for its final weights (a cumulative
        average over fixed latents), then G and D in eval mode without gradients for good."""
        G = self.models["G"]
        batches, size = CALIBRATION
        gen = torch.Generator().manual_seed(1234)
        fixed = [torch.randn(size, Z_DIM, generator=gen) for _ in range(batches)]
        calibrated = recalibrate_batchnorm(G, fixed, self.device)
        G.load_state_dict(calibrated.state_dict())
        self.g_frozen = True

    def _encoder_step(self, real: torch.Tensor, amp: Amp) -> torch.Tensor:
        if not self.g_frozen:
            self.freeze_generator()
        G, D, E = self.models["G"], self.models["D"], self.models["E"]
        for m in (G, D):  # the loop puts every model in train mode; these two stay fixed now
            m.eval().requires_grad_(False)
        E.train()
        with torch.no_grad(), amp.autocast():
            f_real = amp.fp32(D.features(real))
        with amp.autocast():
            rec = G(E(real))
            residual = F.mse_loss(amp.fp32(rec), real.float())
            feature = F.mse_loss(amp.fp32(D.features(rec)), f_real)
            loss = residual + self.kappa * feature
        amp.step(loss, self.optimizers["E"])
        return loss.detach()

    # ---- pictures, export, card ----------------------------------------------------------------------
    def sample_grid(self, models: dict[str, nn.Module]) -> Image.Image:
        """Three rows: G's images for fixed latents | normal validation images | their encoder
        reconstructions G(E(x)) (noise until stage 2 has trained E)."""
        n = min(SAMPLES, len(self.val))
        x = self.val.batch(slice(0, n))
        G = models["G"]
        with task._frozen(G), torch.no_grad():
            samples = G(self.sample_z[:n].to(task._device(G))).float().cpu()
        rec = task.encode(models["G"], models["D"], models["E"], x).reconstruction
        rows = torch.cat([task.to_display(t) for t in (samples, x, rec)])
        return make_grid(tensor_to_pils(rows), ncol=n)

    def calibration(self, models: dict[str, nn.Module]) -> dict[str, Any]:
        """Both methods' thresholds from the normal validation images (gandemo.tasks.anomaly.calibrate)."""
        out: dict[str, Any] = {
            "data": f"val/good: {len(self.val)} normal validation images, never trained on",
            "how": f"image threshold: the {1 - self.image_fpr:.1%} quantile of the normal images' scores "
            f"(so {self.image_fpr:.0%} of normal images are called anomalous); pixel threshold: the "
            f"{1 - self.pixel_fpr:.2%} quantile of all their heatmap pixels at the images' own size",
        }
        x = self.val.batch(slice(None))
        for method in task.METHODS:
            t0 = time.perf_counter()
            bar, advance = _progress_bar(len(x), f"calibrating {method}", self.progress)
            scores, heat = task.score_batches(
                method,
                models,
                x,
                self.search_iterations,
                sigma=self.sigma,
                progress=advance,
            )
            bar.close()
            full = [task.to_original_size(h, size) for h, size in zip(heat, self.val.sizes, strict=True)]
            entry = task.calibrate(scores, full, self.image_fpr, self.pixel_fpr)
            if method == "latent_search":
                entry["iterations"] = self.search_iterations
            out[method] = entry
            print(f"calibrated {method} on {len(x)} normal images in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        return out

    def export_modules(self, models: dict[str, nn.Module]) -> dict[str, tuple[nn.Module, dict]]:
        if not self.g_frozen:  # exported before stage 2 (e.g. --export-only): eval-mode statistics for G
            models = dict(models)
            batches, size = CALIBRATION
            gen = torch.Generator().manual_seed(1234)
            models["G"] = recalibrate_batchnorm(
                models["G"], [torch.randn(size, Z_DIM, generator=gen) for _ in range(batches)], self.device
            )
        self._calibration = self.calibration(models)
        return {
            "G": (models["G"].cpu(), self.g_kwargs),
            "D": (models["D"].cpu(), self.d_kwargs),
            "E": (models["E"].cpu(), self.e_kwargs),
        }

    def card_fields(self) -> dict[str, Any]:
        return {
            "data": {
                "name": self.folder.name,
                "path": str(self.folder),
                "items": len(self.data),
                "resolution": f"{self.image_size}x{self.image_size}" + (" greyscale" if self.channels == 1 else " RGB"),
                "augmentation": f"{describe_augment(self.augment)}; DiffAugment "
                f"({','.join(self.policy) or 'none'}) on D's inputs",
                "held_out": f"val/: {len(self.val)} normal images (calibration) and the defective ones "
                "(evaluation), never trained on",
            },
            "hyperparameters": self.hparams,
            "objective": "stage 1: DCGAN (softplus, non-saturating G) on normal images; stage 2: f-AnoGAN izi_f "
            f"encoder, MSE(x, G(E(x))) + {self.kappa:g} MSE(f(x), f(G(E(x)))) with G and D frozen",
            "z_dim": Z_DIM,
            "image_size": self.image_size,
            "anomaly": {
                "category": self.variant,
                "lambda": task.LAMBDA,
                "score": "A(x) = (1 - lambda) R(x) + lambda D(x); R = mean |x - G(z)| (0-1 pixel units), "
                "D = mean |f(x) - f(G(z))| over D's last hidden layer",
                "search_iterations": self.search_iterations,
                "search_lr": task.SEARCH_LR,
                "search_candidates": task.SEARCH_CANDIDATES,
                "heatmap_sigma": self.sigma,
                "calibration": getattr(self, "_calibration", {}),
            },
        }

    def extra_state(self) -> dict[str, Any]:
        return {"sampler": self.sampler.state_dict(), "done": self.done, "g_frozen": self.g_frozen}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state["sampler"])
        self.done = int(state["done"])
        self.g_frozen = bool(state["g_frozen"])

    # ---- python -m training evaluate anomaly ---------------------------------------------------------
    @classmethod
    def add_evaluate_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--iterations", type=int, help="latent-search iterations (default: the card's)")
        parser.add_argument("--batch", type=int, default=64, help="images per batch of the scoring")
        parser.add_argument("--timing-n", type=int, default=10, help="images timed one by one, as the app runs them")
        parser.add_argument(
            "--methods", default=",".join(task.METHODS), help="comma list of the methods to measure (default: both)"
        )
        parser.add_argument("--preview", type=Path, help="write a PNG: image | truth | each method's overlay")
        parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")

    @classmethod
    def evaluate_checkpoint(cls, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
        """Measured on val/ (normal and defective images, never trained on): image AUROC (is the image
        defective?) and pixel AUROC (is this pixel defective? all pixels of all val images, normal
        ones included, against the masks) of both methods and of the trivial baseline, and seconds
        per image as the app runs it (one image at a time). Also writes `aims` into the card: whether
        each method reaches 0.90 image AUROC and beats the baseline, and the measured evidence why not."""
        t0 = time.time()
        ckpt = load_checkpoint(args.checkpoint)
        models, card = ckpt.modules, ckpt.card
        block = task.settings(card)
        iterations = task.check_iterations(args.iterations or block["search_iterations"])
        sigma = float(block["heatmap_sigma"])
        methods = [task.check_method(m.strip()) for m in args.methods.split(",") if m.strip()]
        G = models["G"]
        items = mvtec_items(args.data, "val")
        originals, _ = decode([i.path for i in items], args.progress, "decoding val")
        if len(originals) != len(items):
            raise SystemExit("some val images could not be decoded; evaluation needs all of them")
        labels = np.array([i.anomalous for i in items])
        if labels.all() or not labels.any():
            raise SystemExit(f"{args.data}/val needs both good and defective images")
        masks = [load_mask(i, img.size) for i, img in zip(items, originals, strict=True)]
        x = ModelImages(originals, [i.path for i in items], G.image_size, G.channels).batch(slice(None))
        n_def, n_good = int(labels.sum()), int((~labels).sum())
        where = f"{len(items)} val images ({n_good} normal, {n_def} defective)"

        # the baseline, fitted on train/good
        train_paths = list_images(Path(args.data) / "train" / "good")
        train_rgb = np.stack([task.baseline_input(p) for p in train_paths])
        baseline = task.PixelStatsBaseline.fit(train_rgb)
        val_rgb = np.stack([task.baseline_input(img) for img in originals])
        b_scores, b_pixels = baseline.score(val_rgb)
        b_maps = [task.to_original_size(m, img.size) for m, img in zip(b_pixels, originals, strict=True)]
        one = val_rgb[:1]
        b_seconds = statistics.median(_timed(lambda: baseline.score(one)) for _ in range(max(1, args.timing_n)))
        result: dict[str, dict[str, Any]] = {}
        found: dict[str, dict[str, Any]] = {}
        for method in methods:
            tm = time.perf_counter()
            bar, advance = _progress_bar(len(x), method, args.progress)
            scores, heat = task.score_batches(
                method,
                models,
                x,
                iterations,
                sigma=sigma,
                batch=args.batch,
                progress=advance,
            )
            bar.close()
            maps = [task.to_original_size(h, img.size) for h, img in zip(heat, originals, strict=True)]
            timing = [
                task.run_method(method, models, x[i : i + 1], iterations, sigma=sigma).seconds
                for i in range(min(len(x), max(1, args.timing_n)))
            ]
            found[method] = {
                "scores": scores,
                "maps": maps,
                "image": metrics.auroc(labels, scores),
                "pixel": metrics.auroc(
                    np.concatenate([m.ravel() for m in masks]), np.concatenate([m.ravel() for m in maps])
                ),
                "seconds": statistics.median(timing),
                "timed": len(timing),
            }
            print(f"{method}: {time.perf_counter() - tm:.0f} s", file=sys.stderr)
        b_image = metrics.auroc(labels, b_scores)
        b_pixel = metrics.auroc(np.concatenate([m.ravel() for m in masks]), np.concatenate([m.ravel() for m in b_maps]))
        baseline_method = (
            "the trivial baseline: RGB at 128², per-pixel z-score against the train/good mean and std (+0.02), "
            "max over channels; image score = mean of the top 1 % of pixel scores"
        )
        for method, f in found.items():
            label = method + (f" ({iterations} iterations)" if method == "latent_search" else "")
            result[f"image AUROC, {label}"] = {
                "model": round(f["image"], 4),
                "baseline": round(b_image, 4),
                "method": f"scikit-learn roc_auc_score of A(x) over {where}, defective = positive; baseline: "
                + baseline_method,
            }
            result[f"pixel AUROC, {label}"] = {
                "model": round(f["pixel"], 4),
                "baseline": round(b_pixel, 4),
                "method": "roc_auc_score of the heatmap (mapped back to each image's size) against the ground-truth "
                f"masks over all pixels of the {len(items)} val images, normal ones included; baseline: its "
                "per-pixel z-score map",
            }
            t = (task.thresholds(card, method) or {}).get("image_threshold")
            if t is not None:
                flagged = f["scores"] > t
                result[f"flagged at the card's threshold, {label}"] = {
                    "model": f"{int(flagged[labels].sum())}/{n_def} defective, "
                    f"{int(flagged[~labels].sum())}/{n_good} normal",
                    "method": f"A(x) > the calibrated image threshold {t:.4g} (from val/good itself)",
                }
            result[f"seconds per image, {label}"] = {
                "model": round(f["seconds"], 4),
                "baseline": round(b_seconds, 5),
                "method": f"median over {f['timed']} val images scored one at a time on the CPU, "
                f"{torch.get_num_threads()} torch thread(s), model time only (as the app runs it)",
            }
        aims = cls._aims(found, b_image, models, Path(args.data), labels, block, iterations)
        if args.preview:
            _preview(args.preview, originals, masks, labels, found, card)
        if not args.dry_run:
            update_card(args.checkpoint, aims=aims)
        print(f"aims met: {aims['met']}", *aims["shortfalls"], *aims["why"], sep="\n  ", file=sys.stderr)
        print(f"evaluated in {time.time() - t0:.0f} s", file=sys.stderr)
        return result

    @staticmethod
    def _aims(
        found: dict[str, dict[str, Any]],
        baseline_auroc: float,
        models: dict[str, nn.Module],
        data: Path,
        labels: np.ndarray,
        block: dict[str, Any],
        iterations: int,
    ) -> dict[str, Any]:
        """Whether each method reaches AIM_AUROC image AUROC and beats the baseline; if not, the
        measured evidence of why (residuals of training vs new normal vs defective images)."""
        shortfalls = []
        for method, f in found.items():
            if f["image"] < AIM_AUROC:
                shortfalls.append(f"{method}: image AUROC {f['image']:.3f} is below the aim of {AIM_AUROC:.2f}")
            if f["image"] <= baseline_auroc:
                shortfalls.append(
                    f"{method}: image AUROC {f['image']:.3f} does not beat the trivial baseline's {baseline_auroc:.3f}"
                )
        why = []
        if shortfalls:
            G = models["G"]
            train_paths = list_images(data / "train" / "good")[:64]
            train_x = ModelImages(decode(train_paths)[0], train_paths, G.image_size, G.channels).batch(slice(None))
            # the reference for "does G reproduce anything?": the residual of the average training image
            average = float((train_x - train_x.mean(0)).abs().mean() / 2)
            for method, f in found.items():
                train_scores, train_heat = task.score_batches(
                    method, models, train_x, iterations, sigma=float(block["heatmap_sigma"])
                )
                residual = float(train_heat.mean())  # the heatmap's mean is the residual R (smoothing keeps it)
                s = f["scores"]
                tr, good, bad = (
                    float(np.median(train_scores)),
                    float(np.median(s[~labels])),
                    float(np.median(s[labels])),
                )
                text = (
                    f"{method}: median score of training images {tr:.4g}, of new normal images {good:.4g}, of "
                    f"defective images {bad:.4g}"
                )
                if residual >= 0.8 * average:
                    text += (
                        f"; G reproduces its own training images no better than their average image does "
                        f"(residual {residual:.3f} vs {average:.3f}): it has not learnt the product's detail (too "
                        "few steps, or a collapsed generator), so every image scores alike"
                    )
                else:
                    if good > 1.15 * tr:
                        text += (
                            "; new normal images are reproduced worse than training ones, so the model has learnt "
                            "its training images more than what normal looks like, and normal variation it has "
                            "not seen scores like a defect"
                        )
                    if bad < 1.15 * good:
                        text += "; defective images score barely higher than normal ones: G reproduces the defects too"
                if f["pixel"] >= 0.8 and f["image"] < AIM_AUROC:
                    text += (
                        f"; the heatmap does find defect pixels (pixel AUROC {f['pixel']:.3f}), but the whole-image "
                        "score is dominated by residuals spread over normal areas"
                    )
                why.append(text)
        return {
            "aim": f"each method: image AUROC >= {AIM_AUROC:.2f} on val/ and above the trivial baseline",
            "met": not shortfalls,
            "shortfalls": shortfalls,
            "why": why,
            "baseline_image_auroc": round(baseline_auroc, 4),
            "image_auroc": {m: round(f["image"], 4) for m, f in found.items()},
        }


def _progress_bar(total: int, desc: str, enabled: bool) -> tuple[tqdm, task.Progress]:
    """A tqdm bar and a `progress(done, total)` callback that moves it."""
    bar = tqdm(total=total, desc=desc, disable=not enabled, leave=False)
    return bar, lambda done, _total: bar.update(done - bar.n)


def _timed(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _preview(
    path: Path,
    originals: list[Image.Image],
    masks: list[np.ndarray],
    labels: np.ndarray,
    found: dict[str, dict[str, Any]],
    card: dict[str, Any],
) -> None:
    """Up to 8 defective val images as columns; rows: image | true mask | each method's overlay."""
    idx = np.flatnonzero(labels)[:: max(1, int(labels.sum()) // 8)][:8]
    size = originals[0].size
    cells = []
    for i in idx:
        cells.append(originals[i].resize(size))
    for i in idx:
        cells.append(Image.fromarray((masks[i] * 255).astype(np.uint8)).convert("RGB").resize(size))
    for method, f in found.items():
        t = (task.thresholds(card, method) or {}).get("pixel_threshold", float(np.quantile(f["maps"][0], 0.99)))
        for i in idx:
            cells.append(task.overlay(originals[i], f["maps"][i], t).resize(size))
    make_grid(cells, ncol=len(idx)).save(path)
    print(f"image | truth | {' | '.join(found)} -> {path}", file=sys.stderr)
