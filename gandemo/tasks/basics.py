"""GAN Basics: toy GANs in one and two dimensions, trained live, plus the quantities that explain them.

Pure logic (torch and numpy, no Gradio): the data distributions with their exact densities, a
seeded training session that plays k discriminator steps and one generator step at a time, and
what the tab plots and prints: the generator's density, D and the optimal D*, the Jensen-Shannon
divergence, the mean |D - D*| gap, and the mode coverage of the 2-D mixtures.

Reproducibility: a session draws every random number (initial weights, data, noise) from its own
`torch.Generator` seeded by the settings, never from the process-wide RNG, so the same settings
give the same run however the steps are split into plot updates and whatever other sessions do.
The snapshots use fixed inputs made once at the start and consume no random numbers.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gandemo.nets.toy import ToyDiscriminator, ToyGenerator, reset_parameters
from gandemo.optim import Adam
from gandemo.validation import InvalidInput, as_float, as_int, shown

SEED_MAX = 2**31 - 1
LR_MIN, LR_MAX = 1e-5, 0.1
K_MIN, K_MAX = 1, 10
BATCH_MIN, BATCH_MAX = 8, 512

DISTRIBUTIONS_1D = ("gaussian", "bimodal", "uniform")
NOISES = ("normal", "uniform")
LOSSES_1D = ("minimax", "non-saturating")
DATASETS_2D = ("ring", "grid")
LOSSES_2D = ("standard", "wgan-gp", "pacgan")
LOSS_TITLES = {
    "minimax": "minimax: G minimises log(1 − D(G(z)))",
    "non-saturating": "non-saturating: G minimises −log D(G(z))",
    "standard": "standard GAN (non-saturating G loss)",
    "wgan-gp": "WGAN-GP (critic with gradient penalty)",
    "pacgan": "PacGAN: standard GAN whose D judges 2 samples at once (anti-collapse)",
}

X_RANGE_1D = (-4.0, 4.0)  # the plotted and measured interval; every 1-D distribution lives well inside
GRID_POINTS_1D = 401
KDE_BANDWIDTH = 0.05  # small: the G samples come from evenly spaced z quantiles, so there is no noise to smooth
EVAL_SAMPLES_1D = 10_000
MAPPING_LINES = 24  # z -> x lines drawn as in the paper's figure
EVAL_SAMPLES_2D = 1_000
HEATMAP_SIZE = 48
HEAT_PARTNERS = 4  # PacGAN heatmap: partners per grid point (half real, half generated)
GP_WEIGHT = 10.0  # Gulrajani et al.'s lambda, used for their toy data too
MIN_SHARE = 0.2  # a mode counts as covered with >= 20% of its fair share of good samples (PacGAN's 20/100)


# --------------------------------------------------------------------------- input checks


def as_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    """`value` as one of `choices` (case and surrounding spaces ignored)."""
    if isinstance(value, str) and value.strip().lower() in choices:
        return value.strip().lower()
    raise InvalidInput(f"{name} must be one of {', '.join(choices)}; got {shown(value)}")


# --------------------------------------------------------------------------- 1-D distributions


def _normal_pdf(x: np.ndarray, mean: float, std: float) -> np.ndarray:
    return np.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))


def _normal_cdf(x: np.ndarray, mean: float, std: float) -> np.ndarray:
    return torch.special.ndtr(torch.as_tensor((np.asarray(x, np.float64) - mean) / std)).numpy()


@dataclass(frozen=True)
class Distribution1D:
    """A 1-D data distribution with exact density and CDF: a Gaussian mixture, or a uniform when
    `uniform` is set (then `means`/`stds` are unused)."""

    name: str
    weights: tuple[float, ...] = ()
    means: tuple[float, ...] = ()
    stds: tuple[float, ...] = ()
    uniform: tuple[float, float] | None = None

    def pdf(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self.uniform:
            lo, hi = self.uniform
            return np.where((x >= lo) & (x <= hi), 1.0 / (hi - lo), 0.0)
        return sum(w * _normal_pdf(x, m, s) for w, m, s in zip(self.weights, self.means, self.stds, strict=True))

    def cdf(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self.uniform:
            lo, hi = self.uniform
            return np.clip((x - lo) / (hi - lo), 0.0, 1.0)
        return sum(w * _normal_cdf(x, m, s) for w, m, s in zip(self.weights, self.means, self.stds, strict=True))

    @property
    def mean(self) -> float:
        if self.uniform:
            return sum(self.uniform) / 2
        return float(sum(w * m for w, m in zip(self.weights, self.means, strict=True)))

    @property
    def std(self) -> float:
        if self.uniform:
            lo, hi = self.uniform
            return (hi - lo) / math.sqrt(12)
        second = sum(w * (s * s + m * m) for w, m, s in zip(self.weights, self.means, self.stds, strict=True))
        return math.sqrt(second - self.mean**2)

    def support(self) -> list[tuple[float, float]]:
        """Where the data really lives: each component's mean ± 2 std, or the uniform's interval."""
        if self.uniform:
            return [self.uniform]
        return [(m - 2 * s, m + 2 * s) for m, s in zip(self.means, self.stds, strict=True)]

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """(n, 1) float32 samples."""
        if self.uniform:
            lo, hi = self.uniform
            return lo + (hi - lo) * torch.rand(n, 1, generator=generator)
        comp = torch.multinomial(torch.tensor(self.weights), n, replacement=True, generator=generator)
        means, stds = torch.tensor(self.means)[comp], torch.tensor(self.stds)[comp]
        return (means + stds * torch.randn(n, generator=generator)).unsqueeze(1)


DATA_1D: dict[str, Distribution1D] = {
    "gaussian": Distribution1D("gaussian", (1.0,), (1.0,), (0.5,)),
    "bimodal": Distribution1D("bimodal", (0.5, 0.5), (-1.5, 1.5), (0.35, 0.35)),
    "uniform": Distribution1D("uniform", uniform=(-0.5, 2.0)),
}


# --------------------------------------------------------------------------- 2-D mixtures


@dataclass(frozen=True)
class Mixture2D:
    """Equal-weight isotropic Gaussians at `centers` (K, 2) with one `sigma`."""

    name: str
    centers: np.ndarray
    sigma: float
    extent: float  # the plot shows [-extent, extent]^2

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        centers = torch.from_numpy(self.centers).float()
        comp = torch.randint(len(centers), (n,), generator=generator)
        return centers[comp] + self.sigma * torch.randn(n, 2, generator=generator)


def ring_of_gaussians(n: int = 8, radius: float = 2.0, sigma: float = 0.05) -> Mixture2D:
    angles = 2 * np.pi * np.arange(n) / n
    return Mixture2D("ring", np.stack([radius * np.cos(angles), radius * np.sin(angles)], 1), sigma, 3.0)


def grid_of_gaussians(side: int = 5, spacing: float = 2.0, sigma: float = 0.05) -> Mixture2D:
    ticks = spacing * (np.arange(side) - (side - 1) / 2)
    xx, yy = np.meshgrid(ticks, ticks, indexing="ij")
    return Mixture2D("grid", np.stack([xx.ravel(), yy.ravel()], 1), sigma, 5.5)


# sigma 0.05 (the papers use 0.02 for the ring): wide enough that a few thousand CPU steps can put
# samples within 3 sigma, narrow enough that the modes are clearly separate
DATA_2D: dict[str, Mixture2D] = {"ring": ring_of_gaussians(), "grid": grid_of_gaussians()}


# --------------------------------------------------------------------------- measures


def optimal_discriminator(p_data: np.ndarray, p_g: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """D*(x) = p_data / (p_data + p_g) (Goodfellow et al., 2014, Prop. 1); NaN where neither
    density has mass, since D* is undefined there (and D's value there does not matter)."""
    p_data, p_g = np.asarray(p_data, np.float64), np.asarray(p_g, np.float64)
    total = p_data + p_g
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > eps, p_data / np.where(total > eps, total, 1.0), np.nan)


