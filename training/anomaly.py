"""Anomaly: AnoGAN / f-AnoGAN on one MVTec-style category, trained on its normal images only.

`--data DIR/<category>` is a folder in the MVTec AD layout:
    train/good/*.png                         normal images (the only ones trained on)
    val/good/*.png                           normal images, never trained on: thresholds are calibrated here
    val/<defect>/*.png                       defective images (evaluation only)
    ground_truth/<defect>/<stem>_mask.png    their defect masks (255 = defect)

One run of the shared loop, in three stages split by step (`--encoder-steps`, then `--inpaint-steps`, are
the last steps):
1. the first steps - encoder_steps - inpaint_steps: a DCGAN G and a spectrally normalised D (gandemo.nets.anogan)
   on train/good, softplus losses (D: minimax; G: non-saturating), Adam (beta1 0.5). Real images
   are augmented as suits the product (`--augment`, default per category: flips for the magnetic
   tiles' texture, small rotations and shifts for the hanging metal plates, tiny shifts for the
   transistors, whose position and orientation are part of what "normal" means), and DiffAugment
   (`--diffaugment`) on everything D sees, strongest for metal_plate's 56 images.
2. the last encoder_steps: f-AnoGAN's izi_f. G's BatchNorm statistics are re-estimated once
   (eval mode from here on); G and D are frozen and the encoder E learns z = E(x) with
       ||x - G(E(x))||^2 / n + kappa * ||f(x) - f(G(E(x)))||^2 / n_f,     kappa = 1 (the paper's)
   where f is D's last hidden layer.
3. the last inpaint_steps: the inpainting detector at the data's 128² (RIAD's scheme, Zavrtanik et al. 2021,
   trained as a Pix2Pix conditional GAN, Isola et al. 2017): grid cells of 8, 16 or 32 px are hidden at random
   (a quarter of the cells) and a U-Net I redraws them from what surrounds them, with lambda_l1 * L1 on the
   hidden pixels plus a PatchGAN critic C on (hidden image, redrawn image). A defect is what I cannot redraw
   from its normal surroundings. In-run evaluation (`--eval-every`) measures its AUROC on val/ and keeps the
   best step in <out>/best.
`--init DIR` takes G, D and E from a shipped anomaly checkpoint of the same category: the run then trains the
inpainter alone, all of its --steps (how the 64² f-AnoGAN models of v1 got their 128² inpainter).
No EMA: E must learn the inverse of exactly the G that is shipped, and G stops changing in stage 2.
log.csv has the same columns in every stage (a stage's unused losses are 0).

At export the inpainter's per-pixel residual statistics are fitted on train/good (gandemo.nets.anogan.ResidualStats)
and whether its heatmap is z-scored with them is chosen by image AUROC on val/ (recorded in the card). The
thresholds of every method are calibrated on val/good (gandemo.tasks.anomaly.calibrate)
and written into the card with G, D and E. `python -m training evaluate anomaly` measures image and
pixel AUROC of both methods and of the trivial baseline on val/, seconds per image, and whether the
model meets its aims (each method >= 0.90 image AUROC and above the baseline), with the evidence why not.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from gandemo.checkpoint import Checkpoint, load_checkpoint
from gandemo.imaging import list_images, make_grid, tensor_to_pils
from gandemo.nets.anogan import Discriminator, Encoder, Generator, ResidualStats
from gandemo.nets.pix2pix import PatchDiscriminator, UNetGenerator
from gandemo.tasks import TASKS
from gandemo.tasks import anomaly as task
from training import anomaly_evaluation, distributed
from training.anomaly_data import (
    AUGMENTS,
    ModelImages,
    augment,
    decode,
    describe_augment,
    is_greyscale,
    load_mask,
    mvtec_items,
    parse_augment,
    random_cell_masks,
)
from training.anomaly_evaluation import progress_bar
from training.anomaly_scoring import SCORING_GRID, calibrate_baseline, choose_scoring, scoring_record, stats_pick
from training.augment import parse_policy
from training.data import EpochSampler
from training.evaluation import Evaluation
from training.loop import Amp, recalibrate_batchnorm
from training.steps import dcgan_step, pix2pix_step
from training.task import ImageTask, add_options, write_tiny

Z_DIM = 100
SAMPLES = 8  # items per row of the sample grid
CALIBRATION = (16, 64)  # batches x latents on which G's BatchNorm statistics are re-estimated before stage 2

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
            "steps": 14000,
            "encoder_steps": 2000,
            "inpaint_steps": 5000,
            "batch_size": 32,
            "inpaint_batch_size": 16,
            "lr": 2e-4,
            "image_size": 64,
            "ngf": 32,
            "ndf": 32,
            "nef": 32,
            "inpaint_ngf": 32,
            "inpaint_ndf": 32,
            "sample_every": 500,
            "eval_every": 500,
        },
        "gpu": {
            "steps": 60000,
            "encoder_steps": 10000,
            "inpaint_steps": 20000,
            "batch_size": 64,
            "inpaint_batch_size": 32,
            "lr": 2e-4,
            "image_size": 128,
            "ngf": 64,
            "ndf": 64,
            "nef": 64,
            "inpaint_ngf": 64,
            "inpaint_ndf": 64,
            "sample_every": 2000,
            "eval_every": 2000,
        },
    }

    @classmethod
    def planned_runs(cls, root: Path) -> list[tuple[str, Path | None, str]]:
        """`python -m training all`: one run per category folder under DIR/anomaly, the category its variant."""
        where = cls.find_data(root)
        variants = TASKS[cls.name].variants
        found = sorted(p for p in where.iterdir() if p.is_dir()) if where and where.is_dir() else []
        runs = [
            (f.name, f, "")
            if f.name in variants
            else (f.name, None, f"not a catalogue category ({', '.join(variants)})")
            for f in found
        ]
        return runs or [("*", None, f"no category folders in {root / 'anomaly'}")]

    @classmethod
    def tiny_checkpoints(cls, root: Path, seed: int = 0) -> list[Path]:
        """Every catalogue category's (magnetic_tile greyscale, as its photos are)."""
        return [
            write_tiny_checkpoint(root, category, 1 if category == "magnetic_tile" else 3, seed)
            for category in TASKS[cls.name].variants
        ]

    # a longer run moves the stages' boundaries: the encoder's and the inpainter's steps change with --steps
    resume_free = frozenset({"encoder_steps", "inpaint_steps"})

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        # no super(): flips are one of this task's per-category augmentations (--augment), not a switch
        sizes = {
            "--image-size": "the model's resolution (a power of two >= 16)",
            "--ngf": "generator width (DCGAN: 64)",
            "--ndf": "discriminator width (DCGAN: 64)",
            "--nef": "encoder width",
            "--encoder-steps": "the N steps before the inpainter's train E (stage 2)",
            "--inpaint-steps": "the last N steps train the inpainter (stage 3)",
            "--inpaint-batch-size": "images per step of stage 3",
            "--inpaint-ngf": "the inpainter's U-Net width (pix2pix: 64)",
            "--inpaint-ndf": "its PatchGAN critic's width (pix2pix: 64)",
            "--search-iterations": (
                task.SEARCH_ITERATIONS,
                "latent-search iterations the thresholds are calibrated at (the app's default)",
            ),
        }
        add_options(parser, int, sizes)
        weights = {
            "--lambda-l1": (100.0, "weight of the inpainter's L1 (pix2pix: 100)"),
            "--kappa": (1.0, "weight of izi_f's feature term (paper: 1)"),
            "--heatmap-sigma": (task.HEATMAP_SIGMA, "heatmap smoothing, px"),
            "--image-fpr": (task.IMAGE_FPR, "share of normal images flagged"),
            "--pixel-fpr": (task.PIXEL_FPR, "share of normal pixels flagged"),
        }
        add_options(parser, float, weights)
        parser.add_argument(
            "--init",
            type=Path,
            help="an anomaly checkpoint of this category: G, D and E start from it and every step trains the inpainter",
        )
        parser.add_argument(
            "--augment",
            help=f"real-image augmentation, comma list of {','.join(AUGMENTS)} with :value, or none "
            f"(default per category: {AUGMENT})",
        )
        parser.add_argument(
            "--diffaugment", help=f"DiffAugment policy for D's inputs (default per category: {DIFFAUGMENT})"
        )

    def __init__(self, args: argparse.Namespace, device: torch.device) -> None:
        super().__init__(args, device)
        self.folder = Path(args.data)
        categories = TASKS[self.name].variants
        if self.folder.name in categories and self.folder.name != self.variant:
            raise SystemExit(
                f"--data {self.folder} is the {self.folder.name!r} category but --variant is {self.variant!r}: "
                f"add --variant {self.folder.name}"
            )
        self.image_size = int(args.image_size)
        self.steps, self.encoder_steps = int(args.steps), int(args.encoder_steps)
        self.inpaint_steps = int(args.inpaint_steps)
        init = self._init_checkpoint(args.init) if args.init is not None else None
        if init is not None:  # f-AnoGAN's stages are done: every step trains the inpainter
            self.encoder_steps, self.inpaint_steps = 0, self.steps
        if not (self.folder / "train" / "good").is_dir():
            raise SystemExit(
                f"{self.folder / 'train' / 'good'} is not a folder: --data must be a category folder in the MVTec "
                "layout (train/good, val/good, val/<defect>, ground_truth/<defect>/<stem>_mask.png)"
            )
        if self.encoder_steps < 0 or self.inpaint_steps < 0 or self.encoder_steps + self.inpaint_steps > self.steps:
            raise SystemExit(
                f"--encoder-steps ({self.encoder_steps}) and --inpaint-steps ({self.inpaint_steps}) must be >= 0 and "
                f"add up to at most --steps ({self.steps}) (the preset's values unless given): the last steps train "
                "the encoder, then the inpainter"
            )
        self.gan_steps = self.steps - self.encoder_steps - self.inpaint_steps
        self.lambda_l1 = float(args.lambda_l1)
        self.inpaint_batch = int(args.inpaint_batch_size)
        self.augment = parse_augment(args.augment if args.augment is not None else AUGMENT.get(self.variant, "hflip"))
        self.policy = parse_policy(
            args.diffaugment if args.diffaugment is not None else DIFFAUGMENT.get(self.variant, "color,translation")
        )
        self.kappa = float(args.kappa)
        self.search_iterations = task.check_iterations(args.search_iterations)
        # the score's weight and the search's settings: written into the card and used to calibrate it,
        # the same values the app then reads back from the card (gandemo.tasks.anomaly.search_settings)
        self.scoring = task.search_settings(None)
        self.sigma = float(args.heatmap_sigma)
        self.image_fpr, self.pixel_fpr = float(args.image_fpr), float(args.pixel_fpr)
        self.progress = bool(args.progress)

        self.load_images(args)
        torch.manual_seed(args.seed)
        if init is not None:  # the init checkpoint's f-AnoGAN sizes, whatever the preset says
            self.image_size = int(init.card["arch"]["G"]["kwargs"]["image_size"])
            args.ngf = init.card["arch"]["G"]["kwargs"]["ngf"]
            args.ndf = init.card["arch"]["D"]["kwargs"]["ndf"]
            args.nef = init.card["arch"]["E"]["kwargs"]["nef"]
            self.data = ModelImages(self._originals, self.data.paths, self.image_size, self.channels)
            self.val = ModelImages(self._val_originals, self.val.paths, self.image_size, self.channels)
        self.g_kwargs = {
            "z_dim": Z_DIM,
            "ngf": int(args.ngf),
            "channels": self.channels,
            "image_size": self.image_size,
        }
        self.d_kwargs = {"ndf": int(args.ndf), "channels": self.channels, "image_size": self.image_size}
        self.e_kwargs = {"z_dim": Z_DIM, "nef": int(args.nef), "channels": self.channels, "image_size": self.image_size}
        G, D, E = Generator(**self.g_kwargs), Discriminator(**self.d_kwargs), Encoder(**self.e_kwargs)
        if init is not None:
            for name, module in (("G", G), ("D", D), ("E", E)):
                module.load_state_dict(init.modules[name].state_dict())
        c = self.channels
        self.i_kwargs = {"in_channels": c + 1, "out_channels": c, "ngf": int(args.inpaint_ngf), "depth": 7}
        self.c_kwargs = {"in_channels": 2 * c + 1, "ndf": int(args.inpaint_ndf), "layers": 3}
        inpainter, critic = UNetGenerator(**self.i_kwargs), PatchDiscriminator(**self.c_kwargs)
        nets = {"G": G, "D": D, "E": E, "I": inpainter, "C": critic}
        self.models = {k: m.to(device) for k, m in nets.items()}
        betas = (0.5, 0.999)  # DCGAN's and pix2pix's beta1 = 0.5 steadies the adversarial game
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
            "inpaint_steps": self.inpaint_steps,
            "inpaint_batch_size": self.inpaint_batch,
            "inpaint_ngf": self.i_kwargs["ngf"],
            "inpaint_ndf": self.c_kwargs["ndf"],
            "lambda_l1": self.lambda_l1,
        }
        self.init_from = str(args.init) if init is not None else None
        self.done = 0  # steps this task has taken (the stage follows from it); resumed with the run
        self.g_frozen = init is not None  # G's BatchNorm re-estimated and G frozen for stage 2 (an init's is)
        self.sample_z = torch.randn(SAMPLES, Z_DIM, generator=torch.Generator().manual_seed(0))

    # ---- data --------------------------------------------------------------------------------------
    def load_images(self, args: argparse.Namespace, flip: bool = False) -> None:
        """train/good in memory (greyscale categories as one channel) and val/good for calibration."""
        train_dir = self.folder / "train" / "good"
        paths = list_images(train_dir)[: args.limit] if args.limit else list_images(train_dir)
        originals, paths = decode(paths, self.progress, "decoding train/good")
        self.channels = 1 if is_greyscale(originals) else 3
        self._originals = originals
        self.data = ModelImages(originals, paths, self.image_size, self.channels)
        self.data.folder = train_dir
        self.data_hi = ModelImages(originals, paths, task.INPAINT_SIZE, self.channels)  # the inpainter's 128²
        good = [i.path for i in mvtec_items(self.folder, "val") if not i.anomalous]
        val, val_paths = decode(good, self.progress, "decoding val/good")
        if len(val) < 2:
            raise SystemExit(f"{self.folder / 'val' / 'good'} needs at least two normal images to calibrate on")
        self._val_originals = val
        self.val = ModelImages(val, val_paths, self.image_size, self.channels)
        self.val_hi = ModelImages(val, val_paths, task.INPAINT_SIZE, self.channels)
        self.sampler = EpochSampler(len(self.data), args.batch_size, seed=args.seed)
        self.inpaint_sampler = EpochSampler(len(self.data), int(args.inpaint_batch_size), seed=args.seed + 1)
        self.flip = False

    def next_batch(self) -> torch.Tensor:
        if self.done >= self.gan_steps + self.encoder_steps:  # the next step is the inpainter's
            return augment(self.data_hi.batch(self.inpaint_sampler.next()), self.augment)
        return augment(self.data.batch(self.sampler.next()), self.augment)

    def _init_checkpoint(self, folder: Path) -> Any:
        """The f-AnoGAN models a --init run starts from: an anomaly checkpoint of this category."""
        try:
            ckpt = load_checkpoint(folder)
        except Exception as exc:  # CheckpointError, or a folder that is not there
            raise SystemExit(f"--init {folder}: {exc}") from None
        if ckpt.card.get("task") != self.name or ckpt.card.get("variant") != self.variant:
            raise SystemExit(
                f"--init {folder} is a {ckpt.card.get('task')}/{ckpt.card.get('variant')} checkpoint, "
                f"not anomaly/{self.variant}"
            )
        if not {"G", "D", "E"} <= set(ckpt.modules):
            raise SystemExit(f"--init {folder} has no f-AnoGAN models (G, D, E)")
        return ckpt

    # ---- the two stages ----------------------------------------------------------------------------
    def train_step(self, real: torch.Tensor, amp: Amp) -> dict[str, torch.Tensor]:
        self.done += 1
        zero = torch.zeros((), device=real.device)
        losses = dict.fromkeys(["loss_d", "loss_g", "D(x)", "D(G(z))", "loss_e", "loss_c", "loss_i_gan", "l1"], zero)
        if self.done <= self.gan_steps:
            stage = 1
            losses |= self._gan_step(real, amp)
        elif self.done <= self.gan_steps + self.encoder_steps:
            stage = 2
            losses["loss_e"] = self._encoder_step(real, amp)
        else:
            stage = 3
            out = self._inpaint_step(real, amp)
            losses |= {"loss_c": out["loss_d"], "loss_i_gan": out["loss_g_gan"], "l1": out["l1"]}
        return {"stage": torch.full((), float(stage)), **losses}

    def _inpaint_step(self, real: torch.Tensor, amp: Amp) -> dict[str, torch.Tensor]:
        """Stage 3: hide a random quarter of the cells of a random grid (8, 16 or 32 px) in each image and
        train I to redraw them (pix2pix_step with the mask: L1 on the hidden pixels + C's GAN loss)."""
        for name in ("G", "D", "E"):  # the loop puts every model in train mode; these are done
            self.models[name].eval().requires_grad_(False)
        mask = random_cell_masks(len(real), real.shape[-1], task.INPAINT_CELLS, task.INPAINT_SETS).to(real)
        condition = task.inpaint_input(real, mask)
        optimizers = {"G": self.optimizers["I"], "D": self.optimizers["C"]}
        return pix2pix_step(
            self.models["I"], self.models["C"], optimizers, condition, real, amp, self.lambda_l1, mask=mask
        )

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
        """Rows: G's images for fixed latents | normal validation images | their encoder reconstructions
        G(E(x)) (noise until stage 2 has trained E) | from stage 3 on, the inpainter's redrawing of them."""
        n = min(SAMPLES, len(self.val))
        x = self.val.batch(slice(0, n))
        G = models["G"]
        with task.frozen(G), torch.no_grad():
            samples = G(self.sample_z[:n].to(task.device_of(G))).float().cpu()
        rec = task.encode(models["G"], models["D"], models["E"], x).reconstruction
        rows = [samples, x, rec]
        if self.done > self.gan_steps + self.encoder_steps:  # the inpainter has trained: its redrawing, at 64²
            found = task.inpaint(models, self.val_hi.batch(slice(0, n)), self.inpaint_block())
            rows.append(F.interpolate(found.reconstruction, size=x.shape[-1], mode="area"))
        return make_grid(tensor_to_pils(torch.cat([task.to_display(t) for t in rows])), ncol=n)

    # ---- the inpainter on val/: in-run evaluation and the choice of its scoring ----------------------------
    eval_key = "inpaint_miss"  # 1 - mean of the inpainter's image and pixel AUROC on val/ (lower is better)

    def inpaint_block(self, normalise: bool | None = None) -> dict[str, Any]:
        """The card's `anomaly.inpaint` settings: as chosen on val/ at export (`choose_scoring`), else the
        defaults of gandemo.tasks.anomaly (in-run evaluation); `normalise` overrides the choice."""
        block = {
            "image_size": task.INPAINT_SIZE,
            "cells": list(task.INPAINT_CELLS),
            "sets": task.INPAINT_SETS,
            "sigma": task.INPAINT_SIGMA,
            "top": task.INPAINT_TOP,
            "normalise": True,
            **getattr(self, "_scoring", {}),
        }
        return block if normalise is None else {**block, "normalise": normalise}

    def _val_set(self) -> tuple[torch.Tensor, np.ndarray, list[np.ndarray]]:
        """val/ at 128² (normal and defective images), labels and masks at 128², decoded once."""
        if not hasattr(self, "_val_cache"):
            items = mvtec_items(self.folder, "val")
            originals, _ = decode([i.path for i in items])
            x = ModelImages(originals, [i.path for i in items], task.INPAINT_SIZE, self.channels).batch(slice(None))
            size = (task.INPAINT_SIZE, task.INPAINT_SIZE)
            masks = [load_mask(i, size) for i in items]
            self._val_cache = (x, np.array([i.anomalous for i in items]), masks)
        return self._val_cache

    def choose_scoring(
        self, models: dict[str, nn.Module], grid: dict[str, list[Any]] = SCORING_GRID
    ) -> tuple[dict[str, Any], ResidualStats, list[dict]]:
        """`choose_scoring` on this run's val/ and (at most STATS_IMAGES) training images."""
        x, labels, masks = self._val_set()
        return choose_scoring(models, self.data_hi.batch(stats_pick(len(self.data_hi))), x, labels, masks, grid)

    def evaluate(self, models: dict[str, nn.Module]) -> dict[str, float]:
        """From stage 3 on: the inpainter's image and pixel AUROC on val/, z-scored and plain; before it, the
        same columns as NaN (eval.csv keeps one header) and a miss of 1."""
        keys = ["image_auroc_z", "pixel_auroc_z", "image_auroc_plain", "pixel_auroc_plain"]
        if self.done <= self.gan_steps + self.encoder_steps:
            return {**dict.fromkeys(keys, float("nan")), self.eval_key: 1.0}
        # the default scoring, z-scored (the default floor) and plain: two points of the export's grid
        grid = {
            "cells": [list(task.INPAINT_CELLS)],
            "sigma": [task.INPAINT_SIGMA],
            "floor": [0.01, None],
            "top": [task.INPAINT_TOP],
            "self_normalise": [False],
        }
        _, _, tried = self.choose_scoring(models, grid)  # best first
        found = {"z" if t["floor"] is not None else "plain": t for t in tried}
        out = {
            f"{kind}_auroc_{tag}": found[tag][f"{kind}_auroc"] for tag in ("z", "plain") for kind in ("image", "pixel")
        }
        out = {k: out[k] for k in keys}
        out[self.eval_key] = round(1 - (tried[0]["image_auroc"] + tried[0]["pixel_auroc"]) / 2, 4)
        return out

    def calibration(self, models: dict[str, nn.Module]) -> dict[str, Any]:
        """Every method's thresholds from the normal validation images (gandemo.tasks.anomaly.calibrate)."""
        out: dict[str, Any] = {
            "data": f"val/good: {len(self.val)} normal validation images, never trained on",
            "how": f"image threshold: the {1 - self.image_fpr:.1%} quantile of the normal images' scores "
            f"(so {self.image_fpr:.0%} of normal images are called anomalous); pixel threshold: the "
            f"{1 - self.pixel_fpr:.2%} quantile of all their heatmap pixels at the images' own size",
        }
        cache = getattr(self, "_frozen_calibration", {})
        for method in task.METHODS:
            if method == "inpaint" and "I" not in models:
                continue
            if method in cache:  # f-AnoGAN's models no longer change in stage 3: calibrated once a process
                out[method] = cache[method]
                continue
            x = (self.val_hi if method == "inpaint" else self.val).batch(slice(None))
            t0 = time.perf_counter()
            bar, advance = progress_bar(len(x), f"calibrating {method}", self.progress)
            scores, heat = task.score_batches(
                method,
                models,
                x,
                self.search_iterations,
                sigma=self.sigma,
                progress=advance,
                block=self.inpaint_block(),
                scoring=self.scoring,
            )
            bar.close()
            full = [task.to_original_size(h, size) for h, size in zip(heat, self.val.sizes, strict=True)]
            entry = task.calibrate(scores, full, self.image_fpr, self.pixel_fpr)
            if method == "latent_search":
                entry["iterations"] = self.search_iterations
            out[method] = entry
            if method != "inpaint" and self.done > self.gan_steps + self.encoder_steps:
                self._frozen_calibration = {**cache, method: entry}
                cache = self._frozen_calibration
            print(f"calibrated {method} on {len(x)} normal images in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        if "B" in models:  # the baseline's thresholds, from the same normal images, the same way
            baseline = task.PixelStatsBaseline.from_module(models["B"])
            out["baseline"] = calibrate_baseline(baseline, self._val_originals, self.image_fpr, self.pixel_fpr)
        return out

    def export_modules(self, models: dict[str, nn.Module]) -> dict[str, tuple[nn.Module, dict]]:
        if not self.g_frozen:  # exported before stage 2 (e.g. --export-only): eval-mode statistics for G
            models = dict(models)
            batches, size = CALIBRATION
            gen = torch.Generator().manual_seed(1234)
            models["G"] = recalibrate_batchnorm(
                models["G"], [torch.randn(size, Z_DIM, generator=gen) for _ in range(batches)], self.device
            )
        kwargs = {"G": self.g_kwargs, "D": self.d_kwargs, "E": self.e_kwargs}
        self._inpaint_choice = {}
        if self.done <= self.gan_steps + self.encoder_steps:  # the inpainter has not trained: it does not ship
            models = {k: v for k, v in models.items() if k not in ("I", "C")}
        else:
            self._scoring, stats, tried = self.choose_scoring(models)
            models = {**models, "N": stats.to(task.device_of(models["I"]))}
            self._inpaint_choice = scoring_record(tried)
            kwargs |= {"I": self.i_kwargs, "C": self.c_kwargs, "N": {"size": task.INPAINT_SIZE}}
        # the trivial baseline's statistics ship too, so the app can show its heatmap beside the GAN's
        baseline = task.PixelStatsBaseline.fit(np.stack([task.baseline_input(img) for img in self._originals]))
        models = {**models, "B": baseline.to_module()}
        kwargs["B"] = {"size": task.BASELINE_SIZE, "channels": 3}
        self._calibration = self.calibration(models)  # on the run's device; the loop handed copies to move
        return {name: (models[name].cpu(), kw) for name, kw in kwargs.items()}

    def card_fields(self) -> dict[str, Any]:
        inpaint = {}
        if getattr(self, "_inpaint_choice", None):
            inpaint = {
                "inpaint": {
                    **self.inpaint_block(),
                    "heatmap": "mean over the grids of |x - I(hidden x)| on the hidden cells (channel mean, 0-1 "
                    "units), Gaussian-smoothed (sigma px); z-scored per pixel against train/good (N) if normalise",
                    "score": "mean of the heatmap's top `top` share of pixels",
                    **self._inpaint_choice,
                }
            }
        return {
            "data": {
                "name": self.folder.name,
                "path": f"{self.folder.parent.name}/{self.folder.name}",
                "items": len(self.data),
                "resolution": f"{self.image_size}x{self.image_size}"
                + (" greyscale" if self.channels == 1 else " RGB")
                + f" (f-AnoGAN); {task.INPAINT_SIZE}x{task.INPAINT_SIZE} (inpainter)",
                "augmentation": f"{describe_augment(self.augment)}; DiffAugment "
                f"({','.join(self.policy) or 'none'}) on D's inputs",
                "held_out": f"val/: {len(self.val)} normal images (calibration) and the defective ones "
                "(evaluation), never trained on",
            },
            "hyperparameters": self.hparams | ({"init": self.init_from} if self.init_from else {}),
            "objective": "stage 1: DCGAN (softplus, non-saturating G) on normal images; stage 2: f-AnoGAN izi_f "
            f"encoder, MSE(x, G(E(x))) + {self.kappa:g} MSE(f(x), f(G(E(x)))) with G and D frozen; stage 3: "
            f"inpainter I (pix2pix U-Net) redrawing hidden grid cells, {self.lambda_l1:g} L1 on them + the GAN loss "
            "of a PatchGAN critic C",
            "z_dim": Z_DIM,
            "image_size": self.image_size,
            "anomaly": {
                "category": self.variant,
                "lambda": self.scoring["lambda"],
                "score": "A(x) = (1 - lambda) R(x) + lambda D(x); R = mean |x - G(z)| (0-1 pixel units), "
                "D = mean |f(x) - f(G(z))| over D's last hidden layer",
                "search_iterations": self.search_iterations,
                "search_lr": self.scoring["search_lr"],
                "search_candidates": self.scoring["search_candidates"],
                "heatmap_sigma": self.sigma,
                **inpaint,
                "calibration": getattr(self, "_calibration", {}),
            },
        }

    def extra_state(self) -> dict[str, Any]:
        return {
            "sampler": self.sampler.state_dict(),
            "inpaint_sampler": self.inpaint_sampler.state_dict(),
            "done": self.done,
            "g_frozen": self.g_frozen,
        }

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state["sampler"])
        if "inpaint_sampler" in state:  # states written before the inpainter have none
            self.inpaint_sampler.load_state_dict(state["inpaint_sampler"])
        self.done = int(state["done"])
        self.g_frozen = bool(state["g_frozen"])

    # ---- python -m training evaluate anomaly ---------------------------------------------------------
    @classmethod
    def add_evaluate_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--iterations", type=int, help="latent-search iterations (default: the card's)")
        parser.add_argument("--batch", type=int, default=64, help="images per batch of the scoring")
        parser.add_argument("--timing-n", type=int, default=10, help="images timed one by one, as the app runs them")
        parser.add_argument(
            "--methods", help="comma list of the methods to measure (default: every method the checkpoint has)"
        )
        parser.add_argument("--preview", type=Path, help="write a PNG: image | truth | each method's overlay")
        parser.add_argument(
            "--rescore",
            action="store_true",
            help="first choose the inpainter's scoring on val/ again, refit its statistics and the baseline's, "
            "recalibrate their thresholds and rewrite the checkpoint (e.g. one exported by older code)",
        )
        parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")

    @classmethod
    def evaluate_checkpoint(cls, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
        """--rescore first rewrites the checkpoint's scoring (`rescore`); then the shared driver."""
        if args.rescore and not args.dry_run:
            anomaly_evaluation.rescore(Path(args.checkpoint), Path(args.data))
        return super().evaluate_checkpoint(args)

    @classmethod
    def measure(cls, ckpt: Checkpoint, args: argparse.Namespace) -> Evaluation:
        """See training.anomaly_evaluation.measure."""
        return anomaly_evaluation.measure(ckpt, args)

    rescore = staticmethod(anomaly_evaluation.rescore)


# ---- the tests' tiny checkpoints (TrainTask.tiny_checkpoints) --------------------------------------------
TINY_SEARCH = 3  # latent-search iterations the tiny cards are calibrated at


def write_tiny_checkpoint(root: Path, category: str, channels: int = 3, seed: int = 0) -> Path:
    """An untrained but valid anomaly checkpoint (16x16 G, D, E of width 4; a 32x32 inpainter I of
    width 4 with its critic C and residual statistics N; the baseline's statistics B) under
    `root/anomaly/<category>`, with thresholds calibrated by the task's own code on 4 flat "normal"
    images (greyscale when channels = 1)."""
    torch.manual_seed(seed)
    kw = {"channels": channels, "image_size": 16}
    i_kw = {"in_channels": channels + 1, "out_channels": channels, "ngf": 4, "depth": 4}
    c_kw = {"in_channels": 2 * channels + 1, "ndf": 4, "layers": 2}
    models = {
        "G": Generator(z_dim=8, ngf=4, **kw).eval(),
        "D": Discriminator(ndf=4, **kw).eval(),
        "E": Encoder(z_dim=8, nef=4, **kw).eval(),
        "I": UNetGenerator(**i_kw).eval(),
        "C": PatchDiscriminator(**c_kw).eval(),
        "N": ResidualStats(32),
    }
    inpaint = {"image_size": 32, "cells": [8, 16], "sets": 4, "sigma": 1.0, "top": 0.01, "normalise": True}
    rng = np.random.default_rng(seed)
    normal = torch.from_numpy(rng.uniform(-0.2, 0.2, (4, channels, 16, 16))).float()
    normal_hi = torch.from_numpy(rng.uniform(-0.2, 0.2, (4, channels, 32, 32))).float()
    raw = task.inpaint(models, normal_hi, {**inpaint, "normalise": False})
    models["N"].fit(torch.from_numpy(raw.heat))
    calibration = {}
    for method in task.METHODS:
        x = normal_hi if method == "inpaint" else normal
        scores, heat = task.score_batches(method, models, x, TINY_SEARCH, block=inpaint)
        calibration[method] = task.calibrate(scores, heat)
    photos = rng.integers(100, 140, (4, 128, 128, 3), dtype=np.uint8)  # the baseline's "normal" images
    baseline = task.PixelStatsBaseline.fit(photos)
    models["B"] = baseline.to_module()
    scores, pixels = baseline.score(photos)
    calibration["baseline"] = task.calibrate(scores, pixels)
    calibration["latent_search"]["iterations"] = TINY_SEARCH
    calibration["how"] = "test: 4 flat images"
    kwargs = {
        "G": {"z_dim": 8, "ngf": 4, **kw},
        "D": {"ndf": 4, **kw},
        "E": {"z_dim": 8, "nef": 4, **kw},
        "I": i_kw,
        "C": c_kw,
        "N": {"size": 32},
        "B": {"size": 128, "channels": 3},
    }
    return write_tiny(
        root,
        "anomaly",
        category,
        {k: (models[k], kw) for k, kw in kwargs.items()},
        "16x16",
        data_name=category,
        anomaly={"search_iterations": TINY_SEARCH, "inpaint": inpaint, "calibration": calibration},
    )
