"""4× Upscale: the G to measure (a checkpoint or an untrained SRResNet), writing one, the tab's request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks._data import save_stand_in

API = "upscale"  # the tab's main endpoint


def superres_model(checkpoint: Path | None) -> tuple[Any, str, Path | None]:
    """(G in eval mode, NCHW; what it is, in words; its checkpoint folder or None): `checkpoint`, else
    the shipped gan one, else an untrained SRResNet of the cpu preset's size."""
    import torch

    from gandemo import registry
    from gandemo.checkpoint import load_checkpoint

    folder = checkpoint or registry.checkpoint_dir("superres", "gan")
    if (folder / "card.json").is_file():
        return load_checkpoint(folder)["G"], f"checkpoint {folder}", folder
    if checkpoint:
        raise SystemExit(f"no checkpoint at {checkpoint}")
    from gandemo.nets.srgan import SRResNet
    from training.task import task_class

    preset = task_class("superres").presets["cpu"]
    kwargs = {"channels": preset["channels"], "blocks": preset["blocks"], "batchnorm": True, "bicubic_skip": True}
    torch.manual_seed(0)
    G = SRResNet(**kwargs).eval().requires_grad_(False)
    params = sum(p.numel() for p in G.parameters()) / 1e6
    return G, f"NO trained checkpoint: an UNTRAINED SRResNet of the cpu preset's size ({kwargs}, {params:.2f} M)", None


def save_superres(G: Any, folder: Path, variant: str) -> None:
    """Write an upscaler G as a superres checkpoint folder the app loads."""
    kwargs = {"channels": G.channels, "blocks": G.blocks, "batchnorm": True, "bicubic_skip": G.bicubic_skip}
    save_stand_in(folder, "superres", variant, {"G": G}, {"G": kwargs})


def stand_in(folder: Path, variant: str) -> str:
    G, what, _ = superres_model(None)
    save_superres(G, folder, variant)
    return what


def request(root: Path, examples: Path) -> tuple[str, tuple]:
    """The tab's first example picture (160x120: a small upscale) with the gan model."""
    from gandemo.ui import superres

    return API, (superres.example_pictures(examples / "superres")[0], "gan", False)