def _plogp_ratio(p: np.ndarray, m: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0) / np.where(m > 0, m, 1.0)), 0.0)


def jsd_bits(p: np.ndarray, q: np.ndarray, dx: float, p_atoms: tuple = (), q_atoms: tuple = ()) -> float:
    """Jensen-Shannon divergence in bits (0: same distribution, 1: no overlap) between two densities
    sampled on a uniform grid of spacing `dx`. Mass outside the grid goes in `*_atoms` (e.g. the
    left and right tails), each compared as one point mass."""
    p = np.concatenate([np.asarray(p, np.float64) * dx, np.asarray(p_atoms, np.float64)])
    q = np.concatenate([np.asarray(q, np.float64) * dx, np.asarray(q_atoms, np.float64)])
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2
    nats = 0.5 * _plogp_ratio(p, m).sum() + 0.5 * _plogp_ratio(q, m).sum()
    return float(np.clip(nats / math.log(2), 0.0, 1.0))


def mean_abs_gap(d: np.ndarray, d_star: np.ndarray, p_data: np.ndarray, p_g: np.ndarray) -> float:
    """Mean |D - D*| over x ~ (p_data + p_g) / 2: the places where D is trained and used."""
    weight = (np.asarray(p_data, np.float64) + np.asarray(p_g, np.float64)) / 2
    ok = np.isfinite(d_star) & (weight > 0)
    if not ok.any():
        return float("nan")
    return float((np.abs(d - d_star)[ok] * weight[ok]).sum() / weight[ok].sum())


