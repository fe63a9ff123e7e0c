"""The choice of the anomaly inpainter's scoring on val/ (`choose_scoring` over `SCORING_GRID`), the trivial
baseline's calibration and the measures both share (mask IoU). Used at export, by --rescore and in-run."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from gandemo import metrics
from gandemo.nets.anogan import ResidualStats
from gandemo.tasks import anomaly as task

STATS_IMAGES = 256  # train/good images the inpainter's residual statistics are fitted on (evenly spaced)

# The inpainter's scoring settings tried on val/ at export (the issue: choose the scoring per category on
# val/ and record the choice): which grids, how much smoothing, whether and how strongly the heatmap is
# z-scored against normal training images (floor: what is added to the per-pixel std; None = not at all),
# how many top pixels make the image score, and whether each heatmap is then z-scored against its own pixels
# (for products that are not aligned). 2 x 2 x 4 x 3 x 2 = 96 settings from one inpainting pass.
SCORING_GRID: dict[str, list[Any]] = {
    "cells": [[8, 16, 32], [16, 32]],
    "sigma": [2.0, 4.0],
    "floor": [0.005, 0.01, 0.03, None],
    "top": [0.002, 0.005, 0.02],
    "self_normalise": [False, True],
}


def choose_scoring(
    models: dict[str, nn.Module],
    train: torch.Tensor,
    val: torch.Tensor,
    labels: np.ndarray,
    masks: list[np.ndarray],
    grid: dict[str, list[Any]] = SCORING_GRID,
) -> tuple[dict[str, Any], ResidualStats, list[dict[str, Any]]]:
    """The inpainter's scoring with the best image AUROC + pixel AUROC on val/ (normal and defective images
    at 128², their masks at 128²), from one inpainting pass per grid over val/ and normal training images
    (which the per-pixel statistics are fitted on). Returns the settings (the card's `anomaly.inpaint`
    fields), the fitted statistics (N: all zero mean and unit std when not z-scored) and every setting's
    measurements, best first."""

    def raw(x: torch.Tensor, cell: int) -> torch.Tensor:  # unsmoothed heat of one grid, in batches of 64
        block = {"cells": [cell], "sigma": 0.0, "normalise": False}
        return torch.cat([torch.from_numpy(task.inpaint(models, x[p], block).heat) for p in task.chunks(len(x), 64)])

    cells = sorted({c for group in grid["cells"] for c in group})
    val_heat, train_heat = {c: raw(val, c) for c in cells}, {c: raw(train, c) for c in cells}
    truth = np.concatenate([m.ravel() for m in masks])
    tried: list[dict[str, Any]] = []
    for group in grid["cells"]:
        hv = torch.stack([val_heat[c] for c in group]).mean(0)
        ht = torch.stack([train_heat[c] for c in group]).mean(0)
        for sigma in grid["sigma"]:
            sv, st = task.smooth(hv, sigma), task.smooth(ht, sigma)
            for floor in grid["floor"]:
                stats = ResidualStats(task.INPAINT_SIZE)
                if floor is not None:
                    stats.fit(st, floor=floor)
                with torch.no_grad():
                    z = stats(sv) if floor is not None else sv
                for own in grid["self_normalise"]:
                    heat = task.against_itself(z) if own else z
                    pixel = metrics.auroc(truth, heat.numpy().ravel())
                    for top in grid["top"]:
                        image = metrics.auroc(labels, task.top_mean(heat, top).numpy())
                        setting = {"cells": list(group), "sigma": sigma, "floor": floor, "self_normalise": own}
                        tried.append(
                            {
                                **setting,
                                "top": top,
                                "image_auroc": round(image, 4),
                                "pixel_auroc": round(pixel, 4),
                                "_stats": stats,
                            }
                        )
    tried.sort(key=lambda t: -(t["image_auroc"] + t["pixel_auroc"]))
    best = tried[0]
    settings = {
        "cells": best["cells"],
        "sigma": best["sigma"],
        "top": best["top"],
        "normalise": best["floor"] is not None,
        "std_floor": best["floor"],
        "self_normalise": best["self_normalise"],
    }
    return settings, best["_stats"], [{k: v for k, v in t.items() if k != "_stats"} for t in tried]


def calibrate_baseline(
    baseline: task.PixelStatsBaseline, normal: list[Image.Image], image_fpr: float, pixel_fpr: float
) -> dict[str, Any]:
    """The trivial baseline's thresholds from normal images, as every method's are (task.calibrate)."""
    scores, pixels = baseline.score(np.stack([task.baseline_input(img) for img in normal]))
    full = [task.to_original_size(h, img.size) for h, img in zip(pixels, normal, strict=True)]
    return task.calibrate(scores, full, image_fpr, pixel_fpr)


def mask_iou(maps: list[np.ndarray], masks: list[np.ndarray], which: np.ndarray, entry: dict[str, Any]) -> float:
    """Mean IoU with the true masks of the images `which`, of the binary masks the app shows for them."""
    t = float(entry["pixel_threshold"])
    return metrics.mean_iou([maps[i] > t for i in which], [masks[i] for i in which])


def stats_pick(n: int) -> torch.Tensor:
    """Which of n training images the residual statistics are fitted on: at most STATS_IMAGES, evenly spaced."""
    return torch.linspace(0, n - 1, min(n, STATS_IMAGES)).round().long()


def scoring_record(tried: list[dict[str, Any]]) -> dict[str, Any]:
    """What the card says of the choice: how it was made, the chosen setting's val/ AUROCs and the runners-up."""
    grid = ", ".join(f"{k} {v}" for k, v in SCORING_GRID.items())
    return {
        "chosen_by": f"the highest image AUROC + pixel AUROC on val/ among {len(tried)} settings ({grid}); floor "
        "None = the heatmap is not z-scored",
        "val_auroc": {"image": tried[0]["image_auroc"], "pixel": tried[0]["pixel_auroc"]},
        "runners_up": tried[1:4],
    }
