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
from gandemo.validation import InvalidInput, as_int

SEED_MAX = 2**31 - 1
LR_MIN, LR_MAX = 1e-5, 0.1
K_MIN, K_MAX = 1, 10
BATCH_MIN, BATCH_MAX = 8, 512

DISTRIBUTIONS_1D = ("gaussian", "bimodal", "uniform")
NOISES = ("normal", "uniform")
LOSSES_1D = ("minimax", "non-saturating")
DATASETS_2D = ("ring", "grid")
LOSSES_2D = ("standard", "minimax", "wgan-gp", "minibatch")
LOSS_TITLES = {
    "minimax": "minimax: G minimises log(1 − D(G(z)))",
    "non-saturating": "non-saturating: G minimises −log D(G(z))",
    "standard": "standard GAN (non-saturating G loss)",
    "wgan-gp": "WGAN-GP (critic with gradient penalty)",
    "minibatch": "standard GAN + minibatch discrimination (anti-collapse)",
}

X_RANGE_1D = (-4.0, 4.0)  # the plotted and measured interval; every 1-D distribution lives well inside
GRID_POINTS_1D = 401
KDE_BANDWIDTH = 0.05  # small: the G samples come from evenly spaced z quantiles, so there is no noise to smooth
EVAL_SAMPLES_1D = 20_000
MAPPING_LINES = 24  # z -> x lines drawn as in the paper's figure
EVAL_SAMPLES_2D = 1_000
HEATMAP_SIZE = 64
GP_WEIGHT = 10.0  # Gulrajani et al.'s lambda, used for their toy data too
MIN_SHARE = 0.2  # a mode counts as covered with >= 20% of its fair share of good samples (PacGAN's 20/100)


# --------------------------------------------------------------------------- input checks


def as_float(value: Any, name: str, lo: float, hi: float) -> float:
    """`value` as a finite float in [lo, hi]; numeric strings are accepted, NaN/inf/bool are not."""
    allowed = f"{name} must be a number from {lo:g} to {hi:g}"
    if isinstance(value, bool) or value is None:
        raise InvalidInput(f"{allowed}, got {value!r}")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise InvalidInput(f"{allowed}, got {value!r}") from None
    if not isinstance(value, int | float):
        raise InvalidInput(f"{allowed}, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise InvalidInput(f"{allowed}, got {value}")
    if not lo <= value <= hi:
        raise InvalidInput(f"{allowed}, got {value:g}")
    return value


def as_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    """`value` as one of `choices` (case and surrounding spaces ignored)."""
    if isinstance(value, str) and value.strip().lower() in choices:
        return value.strip().lower()
    raise InvalidInput(f"{name} must be one of {', '.join(choices)}; got {value!r}")


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
    lr_d: float = 2e-3
    lr_g: float = 2e-3
    k: int = 1
    batch: int = 128
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
    """A G/D pair with its optimisers and RNG. `step()` = k D steps + 1 G step.
    Not thread-safe: one caller at a time (the UI holds a lock per session)."""

    def __init__(
        self,
        settings: Settings1D | Settings2D,
        x_dim: int,
        z_dim: int,
        hidden: int,
        depth: int,
        activation: str,
        minibatch_features: int = 0,
    ) -> None:
        self.settings = settings
        self.rng = torch.Generator().manual_seed(settings.seed)
        self.G = _build(
            ToyGenerator,
            self.rng,
            z_dim=z_dim,
            x_dim=x_dim,
            hidden=hidden,
            depth=depth,
            activation=activation,
        )
        self.D = _build(
            ToyDiscriminator,
            self.rng,
            x_dim=x_dim,
            hidden=hidden,
            depth=depth,
            activation=activation,
            minibatch_features=minibatch_features,
        )
        # WGAN-GP's Adam settings (beta1 = 0) are Gulrajani et al.'s; the rest use DCGAN's beta1 = 0.5
        betas = (0.0, 0.9) if settings.loss == "wgan-gp" else (0.5, 0.999)
        # foreach: one kernel per step for all tensors, measurably faster than the CPU default loop
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=settings.lr_d, betas=betas, foreach=True)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=settings.lr_g, betas=betas, foreach=True)
        self.steps = 0
        self.last = {"d_loss": float("nan"), "g_loss": float("nan"), "g_grad": float("nan")}
        self.history = History()

    @abstractmethod
    def sample_data(self, n: int) -> torch.Tensor:
        """(n, x_dim) real samples, drawn from the session's generator."""

    @abstractmethod
    def sample_noise(self, n: int) -> torch.Tensor:
        """(n, z_dim) noise, drawn from the session's generator."""

    def _d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        if self.D.minibatch is None:
            # one pass over both batches: half the op calls, and op overhead dominates nets this small
            d_real, d_fake = self.D(torch.cat([real, fake])).split([len(real), len(fake)])
        else:
            # a minibatch layer must see the real and the fake batch apart: comparing the samples
            # of an all-fake batch with each other is how it spots a collapsed G
            d_real, d_fake = self.D(real), self.D(fake)
        if self.settings.loss == "wgan-gp":
            t = torch.rand(len(real), 1, generator=self.rng)
            mix = (t * real + (1 - t) * fake).requires_grad_(True)
            (grad,) = torch.autograd.grad(self.D(mix).sum(), mix, create_graph=True)
            penalty = ((grad.norm(dim=1) - 1) ** 2).mean()
            return d_fake.mean() - d_real.mean() + GP_WEIGHT * penalty
        # -[log D(x) + log(1 - D(G(z)))], written with logits for numerical safety
        return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()

    def _g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        d_fake = self.D(fake)
        if self.settings.loss == "wgan-gp":
            return -d_fake.mean()
        if self.settings.loss == "minimax":
            return -F.softplus(d_fake).mean()  # = mean log(1 - D(G(z))), which G minimises
        return F.softplus(-d_fake).mean()  # non-saturating: mean -log D(G(z))

    @staticmethod
    def _apply(loss: torch.Tensor, params: list[nn.Parameter], opt: torch.optim.Optimizer) -> tuple:
        # autograd.grad on this net's parameters only: no wasted gradients for the other player
        grads = torch.autograd.grad(loss, params)
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        opt.step()
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
        for _ in range(n):
            self.step()
        return self.last

    def _record(self, a: float, b: float) -> None:
        h = self.history
        if h.step and h.step[-1] == self.steps:
            return  # a snapshot twice at the same step (e.g. Pause then Start) adds no new row
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
    losses: dict[str, float]