def kde_on_grid(samples: np.ndarray, grid: np.ndarray, bandwidth: float) -> tuple[np.ndarray, float, float]:
    """Gaussian-kernel density of 1-D `samples` on an evenly spaced `grid` (histogram, then a
    convolution: O(n + grid) instead of O(n * grid)). Returns the density and the fractions of
    samples left and right of the grid, which the density leaves out."""
    samples = np.asarray(samples, np.float64)
    dx = float(grid[1] - grid[0])
    edges = np.concatenate([grid - dx / 2, [grid[-1] + dx / 2]])
    counts, _ = np.histogram(samples, edges)
    n = max(len(samples), 1)
    half = int(math.ceil(4 * bandwidth / dx))
    taps = np.arange(-half, half + 1) * dx
    kernel = np.exp(-0.5 * (taps / bandwidth) ** 2)
    density = np.convolve(counts / n, kernel / kernel.sum(), mode="same") / dx
    return density, float((samples < edges[0]).sum() / n), float((samples > edges[-1]).sum() / n)


@dataclass(frozen=True)
class Coverage:
    modes: int  # modes with at least the minimum number of good samples
    total_modes: int
    high_quality: float  # fraction of samples within 3 sigma of their nearest mode
    counts: np.ndarray  # good samples per mode


def mode_coverage(points: np.ndarray, centers: np.ndarray, sigma: float, min_share: float = MIN_SHARE) -> Coverage:
    """The VEEGAN / Unrolled-GAN measures: a sample is high quality when it lies within 3 sigma of
    its nearest mode; a mode is covered when it holds at least `min_share` of its fair share
    (n / K) of high-quality samples, at least one (PacGAN's rule: 20 of the 100 expected), so a
    few stray samples do not count as covering a mode."""
    points, centers = np.asarray(points, np.float64).reshape(-1, 2), np.asarray(centers, np.float64)
    if len(points) == 0:
        return Coverage(0, len(centers), 0.0, np.zeros(len(centers), int))
    dist = np.linalg.norm(points[:, None, :] - centers[None, :, :], axis=2)
    nearest = dist.argmin(1)
    good = dist[np.arange(len(points)), nearest] <= 3 * sigma
    counts = np.bincount(nearest[good], minlength=len(centers))
    need = max(1, math.ceil(min_share * len(points) / len(centers)))
    return Coverage(int((counts >= need).sum()), len(centers), float(good.mean()), counts)


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Settings1D:
    distribution: str = "gaussian"
    noise: str = "normal"
    loss: str = "non-saturating"
    # D learns 10x faster than G (a two time-scale rule): with equal rates the pair circles the
    # equilibrium instead of settling on it
    lr_d: float = 2e-3
    lr_g: float = 2e-4
    k: int = 1
    batch: int = 256
    seed: int = 0


