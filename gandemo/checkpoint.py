"""Checkpoint folders: `model.safetensors` (weights only) + `card.json` (what they are) + `samples.png`.

Layout and card fields are the contract in DESIGN.md ("Checkpoint folder"). Writing is atomic
(a temporary sibling folder renamed into place); loading verifies the sha256 and builds every
module from the card's `arch` before loading the weights strictly, so a broken folder raises one
`CheckpointError` naming it and leaves nothing half-loaded behind.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import importlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CARD = "card.json"
SAMPLES = "samples.png"
# Only classes from the project's own nets may be built from a card: a card is data, not code.
ALLOWED_ARCH_PREFIX = "gandemo.nets."


class CheckpointError(RuntimeError):
    """A checkpoint folder is missing, corrupted, or does not match its card."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: its folder, its card, and one ready module per card `arch` entry."""

    folder: Path
    card: dict[str, Any]
    modules: dict[str, nn.Module] = field(default_factory=dict)

    def __getitem__(self, name: str) -> nn.Module:
        return self.modules[name]


def arch_entry(module: nn.Module, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The card's description of one module: its import path and constructor kwargs."""
    cls = type(module)
    return {"class": f"{cls.__module__}:{cls.__qualname__}", "kwargs": dict(kwargs)}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _tensors(modules: dict[str, nn.Module], dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for prefix, module in modules.items():
        for key, value in module.state_dict().items():
            value = value.detach().cpu()
            if dtype is not None and value.is_floating_point():
                value = value.to(dtype)
            out[f"{prefix}.{key}"] = value.contiguous()
    return out


def save_checkpoint(
    folder: str | Path,
    modules: dict[str, nn.Module],
    card: dict[str, Any],
    samples: Image.Image | None = None,
    storage_dtype: torch.dtype | None = torch.float16,
    pictures: dict[str, Image.Image] | None = None,
) -> Path:
    """Write `modules` and `card` to `folder` atomically; returns the folder.

    `card` must hold `task`, `variant` and `arch` (one entry per module, see `arch_entry`);
    `format_version`, `sha256` and `storage_dtype` are filled in here. Float tensors are stored
    as `storage_dtype` (fp16 by default: halves the size, invisible in 8-bit images) and loaded
    back into the module's own dtype. `pictures` are more PNGs for the folder (file name -> image),
    e.g. the training curve.
    """
    folder = Path(folder)
    missing = {"task", "variant", "arch"} - card.keys()
    if missing:
        raise ValueError(f"card lacks {sorted(missing)}")
    if set(card["arch"]) != set(modules):
        raise ValueError(f"card arch {sorted(card['arch'])} != modules {sorted(modules)}")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".partial", dir=folder.parent))
    try:
        save_file(_tensors(modules, storage_dtype), str(tmp / WEIGHTS))
        card = {
            **card,
            "format_version": FORMAT_VERSION,
            "storage_dtype": str(storage_dtype).removeprefix("torch.") if storage_dtype else "native",
            "sha256": sha256_of(tmp / WEIGHTS),
        }
        (tmp / CARD).write_text(json.dumps(card, indent=2, sort_keys=False) + "\n")
        if samples is not None:
            samples.save(tmp / SAMPLES)
        for name, picture in (pictures or {}).items():
            if Path(name).name != name or not name.endswith(".png") or name == SAMPLES:
                raise ValueError(f"picture names are plain .png file names other than {SAMPLES}, not {name!r}")
            picture.save(tmp / name)
        _replace_dir(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def update_card(folder: str | Path, **fields: Any) -> dict[str, Any]:
    """Merge `fields` into an existing card (e.g. metrics measured after export), atomically."""
    folder = Path(folder)
    card = read_card(folder)
    card.update(fields)
    tmp = folder / (CARD + ".tmp")
    tmp.write_text(json.dumps(card, indent=2) + "\n")
    os.replace(tmp, folder / CARD)
    return card


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one atomic step (Linux renameat2 with RENAME_EXCHANGE); False
    where the system or the file system cannot, and the caller then moves them one at a time."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # not Linux, or a C library without renameat2
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EXDEV):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _replace_dir(new: Path, target: Path) -> None:
    """Move `new` to `target`. An existing target is swapped with `new` in one atomic step where the
    system can (`_exchange`): a kill at any moment leaves the old folder or the new one at `target`.
    Elsewhere the old folder is moved aside first: a kill between the two renames leaves no folder
    at `target` (the registry then says the model is missing), never a mix. What was swapped out is
    then removed."""
    if target.exists() and _exchange(new, target):
        shutil.rmtree(new, ignore_errors=True)  # `new` now holds the old checkpoint
        return
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def read_card(folder: str | Path) -> dict[str, Any]:
    folder = Path(folder)
    path = folder / CARD
    if not path.is_file():
        raise CheckpointError(f"{folder}: no {CARD} (not a checkpoint folder)")
    try:
        card = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{folder}: {CARD} is not valid JSON ({exc})") from None
    if not isinstance(card, dict):
        raise CheckpointError(f"{folder}: {CARD} must hold a JSON object")
    return card


def _build(folder: Path, name: str, entry: Any) -> nn.Module:
    try:
        path, kwargs = entry["class"], entry.get("kwargs", {})
        module_name, _, cls_name = path.partition(":")
    except (TypeError, KeyError, AttributeError):
        raise CheckpointError(f"{folder}: arch entry {name!r} needs 'class' and 'kwargs'") from None
    if not module_name.startswith(ALLOWED_ARCH_PREFIX) or not cls_name:
        raise CheckpointError(
            f"{folder}: arch {name!r} is {path!r}; only {ALLOWED_ARCH_PREFIX}<file>:<Class> is allowed"
        )
    try:
        cls = getattr(importlib.import_module(module_name), cls_name)
        module = cls(**kwargs)
    except Exception as exc:  # unknown class, bad kwargs: all one kind of error for the caller
        raise CheckpointError(f"{folder}: cannot build {name!r} as {path}({kwargs}): {exc}") from None
    if not isinstance(module, nn.Module):
        raise CheckpointError(f"{folder}: {path} is not a torch module")
    return module


def load_checkpoint(folder: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Load and verify a checkpoint folder; modules come back in eval mode without gradients."""
    folder = Path(folder)
    card = read_card(folder)
    if card.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{folder}: format_version {card.get('format_version')!r}, this code reads {FORMAT_VERSION}"
        )
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise CheckpointError(f"{folder}: {WEIGHTS} is missing")
    if sha256_of(weights) != card.get("sha256"):
        raise CheckpointError(f"{folder}: {WEIGHTS} does not match the sha256 in {CARD} (corrupted or replaced)")
    arch = card.get("arch")
    if not isinstance(arch, dict) or not arch:
        raise CheckpointError(f"{folder}: {CARD} has no 'arch'")
    try:
        tensors = load_file(str(weights), device=str(device))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{folder}: cannot read {WEIGHTS}: {exc}") from None

    modules: dict[str, nn.Module] = {}
    for name, entry in arch.items():
        module = _build(folder, name, entry)
        prefix = f"{name}."
        state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            detail = " ".join(str(exc).split())[:400]
            raise CheckpointError(
                f"{folder}: weights do not fit the card's architecture for {name!r}: {detail}"
            ) from None
        modules[name] = module.to(device).eval().requires_grad_(False)
    unused = [k for k in tensors if k.split(".", 1)[0] not in arch]
    if unused:
        raise CheckpointError(f"{folder}: {WEIGHTS} has tensors no arch entry uses: {unused[:3]}")
    return Checkpoint(folder=folder, card=card, modules=modules)