def _noise_quantiles(noise: str, n: int) -> torch.Tensor:
    """Evenly spaced quantiles of the noise: G's density then comes out smooth and without
    sampling noise, and the same z's give the mapping lines a steady look from frame to frame."""
    u = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    z = torch.special.ndtri(u) if noise == "normal" else 2 * u - 1
    return z.float().unsqueeze(1)


class ToyGAN1D(ToyGAN):
    """The paper's figure: x ~ a 1-D distribution, z ~ N(0, 1) or U(-1, 1), G and D small tanh MLPs
    (tanh keeps G's density smooth, which ReLU's kinks would not)."""

    def __init__(self, settings: Settings1D) -> None:
        super().__init__(settings, x_dim=1, z_dim=1, hidden=32, depth=2, activation="tanh")
        self.data = DATA_1D[settings.distribution]
        self.grid = np.linspace(*X_RANGE_1D, GRID_POINTS_1D)
        self.dx = float(self.grid[1] - self.grid[0])
        self.p_data = self.data.pdf(self.grid)
        edges = (self.grid[0] - self.dx / 2, self.grid[-1] + self.dx / 2)
        self.data_tails = (float(self.data.cdf(edges[0])), float(1 - self.data.cdf(edges[1])))
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
            losses=dict(self.last),
        )


@dataclass(frozen=True)
class View2D:
    """What the 2-D plot shows at one moment."""

    step: int
    real: np.ndarray  # (n, 2)
    fake: np.ndarray  # (n, 2)
    heat: np.ndarray  # (H, W): D(x) in [0, 1], or the WGAN critic's raw value; row 0 is y = -extent
    extent: float
    centers: np.ndarray
    coverage: Coverage
    losses: dict[str, float]


class ToyGAN2D(ToyGAN):
    """Mode collapse you can see: a ring of 8 or a 5x5 grid of Gaussians; G maps 2-D Gaussian
    noise through a ReLU MLP. The remedy adds a minibatch-discrimination layer to D."""

    Z_DIM = 2

    def __init__(self, settings: Settings2D) -> None:
        mbd = 8 if settings.loss == "minibatch" else 0
        super().__init__(
            settings, x_dim=2, z_dim=self.Z_DIM, hidden=64, depth=2, activation="relu", minibatch_features=mbd
        )
        self.data = DATA_2D[settings.dataset]
        # the fixed eval inputs come from a second generator, so they cost the training RNG nothing
        eval_rng = torch.Generator().manual_seed(settings.seed + 1)
        self._z_eval = torch.randn(EVAL_SAMPLES_2D, self.Z_DIM, generator=eval_rng)
        self.real_eval = self.data.sample(EVAL_SAMPLES_2D, eval_rng).numpy()
        ticks = torch.linspace(-self.data.extent, self.data.extent, HEATMAP_SIZE)
        yy, xx = torch.meshgrid(ticks, ticks, indexing="ij")
        self._heat_points = torch.stack([xx.ravel(), yy.ravel()], 1)

    def sample_data(self, n: int) -> torch.Tensor:
        return self.data.sample(n, self.rng)

    def sample_noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.Z_DIM, generator=self.rng)

    @torch.no_grad()
    def snapshot(self) -> View2D:
        fake = self.G(self._z_eval).numpy()
        # with a minibatch layer D scores a point by its company: score the grid against a
        # training-sized batch of G's current samples, which is what D sees when G plays
        company = torch.from_numpy(fake[: self.settings.batch]) if self.D.minibatch is not None else None
        heat = self.D(self._heat_points, company)
        if self.settings.loss != "wgan-gp":
            heat = torch.sigmoid(heat)
        cov = mode_coverage(fake, self.data.centers, self.data.sigma)
        self._record(cov.modes, cov.high_quality)
        return View2D(
            step=self.steps,
            real=self.real_eval,
            fake=fake,
            heat=heat.view(HEATMAP_SIZE, HEATMAP_SIZE).numpy(),
            extent=self.data.extent,
            centers=self.data.centers,
            coverage=cov,
            losses=dict(self.last),
        )