@dataclass(frozen=True)
class Settings2D:
    dataset: str = "ring"
    loss: str = "standard"
    lr_d: float = 1e-3
    lr_g: float = 1e-3
    k: int = 1
    batch: int = 256
    seed: int = 0


def _common(lr_d: Any, lr_g: Any, k: Any, batch: Any, seed: Any) -> dict[str, Any]:
    return {
        "lr_d": as_float(lr_d, "learning rate of D", LR_MIN, LR_MAX),
        "lr_g": as_float(lr_g, "learning rate of G", LR_MIN, LR_MAX),
        "k": as_int(k, "k (D steps per G step)", K_MIN, K_MAX),
        "batch": as_int(batch, "batch size", BATCH_MIN, BATCH_MAX),
        "seed": as_int(seed, "seed", 0, SEED_MAX),
    }


def settings_1d(
    distribution: Any, noise: Any, loss: Any, lr_d: Any, lr_g: Any, k: Any, batch: Any, seed: Any
) -> Settings1D:
    """Validate raw request values (raising `InvalidInput` in plain words) into `Settings1D`."""
    return Settings1D(
        distribution=as_choice(distribution, "distribution", DISTRIBUTIONS_1D),
        noise=as_choice(noise, "noise", NOISES),
        loss=as_choice(loss, "loss", LOSSES_1D),
        **_common(lr_d, lr_g, k, batch, seed),
    )


def settings_2d(dataset: Any, loss: Any, lr_d: Any, lr_g: Any, k: Any, batch: Any, seed: Any) -> Settings2D:
    """Validate raw request values (raising `InvalidInput` in plain words) into `Settings2D`."""
    return Settings2D(
        dataset=as_choice(dataset, "dataset", DATASETS_2D),
        loss=as_choice(loss, "loss", LOSSES_2D),
        **_common(lr_d, lr_g, k, batch, seed),
    )


# --------------------------------------------------------------------------- training


def _build(net: type[nn.Module], generator: torch.Generator, **kwargs: Any) -> nn.Module:
    # built on the meta device so construction draws nothing from the global RNG, then filled
    # from the session's own generator
    with torch.device("meta"):
        module = net(**kwargs)
    return reset_parameters(module.to_empty(device="cpu"), generator)


@dataclass
class History:
    """One row per snapshot (plot update): what the tab plots over time."""

    step: list[int] = field(default_factory=list)
    d_loss: list[float] = field(default_factory=list)
    g_loss: list[float] = field(default_factory=list)
    g_grad: list[float] = field(default_factory=list)  # norm of G's gradient: it vanishes with minimax
    metric_a: list[float] = field(default_factory=list)  # 1-D: JSD (bits); 2-D: modes covered
    metric_b: list[float] = field(default_factory=list)  # 1-D: mean |D - D*|; 2-D: high-quality fraction


