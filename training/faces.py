"""Faces: DCGAN on a folder of face photos (64x64).

D minimises -[log D(x) + log(1 - D(G(z)))]; G minimises the non-saturating -log D(G(z)),
both written with softplus on logits for numerical stability:
    -log sigmoid(l) = softplus(-l),   -log(1 - sigmoid(l)) = softplus(l).
"""

from __future__ import annotations

import argparse
import copy
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from gandemo.imaging import make_grid, tensor_to_pils
from gandemo.nets.dcgan import Discriminator, Generator
from gandemo.tasks.faces import latents
from training.augment import diff_augment, parse_policy
from training.data import EpochSampler, ImageSet
from training.loop import Amp, TrainTask

IMAGE_SIZE = 64
Z_DIM = 100
HOLDOUT_FRACTION = 0.07  # ~1,000 of the 14,000 faces, for the card's metrics; never trained on

# Sized on these 2-core machines (torch 2.14.1, 2 threads): with ngf = ndf = 64 one step of 64
# images took 2.0 s here (not DESIGN.md's 0.8 s), two hours ~3,500 steps. D costs ~3/4 of a step
# (three passes), so the CPU preset halves D's width: ~1 s/step, 6,000 steps (~30 epochs) in two
# hours, with G at the paper's width.
PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {"steps": 30000, "batch_size": 64, "ngf": 64, "ndf": 32, "lr": 2e-4, "ema_decay": 0.999},
    "gpu": {"steps": 30000, "batch_size": 128, "ngf": 64, "ndf": 64, "lr": 2e-4, "ema_decay": 0.9995},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch-size", type=int, help="images per step (preset: 64 cpu, 128 gpu)")
    parser.add_argument("--ngf", type=int, help="generator width (paper: 64)")
    parser.add_argument("--ndf", type=int, help="discriminator width (paper: 64)")
    parser.add_argument("--lr", type=float, help="Adam learning rate, both players (paper: 2e-4)")
    parser.add_argument(
        "--diffaugment",
        default="color,translation",
        help="DiffAugment policy for D's inputs: comma list of color,translation,cutout, or none",
    )
    parser.add_argument("--limit", type=int, help="use only the first N images (quick trials)")
    parser.add_argument(
        "--flip", action=argparse.BooleanOptionalAction, default=True, help="random horizontal flips of real faces"
    )
    parser.add_argument("--eval-n", type=int, default=996, help="faces per FID evaluation during the run")