class ToyGAN(ABC):
    """A G/D pair with its optimisers and private RNG; `step()` = k D steps + 1 G step.
    Not thread-safe: one caller at a time (the UI holds a lock per session)."""

    def __init__(self, settings: Settings1D | Settings2D, g: dict[str, Any], d: dict[str, Any], pack: int = 1) -> None:
        self.settings = settings
        self.pack = pack
        self.rng = torch.Generator().manual_seed(settings.seed)
        self.G = _build(ToyGenerator, self.rng, **g)
        self.D = _build(ToyDiscriminator, self.rng, **d)
        # WGAN-GP's Adam settings (beta1 = 0) are Gulrajani et al.'s; the rest use DCGAN's beta1 = 0.5
        betas = (0.0, 0.9) if settings.loss == "wgan-gp" else (0.5, 0.999)
        # torch.optim.Adam(foreach=True)'s arithmetic, without the 2 s / 150 MB first import (gandemo.optim)
        self.opt_d = Adam(self.D.parameters(), lr=settings.lr_d, betas=betas)
        self.opt_g = Adam(self.G.parameters(), lr=settings.lr_g, betas=betas)
        self.steps = 0
        self.last = {"d_loss": float("nan"), "g_loss": float("nan"), "g_grad": float("nan")}
        self.history = History()

    @abstractmethod
    def sample_data(self, n: int) -> torch.Tensor:
        """(n, x_dim) real samples, drawn from the session's generator."""

    @abstractmethod
    def sample_noise(self, n: int) -> torch.Tensor:
        """(n, z_dim) noise, drawn from the session's generator."""

    def _packed(self, x: torch.Tensor) -> torch.Tensor:
        """PacGAN: `pack` samples of one kind side by side make one input of D."""
        if self.pack == 1:
            return x
        return x[: len(x) // self.pack * self.pack].reshape(-1, x.shape[1] * self.pack)

    def _d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        real, fake = self._packed(real), self._packed(fake)
        # one pass over both batches: half the op calls, and op overhead is most of the cost here
        d_real, d_fake = self.D(torch.cat([real, fake])).split([len(real), len(fake)])
        if self.settings.loss == "wgan-gp":
            t = torch.rand(len(real), 1, generator=self.rng)
            mix = (t * real + (1 - t) * fake).requires_grad_(True)
            (grad,) = torch.autograd.grad(self.D(mix).sum(), mix, create_graph=True)
            penalty = ((grad.norm(dim=1) - 1) ** 2).mean()
            return d_fake.mean() - d_real.mean() + GP_WEIGHT * penalty
        # -[log D(x) + log(1 - D(G(z)))], written with logits for numerical safety
        return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()

    def _g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        d_fake = self.D(self._packed(fake))
        if self.settings.loss == "wgan-gp":
            return -d_fake.mean()
        if self.settings.loss == "minimax":
            return -F.softplus(d_fake).mean()  # = mean log(1 - D(G(z))), which G minimises
        return F.softplus(-d_fake).mean()  # non-saturating: mean -log D(G(z))

    @staticmethod
    def _apply(loss: torch.Tensor, params: list[nn.Parameter], opt: Adam) -> tuple:
        # gradients for this player's parameters only: none wasted on the other player's
        grads = torch.autograd.grad(loss, params)
        opt.step(grads)
        return grads

    def step(self) -> dict[str, float]:
        """One round of the game: k steps of D on fresh real and fake batches, then one step of G."""
        s = self.settings
        d_params, g_params = list(self.D.parameters()), list(self.G.parameters())
        for _ in range(s.k):
            real = self.sample_data(s.batch)
            with torch.no_grad():
                fake = self.G(self.sample_noise(s.batch))
            d_loss = self._d_loss(real, fake)
            self._apply(d_loss, d_params, self.opt_d)
        g_loss = self._g_loss(self.G(self.sample_noise(s.batch)))
        g_grad = torch.nn.utils.get_total_norm(self._apply(g_loss, g_params, self.opt_g)).item()
        self.steps += 1
        self.last = {"d_loss": d_loss.item(), "g_loss": g_loss.item(), "g_grad": g_grad}
        return self.last

    def train(self, n: int) -> dict[str, float]:
        """`n` steps; returns the last step's losses and G's gradient norm."""
        for _ in range(n):
            self.step()
        return self.last

    def _record(self, a: float, b: float) -> None:
        h = self.history
        if h.step and h.step[-1] == self.steps:
            return  # a second snapshot at the same step (Pause, then Start) adds no row
        h.step.append(self.steps)
        h.d_loss.append(self.last["d_loss"])
        h.g_loss.append(self.last["g_loss"])
        h.g_grad.append(self.last["g_grad"])
        h.metric_a.append(a)
        h.metric_b.append(b)


@dataclass(frozen=True)
class View1D:
    """What the 1-D plot shows at one moment."""

    step: int
    x: np.ndarray
    p_data: np.ndarray
    p_g: np.ndarray
    d: np.ndarray  # D(x), a probability
    d_star: np.ndarray  # p_data / (p_data + p_g), NaN where both vanish
    z_lines: np.ndarray  # noise values ...
    x_lines: np.ndarray  # ... and where G sends them
    jsd_bits: float
    gap: float  # mean |D - D*|
    g_mean: float
    g_std: float
    d_of_g: float  # mean D(G(z)): near 0 when D rejects G's samples, which saturates the minimax loss
    losses: dict[str, float]


def _noise_quantiles(noise: str, n: int) -> torch.Tensor:
    """Evenly spaced quantiles of the noise: G's density then comes out smooth and free of
    sampling noise, and the mapping lines keep the same z's from frame to frame."""
    u = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    z = torch.special.ndtri(u) if noise == "normal" else 2 * u - 1
    return z.float().unsqueeze(1)


class ToyGAN1D(ToyGAN):
    """The paper's figure: x ~ a 1-D distribution, z ~ N(0, 1) or U(-1, 1); G and D are tanh MLPs
    (2 hidden layers of 32), tanh so that G's density stays smooth where ReLU would put kinks."""

    def __init__(self, settings: Settings1D) -> None:
        nets = {"hidden": 32, "depth": 2, "activation": "tanh"}
        super().__init__(settings, g={"z_dim": 1, "x_dim": 1, **nets}, d={"x_dim": 1, **nets})
        self.data = DATA_1D[settings.distribution]
        self.grid = np.linspace(*X_RANGE_1D, GRID_POINTS_1D)
        self.dx = float(self.grid[1] - self.grid[0])
        self.p_data = self.data.pdf(self.grid)
        lo, hi = self.grid[0] - self.dx / 2, self.grid[-1] + self.dx / 2
        self.data_tails = (float(self.data.cdf(lo)), float(1 - self.data.cdf(hi)))
        self._z_eval = _noise_quantiles(settings.noise, EVAL_SAMPLES_1D)
        self._z_lines = _noise_quantiles(settings.noise, MAPPING_LINES)
        self._x_grid = torch.from_numpy(self.grid).float().unsqueeze(1)

    def sample_data(self, n: int) -> torch.Tensor:
        return self.data.sample(n, self.rng)

    def sample_noise(self, n: int) -> torch.Tensor:
        if self.settings.noise == "normal":
            return torch.randn(n, 1, generator=self.rng)
        return 2 * torch.rand(n, 1, generator=self.rng) - 1

    @torch.no_grad()
    def snapshot(self) -> View1D:
        """Densities, D, D* and the numbers at the current step (appended to the history)."""
        xs = self.G(self._z_eval).squeeze(1).double().numpy()
        p_g, left, right = kde_on_grid(xs, self.grid, KDE_BANDWIDTH)
        d = torch.sigmoid(self.D(self._x_grid)).double().numpy()
        d_star = optimal_discriminator(self.p_data, p_g)
        jsd = jsd_bits(self.p_data, p_g, self.dx, self.data_tails, (left, right))
        gap = mean_abs_gap(d, d_star, self.p_data, p_g)
        self._record(jsd, gap)
        return View1D(
            step=self.steps,
            x=self.grid,
            p_data=self.p_data,
            p_g=p_g,
            d=d,
            d_star=d_star,
            z_lines=self._z_lines.squeeze(1).numpy(),
            x_lines=self.G(self._z_lines).squeeze(1).numpy(),
            jsd_bits=jsd,
            gap=gap,
            g_mean=float(xs.mean()),
            g_std=float(xs.std()),
            # E[D(G(z))] as an integral over the grid: no second pass of D over the samples
            d_of_g=float((d * p_g).sum() / max(p_g.sum(), 1e-12)),
            losses=dict(self.last),
        )


@dataclass(frozen=True)
class View2D:
    """What the 2-D plot shows at one moment."""

    step: int
    real: np.ndarray  # (n, 2)
    fake: np.ndarray  # (n, 2)
    heat: np.ndarray  # (H, W): D(x) in [0, 1], or the WGAN critic's raw score; row 0 is y = -extent
    extent: float
    centers: np.ndarray
    coverage: Coverage
    losses: dict[str, float]


class ToyGAN2D(ToyGAN):
    """Mode collapse you can see. G: 8-D Gaussian noise through 2 hidden ReLU layers of 128;
    D: one hidden ReLU layer of 128, the nets of the Unrolled-GAN paper's ring experiment, in
    which the standard GAN hops from mode to mode. The remedy, PacGAN, lets D judge two samples
    at once: a pair from a collapsed G is two near-identical points, which real pairs rarely are."""

    Z_DIM = 8
    PACK = 2

    def __init__(self, settings: Settings2D) -> None:
        pack = self.PACK if settings.loss == "pacgan" else 1
        super().__init__(
            settings,
            g={"z_dim": self.Z_DIM, "x_dim": 2, "hidden": 128, "depth": 2, "activation": "relu"},
            # WGAN-GP's critic gets a second hidden layer: a one-layer critic is too coarse to
            # approximate the 1-Lipschitz optimum, and Gulrajani et al. used deeper ones still
            d={"x_dim": 2 * pack, "hidden": 128, "depth": 2 if settings.loss == "wgan-gp" else 1, "activation": "relu"},
            pack=pack,
        )
        self.data = DATA_2D[settings.dataset]
        # the fixed snapshot inputs come from a second generator: they cost the training RNG nothing
        eval_rng = torch.Generator().manual_seed(settings.seed + 1)
        self._z_eval = torch.randn(EVAL_SAMPLES_2D, self.Z_DIM, generator=eval_rng)
        self.real_eval = self.data.sample(EVAL_SAMPLES_2D, eval_rng)
        ticks = torch.linspace(-self.data.extent, self.data.extent, HEATMAP_SIZE)
        yy, xx = torch.meshgrid(ticks, ticks, indexing="ij")
        self._heat_points = torch.stack([xx.ravel(), yy.ravel()], 1)

    def sample_data(self, n: int) -> torch.Tensor:
        return self.data.sample(n, self.rng)

    def sample_noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.Z_DIM, generator=self.rng)

    def _heat(self, fake: torch.Tensor) -> torch.Tensor:
        pts = self._heat_points
        if self.pack == 1:
            scores = self.D(pts)
        else:
            # a packed D judges pairs: pair each grid point with partners drawn half from the real
            # and half from G's samples, in both orders, and average what D says of the pairs
            partners = torch.cat([self.real_eval[: HEAT_PARTNERS // 2], fake[: HEAT_PARTNERS // 2]])
            n, m = len(pts), len(partners)
            a, b = pts.repeat_interleave(m, 0), partners.repeat(n, 1)
            pairs = torch.cat([torch.cat([a, b], 1), torch.cat([b, a], 1)])
            scores = torch.sigmoid(self.D(pairs)).view(2, n, m).mean((0, 2))
            return scores.view(HEATMAP_SIZE, HEATMAP_SIZE)
        if self.settings.loss != "wgan-gp":
            scores = torch.sigmoid(scores)
        return scores.view(HEATMAP_SIZE, HEATMAP_SIZE)

    @torch.no_grad()
    def snapshot(self) -> View2D:
        """G's samples, D's surface and the coverage numbers at the current step (appended to the history)."""
        fake = self.G(self._z_eval)
        cov = mode_coverage(fake.numpy(), self.data.centers, self.data.sigma)
        self._record(cov.modes, cov.high_quality)
        return View2D(
            step=self.steps,
            real=self.real_eval.numpy(),
            fake=fake.numpy(),
            heat=self._heat(fake).numpy(),
            extent=self.data.extent,
            centers=self.data.centers,
            coverage=cov,
            losses=dict(self.last),
        )