class FacesTask(TrainTask):
    name = "faces"
    ema_of = "G"
    eval_key = "fid"

    def __init__(self, args: argparse.Namespace, device: torch.device) -> None:
        p = {**PRESETS[args.preset], **{k: v for k, v in vars(args).items() if v is not None}}
        self.device = device
        self.batch_size = int(p["batch_size"])
        self.policy = parse_policy(args.diffaugment)
        self.flip = bool(args.flip)
        self.eval_n = int(args.eval_n)
        self.data_folder, self.limit, self.progress = args.data, args.limit, args.progress
        self._fid_ref: Any = None
        self.ema_decay = float(p["ema_decay"])
        self.g_kwargs = {"z_dim": Z_DIM, "ngf": int(p["ngf"]), "channels": 3}
        self.d_kwargs = {"ndf": int(p["ndf"]), "channels": 3}
        self.hparams = {
            "batch_size": self.batch_size,
            "lr": p["lr"],
            "betas": [0.5, 0.999],
            "diffaugment": ",".join(self.policy) or "none",
            "hflip": self.flip,
            **self.g_kwargs,
            "ndf": self.d_kwargs["ndf"],
        }

        self.data = ImageSet(args.data, IMAGE_SIZE, "train", HOLDOUT_FRACTION, limit=args.limit, progress=args.progress)
        self.sampler = EpochSampler(len(self.data), self.batch_size, seed=args.seed)
        torch.manual_seed(args.seed)
        G = Generator(**self.g_kwargs).to(device)
        D = Discriminator(**self.d_kwargs).to(device)
        self.models = {"G": G, "D": D}
        betas = (0.5, 0.999)  # the paper's beta1 = 0.5 steadies the adversarial game
        self.optimizers = {
            "G": torch.optim.Adam(G.parameters(), lr=p["lr"], betas=betas),
            "D": torch.optim.Adam(D.parameters(), lr=p["lr"], betas=betas),
        }
        self.sample_z = latents(0, 64).to(device)  # the same 64 faces in every sample grid

    def next_batch(self) -> torch.Tensor:
        x = self.data.batch(self.sampler.next())
        if self.flip:  # a mirrored face is as real as the original: twice the data for free
            flip = torch.rand(len(x)) < 0.5
            x[flip] = x[flip].flip(3)
        return x

    def train_step(self, real: torch.Tensor, amp: Amp) -> dict[str, torch.Tensor]:
        G, D = self.models["G"], self.models["D"]
        z = torch.randn(real.shape[0], Z_DIM, device=self.device)
        aug = lambda x: diff_augment(x, self.policy)  # noqa: E731

        D.requires_grad_(True)
        with amp.autocast():
            fake = G(z)
            logit_real = amp.fp32(D(aug(real)))
            logit_fake = amp.fp32(D(aug(fake.detach())))
            loss_d = F.softplus(-logit_real).mean() + F.softplus(logit_fake).mean()
        amp.step(loss_d, self.optimizers["D"])

        D.requires_grad_(False)  # G's step needs gradients through D, not of D's weights
        with amp.autocast():
            loss_g = F.softplus(-amp.fp32(D(aug(fake)))).mean()
        amp.step(loss_g, self.optimizers["G"])

        return {
            "loss_d": loss_d.detach(),
            "loss_g": loss_g.detach(),
            "D(x)": torch.sigmoid(logit_real.detach()).mean(),
            "D(G(z))": torch.sigmoid(logit_fake.detach()).mean(),
        }

    def sample_grid(self, models: dict[str, nn.Module]) -> Image.Image:
        G = recalibrated_generator(models["G"], self.device)
        with torch.inference_mode():
            images = G(self.sample_z)
        return make_grid(tensor_to_pils(images), ncol=8)

    def evaluate(self, models: dict[str, nn.Module]) -> dict[str, float]:
        """FID of `eval_n` faces against as many held-out faces, by the card's protocol."""
        from gandemo import metrics
        from training.evaluate import EVAL_SEED, inception_features, inception_network

        if self._fid_ref is None:
            held = ImageSet(self.data_folder, IMAGE_SIZE, "holdout", HOLDOUT_FRACTION, progress=False)
            n = min(self.eval_n, len(held))
            net = inception_network()
            self._fid_ref = (net, inception_features(net, held.batch(torch.arange(n))))
        net, ref = self._fid_ref
        G = recalibrated_generator(models["G"], self.device)
        z = latents(EVAL_SEED, len(ref), G.z_dim).to(self.device)
        with torch.inference_mode():
            fake = torch.cat([G(z[i : i + 100]) for i in range(0, len(z), 100)]).float().cpu()
        return {"fid": round(metrics.frechet_distance(inception_features(net, fake), ref), 2)}

    def export_modules(self, models: dict[str, nn.Module]) -> dict[str, tuple[nn.Module, dict]]:
        return {"G": (recalibrated_generator(models["G"], self.device).cpu(), self.g_kwargs)}

    def card_fields(self) -> dict[str, Any]:
        return {
            "data": {
                "name": self.data.folder.name if self.data.folder.name != "train" else self.data.folder.parent.name,
                "path": str(self.data.folder),
                "items": len(self.data),
                "resolution": f"{IMAGE_SIZE}x{IMAGE_SIZE}",
                "held_out": f"{HOLDOUT_FRACTION:.0%} of the files by a hash of the file name "
                "(training.data.is_holdout), never trained on; metrics use them",
            },
            "hyperparameters": self.hparams,
            "z_dim": Z_DIM,
            "image_size": IMAGE_SIZE,
        }

    def extra_state(self) -> dict[str, Any]:
        return {"sampler": self.sampler.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state["sampler"])


@torch.no_grad()
def recalibrated_generator(G: nn.Module, device: torch.device, batches: int = 16) -> nn.Module:
    """A copy of G whose BatchNorm running statistics are re-estimated for its own weights.

    The EMA generator's weights are an average, but its BN statistics were copied from the live
    G; inference runs in eval mode (so a face does not depend on the rest of its batch), so the
    statistics must match the averaged weights. A fixed seed keeps this reproducible."""
    G = copy.deepcopy(G).to(device)
    bns = [m for m in G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the calibration batches
    G.train()
    gen = torch.Generator().manual_seed(1234)
    for _ in range(batches):
        G(torch.randn(64, G.z_dim, generator=gen).to(device))
    return G.eval().requires_grad_(False)
