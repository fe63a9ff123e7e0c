"""The GAN Basics tab: watch the minimax game play out live, in 1-D (the original paper's figure)
and in 2-D (mode collapse on a ring or grid of Gaussians).

Each browser session trains its own toy GAN, kept in a `gr.State`; a click streams plot updates
from a generator endpoint (`toy_gan`, `toy_gan_2d`) until the run's step count, the step cap or
the time cap is reached, Pause is pressed, or the page is closed (Gradio then stops iterating the
generator). Start with the same settings continues the session's model; changed settings start
a new one, so the same seed and settings always replay the same run.
"""

from __future__ import annotations

import base64
import io
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr
import numpy as np
from gradio.components.plot import PlotData
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from PIL import Image

from gandemo.tasks import basics
from gandemo.ui.common import endpoint
from gandemo.validation import as_int

RUN_STEPS_MAX = 20_000  # steps one Start click may run
RUN_SECONDS_MAX = 120.0  # wall time one Start click may run
UPDATE_EVERY_MAX = 500
D_STAR_MIN_DENSITY = 0.01  # draw D* only where (p_data + p_g) / 2 exceeds this
STATE_TTL_S = 900  # a session idle this long loses its game (and frees its figure's memory)
CONCURRENCY = {"concurrency_limit": 4, "concurrency_id": "gan_basics"}  # runs in parallel, all users

_active_runs = 0  # runs iterating right now (the tests check that closing a page ends its run)
_active_lock = threading.Lock()


def active_runs() -> int:
    """How many training runs are streaming right now, over all sessions."""
    return _active_runs


class Session:
    """What one browser session keeps between clicks for one view: its GAN, its figure (a few MB,
    hence the State's time to live) and a lock, since a cancelled run may still be finishing its
    last chunk of steps when the next click arrives."""

    def __init__(self) -> None:
        self.gan: basics.ToyGAN | None = None
        self.figure: Figure1D | Figure2D | None = None  # drawn for self.gan, reused by the next click
        self.lock = threading.Lock()
        # Pause sets this: Gradio's cancel only stops the stream between chunks, and the running
        # chunk would otherwise train on past the step that Pause reports
        self.stop = threading.Event()


# --------------------------------------------------------------------------- figures


def _style_side(ax: Any, title: str) -> None:
    ax.set_title(title, fontsize=9, loc="left")
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)


def _grown(lo: float, hi: float, values: np.ndarray, log: bool = False) -> tuple[float, float] | None:
    """New y-limits when `values` leave [lo, hi], with headroom so that limits change rarely;
    None while they fit."""
    values = values[np.isfinite(values)]
    if log:
        values = values[values > 0]
    if not len(values):
        return None
    vmin, vmax = float(values.min()), float(values.max())
    if lo <= vmin and vmax <= hi:
        return None
    if log:
        return min(lo, vmin / 3), max(hi, vmax * 3)
    pad = 0.25 * max(vmax - vmin, 1e-3)
    return min(lo, vmin - pad), max(hi, vmax + pad)


class _Figure:
    """The main view on the left, three history panels on the right, drawn with blitting: the
    axes, ticks, labels and legends (most of matplotlib's time is text layout) are drawn once into
    a background, and each frame only restores it and draws the moving artists on top. A full
    redraw happens only when a history curve outgrows its panel's limits. A session keeps its
    figure between clicks (Step then costs one blitted frame), drawing under the session's lock."""

    def __init__(self, side_titles: tuple[str, str, str], x_end: int) -> None:
        self.fig = Figure(figsize=(10.5, 4.6), dpi=90)
        self.canvas = FigureCanvasAgg(self.fig)
        grid = self.fig.add_gridspec(
            3, 2, width_ratios=(1.75, 1), left=0.05, right=0.98, top=0.92, bottom=0.09, wspace=0.16, hspace=0.62
        )
        self.main = self.fig.add_subplot(grid[:, 0])
        self.side = [self.fig.add_subplot(grid[i, 1]) for i in range(3)]
        for ax, title in zip(self.side, side_titles, strict=True):
            _style_side(ax, title)
            ax.set_xlim(0, max(10, x_end))  # a run's last step is known: the x-axis rarely moves
        self.side[2].set_xlabel("step", fontsize=8)
        (self.d_loss,) = self.side[0].plot([], [], color="tab:blue", lw=1.2, label="D loss")
        (self.g_loss,) = self.side[0].plot([], [], color="tab:green", lw=1.2, label="G loss")
        self.side[0].legend(fontsize=7, loc="upper right")
        self.side[0].set_ylim(0, 1.5)
        self.title = self.main.set_title("", fontsize=10)
        self._background = None
        self._dirty = True  # limits changed: the background must be drawn again
        self.frames = 0
        self.full_redraws = 0

    def _animated(self) -> list[Any]:
        return [self.title, self.d_loss, self.g_loss]

    def reach(self, step: int) -> None:
        """Make room on the history panels' step axis up to `step` (with headroom, so that a
        series of Step clicks does not redraw every time)."""
        end = self.side[0].get_xlim()[1]
        if step > end:
            for ax in self.side:
                ax.set_xlim(0, max(step, 1.5 * end))
            self._dirty = True

    def _fit(self, ax: Any, values: np.ndarray, log: bool = False) -> None:
        new = _grown(*ax.get_ylim(), np.asarray(values, np.float64), log)
        if new is not None:
            ax.set_ylim(*new)
            self._dirty = True

    def _history(self, h: basics.History) -> None:
        self.d_loss.set_data(h.step, h.d_loss)
        self.g_loss.set_data(h.step, h.g_loss)
        self._fit(self.side[0], np.concatenate([h.d_loss, h.g_loss]))
        if h.step:
            self.reach(h.step[-1])

    def render(self) -> np.ndarray:
        """The figure as an RGB array (H, W, 3)."""
        artists = self._animated()
        if self._dirty or self._background is None:
            for a in artists:
                a.set_animated(True)  # left out of canvas.draw(), so the background is clean
            self.canvas.draw()
            self._background = self.canvas.copy_from_bbox(self.fig.bbox)
            self._dirty = False
            self.full_redraws += 1
        else:
            self.canvas.restore_region(self._background)
        for a in artists:
            self.fig.draw_artist(a)
        self.frames += 1
        return np.asarray(self.canvas.buffer_rgba())[..., :3]

    def plot_data(self) -> PlotData:
        """The frame as what gr.Plot shows: a PNG data URL, sent inline (no file per frame on disk)."""
        buf = io.BytesIO()
        # compress_level 1: a third of the default's encoding time for a slightly bigger file
        Image.fromarray(self.render()).save(buf, format="PNG", compress_level=1)
        return PlotData(type="matplotlib", plot="data:image/png;base64," + base64.b64encode(buf.getvalue()).decode())


class Figure1D(_Figure):
    """The paper's Figure 1, live: p_data (black dots), p_g (green), D (blue dashes), D* (purple)
    over x, the z -> x mapping below, and the losses, G's gradient and JSD / |D - D*| over time."""

    Z_LINE, X_LINE = -0.42, -0.08  # heights of the z axis and the x axis of the mapping drawing

    def __init__(self, gan: basics.ToyGAN1D, x_end: int) -> None:
        super().__init__(("losses", "‖∇G‖ (log scale)", "JSD (bits) and mean |D − D*|"), x_end)
        ax, x = self.main, gan.grid
        ax.set_xlim(x[0], x[-1])
        ax.set_ylim(-0.5, max(1.1, 1.35 * float(gan.p_data.max())))
        ax.axhline(0.5, color="0.6", lw=0.8, zorder=0)
        ax.axhline(self.X_LINE, color="0.3", lw=0.8)
        ax.axhline(self.Z_LINE, color="0.3", lw=0.8)
        ax.text(x[0] + 0.1, self.Z_LINE + 0.03, "z", fontsize=9)
        ax.text(x[0] + 0.1, self.X_LINE + 0.03, "x = G(z)", fontsize=9)
        ax.plot(x, gan.p_data, ":", color="black", lw=2, label="data density")
        (self.p_g,) = ax.plot(x, np.zeros_like(x), color="tab:green", lw=2, label="G's density")
        (self.d,) = ax.plot(x, np.zeros_like(x), "--", color="tab:blue", lw=2, label="D(x)")
        (self.d_star,) = ax.plot(
            x, np.zeros_like(x), color="tab:purple", lw=1, alpha=0.7, label="D*(x) = p_data / (p_data + p_g)"
        )
        self.mapping = LineCollection([], colors="0.35", linewidths=0.8)
        ax.add_collection(self.mapping)
        ax.legend(fontsize=8, loc="upper left", ncols=2)
        ax.tick_params(labelsize=8)
        ax.set_yticks([0, 0.5, 1])
        (self.g_grad,) = self.side[1].semilogy([], [], color="tab:green", lw=1.2)
        self.side[1].set_ylim(1e-3, 10)
        (self.jsd,) = self.side[2].plot([], [], color="black", lw=1.2, label="JSD")
        (self.gap,) = self.side[2].plot([], [], color="tab:purple", lw=1.2, label="|D − D*|")
        self.side[2].set_ylim(0, 1.02)  # both live in [0, 1]: fixed limits, no redraws
        self.side[2].legend(fontsize=7, loc="upper right")

    def _animated(self) -> list[Any]:
        return [*super()._animated(), self.p_g, self.d, self.d_star, self.mapping, self.g_grad, self.jsd, self.gap]

    def draw(self, view: basics.View1D, history: basics.History) -> PlotData:
        """This moment as a PNG for gr.Plot."""
        self.p_g.set_ydata(view.p_g)
        self.d.set_ydata(view.d)
        # D* is a ratio of two densities: where neither has mass it is 0/0 noise, so draw it only
        # where samples of either kind actually fall
        mass = (view.p_data + view.p_g) / 2
        self.d_star.set_ydata(np.where(mass > D_STAR_MIN_DENSITY, view.d_star, np.nan))
        self.mapping.set_segments(
            [((z, self.Z_LINE), (x, self.X_LINE)) for z, x in zip(view.z_lines, view.x_lines, strict=True)]
        )
        self.title.set_text(f"step {view.step}   JSD {view.jsd_bits:.3f} bits   mean |D − D*| {view.gap:.3f}")
        grads = np.maximum(np.asarray(history.g_grad, np.float64), 1e-12)
        self.g_grad.set_data(history.step, grads)
        self.jsd.set_data(history.step, history.metric_a)
        self.gap.set_data(history.step, history.metric_b)
        self._history(history)
        self._fit(self.side[1], grads, log=True)
        return self.plot_data()


class Figure2D(_Figure):
    """Real points (black) and G's points (orange) over D's verdict as a heatmap, with the losses,
    the modes covered and the high-quality share over time."""

    def __init__(self, gan: basics.ToyGAN2D, x_end: int) -> None:
        super().__init__(("losses", "modes covered", "high-quality samples (%)"), x_end)
        ax, e = self.main, gan.data.extent
        self.wgan = gan.settings.loss == "wgan-gp"
        self.heat = ax.imshow(
            np.zeros((2, 2)),
            extent=(-e, e, -e, e),
            origin="lower",
            cmap="RdBu",
            vmin=0,
            vmax=1,
            interpolation="bilinear",
            alpha=0.75,
        )
        cbar = self.fig.colorbar(self.heat, ax=ax, fraction=0.04, pad=0.01)
        cbar.ax.tick_params(labelsize=7)
        if self.wgan:  # the critic's scale drifts: show it rescaled to [0, 1] each frame
            cbar.set_ticks([0, 1], labels=["low", "high"])
        cbar.set_label(
            "critic score (high: real side)" if self.wgan else "D(x): blue says real, red says fake", fontsize=8
        )
        ax.scatter(*gan.real_eval.numpy().T, s=4, c="black", alpha=0.5, label="real", linewidths=0)
        self.fake = ax.scatter([], [], s=5, c="tab:orange", alpha=0.8, label="G(z)", linewidths=0)
        ax.scatter(*gan.data.centers.T, s=40, marker="+", c="black", linewidths=0.8)
        ax.set_xlim(-e, e)
        ax.set_ylim(-e, e)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=8)
        for handle in ax.legend(fontsize=8, loc="upper right", markerscale=3).legend_handles:
            handle.set_alpha(1)  # the points are translucent on the plot, not in the key
        total = len(gan.data.centers)
        (self.modes,) = self.side[1].plot([], [], color="tab:orange", lw=1.2, drawstyle="steps-post")
        self.side[1].axhline(total, color="0.5", lw=0.8, ls=":")
        self.side[1].set_ylim(-0.3, total + 0.7)
        (self.hq,) = self.side[2].plot([], [], color="tab:orange", lw=1.2)
        self.side[2].set_ylim(-3, 103)

    def _animated(self) -> list[Any]:
        return [*super()._animated(), self.heat, self.fake, self.modes, self.hq]

    def draw(self, view: basics.View2D, history: basics.History) -> PlotData:
        """This moment as a PNG for gr.Plot."""
        heat = view.heat
        if self.wgan:
            lo, hi = float(heat.min()), float(heat.max())
            heat = (heat - lo) / (hi - lo) if hi > lo else np.full_like(heat, 0.5)
        self.heat.set_data(heat)
        self.fake.set_offsets(view.fake)
        cov = view.coverage
        self.title.set_text(
            f"step {view.step}   modes {cov.modes}/{cov.total_modes}   high quality {100 * cov.high_quality:.0f}%"
        )
        self.modes.set_data(history.step, history.metric_a)
        self.hq.set_data(history.step, 100 * np.asarray(history.metric_b))
        self._history(history)
        return self.plot_data()


# --------------------------------------------------------------------------- endpoints


@endpoint
def _checked_1d(*raw: Any) -> basics.Settings1D:
    return basics.settings_1d(*raw)


@endpoint
def _checked_2d(*raw: Any) -> basics.Settings2D:
    return basics.settings_2d(*raw)


@endpoint
def _checked_run(steps: Any, update_every: Any) -> tuple[int, int]:
    steps = as_int(steps, "steps", 1, RUN_STEPS_MAX)
    return steps, as_int(update_every, "steps per plot update", 1, UPDATE_EVERY_MAX)


def _numbers_1d(gan: basics.ToyGAN1D, view: basics.View1D, status: str, rate: float) -> dict[str, Any]:
    lo_hi = gan.data.support()
    on_support = np.any([(view.x >= lo) & (view.x <= hi) for lo, hi in lo_hi], axis=0)
    return {
        "status": status,
        "step": view.step,
        "d_loss": view.losses["d_loss"],
        "g_loss": view.losses["g_loss"],
        "g_grad_norm": view.losses["g_grad"],
        "mean_d_of_g": view.d_of_g,
        "jsd_bits": view.jsd_bits,
        "mean_abs_d_minus_d_star": view.gap,
        "max_abs_d_minus_half_on_data": float(np.abs(view.d[on_support] - 0.5).max()),
        "g_mean": view.g_mean,
        "g_std": view.g_std,
        "data_mean": gan.data.mean,
        "data_std": gan.data.std,
        "steps_per_second": rate,
    }


def _numbers_2d(_gan: basics.ToyGAN2D, view: basics.View2D, status: str, rate: float) -> dict[str, Any]:
    return {
        "status": status,
        "step": view.step,
        "d_loss": view.losses["d_loss"],
        "g_loss": view.losses["g_loss"],
        "g_grad_norm": view.losses["g_grad"],
        "modes_covered": view.coverage.modes,
        "modes_total": view.coverage.total_modes,
        "high_quality_percent": 100 * view.coverage.high_quality,
        "steps_per_second": rate,
    }


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "–" if not np.isfinite(v) else f"{v:.4g}"
    return str(v)


NUMBER_LABELS = {
    "step": "step",
    "d_loss": "D loss",
    "g_loss": "G loss",
    "g_grad_norm": "‖∇G‖",
    "mean_d_of_g": "mean D(G(z))",
    "jsd_bits": "JSD(p_data ‖ p_g), bits",
    "mean_abs_d_minus_d_star": "mean |D − D*|",
    "max_abs_d_minus_half_on_data": "max |D − ½| where the data lives",
    "g_mean": "G's mean",
    "g_std": "G's std",
    "data_mean": "data mean",
    "data_std": "data std",
    "modes_covered": "modes covered",
    "modes_total": "modes in the data",
    "high_quality_percent": "high-quality samples (%)",
    "steps_per_second": "steps / s (this run)",
}


def _cell(text: str) -> str:
    return text.replace("|", r"\|")  # a bare | would end the table cell


def numbers_markdown(numbers: dict[str, Any]) -> str:
    """The numbers beside the plot: the run's status, then a table two measures wide (compact
    enough to sit under the plot without scrolling)."""
    cells = [f"{_cell(label)} | {_fmt(numbers[key])}" for key, label in NUMBER_LABELS.items() if key in numbers]
    if len(cells) % 2:
        cells.append(" | ")
    rows = [f"| {cells[i]} | {cells[i + 1]} |" for i in range(0, len(cells), 2)]
    return f"**{numbers['status']}**\n\n| measure | value | measure | value |\n|---|---|---|---|\n" + "\n".join(rows)


Frame = tuple[PlotData, str, dict[str, Any], Session]


Numbers = Callable[[Any, Any, str, float], dict[str, Any]]


def _frame(gan: Any, fig: Any, numbers: Numbers, status: str, rate: float) -> tuple[PlotData, str, dict[str, Any]]:
    view = gan.snapshot()
    out = numbers(gan, view, status, rate)
    return fig.draw(view, gan.history), numbers_markdown(out), out


def _stream(
    state: Any,
    make: Callable[[Any], basics.ToyGAN],
    settings: basics.Settings1D | basics.Settings2D,
    steps: int,
    update_every: int,
    figure_cls: Callable[[Any, int], Any],
    numbers: Numbers,
) -> Iterator[Frame]:
    """Train `steps` steps in chunks of `update_every`, yielding (plot, markdown, numbers, state)
    after each chunk. Training, snapshot and drawing happen under the session's lock: a cancelled
    run of the same session may still be finishing a chunk when the next click starts."""
    global _active_runs
    session = state if isinstance(state, Session) else Session()
    with session.lock:  # waits for a cancelled run's chunk, which a set `stop` ends at its next step
        session.stop.clear()
        if session.gan is None or session.gan.settings != settings:
            session.gan = make(settings)  # new settings, new game: the same settings replay exactly
            session.figure = figure_cls(session.gan, steps)
        gan, fig = session.gan, session.figure
        fig.reach(gan.steps + steps)
        frame = _frame(gan, fig, numbers, f"Running {steps} steps from step {gan.steps}…", float("nan"))
    with _active_lock:
        _active_runs += 1
    try:
        yield (*frame, session)
        start, done, busy = time.monotonic(), 0, 0.0

        def rate() -> float:
            return done / busy if busy > 0 else float("nan")

        while done < steps:
            if time.monotonic() - start > RUN_SECONDS_MAX:
                status = f"Stopped at the time cap ({RUN_SECONDS_MAX:.0f} s) after {done} steps; Start goes on."
                with session.lock:
                    frame = _frame(gan, fig, numbers, status, rate())
                yield (*frame, session)
                return
            with session.lock:
                if session.gan is not gan:
                    return  # a newer click of this session started another game: leave it alone
                t0 = time.perf_counter()
                for _ in range(min(update_every, steps - done)):
                    if session.stop.is_set():
                        break
                    gan.step()
                    done += 1
                busy += time.perf_counter() - t0
                paused = session.stop.is_set()
                if paused:  # the same words as Pause's own output, whichever reaches the page last
                    status = _paused_status(gan)
                elif done < steps:
                    status = "Running…"
                else:
                    status = f"Done: {done} steps this run; Start goes on from here."
                frame = _frame(gan, fig, numbers, status, rate())
            yield (*frame, session)
            if paused:
                return
    finally:
        with _active_lock:
            _active_runs -= 1


def toy_gan(
    distribution: str,
    noise: str,
    loss: str,
    lr_d: float,
    lr_g: float,
    k: int,
    batch: int,
    seed: int,
    steps: int,
    update_every: int,
    state: Any = None,
) -> Iterator[Frame]:
    """Train the session's 1-D GAN for `steps` steps, streaming (plot, numbers as Markdown,
    numbers as a dict, session state) every `update_every` steps."""
    settings = _checked_1d(distribution, noise, loss, lr_d, lr_g, k, batch, seed)
    steps, update_every = _checked_run(steps, update_every)
    yield from _stream(state, basics.ToyGAN1D, settings, steps, update_every, Figure1D, _numbers_1d)


def toy_gan_2d(
    dataset: str,
    loss: str,
    lr_d: float,
    lr_g: float,
    k: int,
    batch: int,
    seed: int,
    steps: int,
    update_every: int,
    state: Any = None,
) -> Iterator[Frame]:
    """Train the session's 2-D GAN for `steps` steps, streaming (plot, numbers as Markdown,
    numbers as a dict, session state) every `update_every` steps."""
    settings = _checked_2d(dataset, loss, lr_d, lr_g, k, batch, seed)
    steps, update_every = _checked_run(steps, update_every)
    yield from _stream(state, basics.ToyGAN2D, settings, steps, update_every, Figure2D, _numbers_2d)


def _reset(_state: Any) -> tuple[None, None, str, None]:
    # the cancelled run may finish its chunk on the old session, which nothing shows any more
    return None, None, "Cleared: the next Start begins a new game.", None


def _k_for_loss(loss: str) -> int:
    return 5 if loss == "wgan-gp" else 1


def _paused_status(gan: basics.ToyGAN) -> str:
    return f"Paused at step {gan.steps}; Start goes on from here."


def _pause(numbers: Numbers) -> Callable[[Any], tuple[Any, str, Any]]:
    """Pause's handler for a view: stop the session's run at its next step and show exactly where
    the game stands (a cancelled stream drops the frame it was about to send)."""

    def paused(state: Any) -> tuple[Any, str, Any]:
        if not isinstance(state, Session) or state.gan is None:
            return gr.skip(), "Nothing to pause: press Start.", gr.skip()
        state.stop.set()
        with state.lock:  # a chunk in progress ends at its next step: then the state is final
            return _frame(state.gan, state.figure, numbers, _paused_status(state.gan), float("nan"))

    return paused


# --------------------------------------------------------------------------- the tab

HOW_IT_WORKS = (
    r"""
**The game.** A generator $G$ turns noise $z$ into samples $x = G(z)$; a discriminator $D$ outputs
the probability that $x$ is real. They play (Goodfellow et al., 2014)

$$\min_G \max_D \; V(D, G) = \mathbb{E}_{x \sim p_\text{data}}[\log D(x)] + \mathbb{E}_{z \sim p_z}[\log(1 - D(G(z)))]$$

Each step here is $k$ gradient steps of $D$ on this objective, then one step of $G$.

**The best D for a fixed G.** Maximising $p_\text{data}(x) \log D(x) + p_g(x) \log(1 - D(x))$ at each
$x$ gives

$$D^*(x) = \frac{p_\text{data}(x)}{p_\text{data}(x) + p_g(x)}$$

the purple curve, computed from the two densities. The blue dashed $D$ chases it; **mean |D − D\*|**
(weighted by where the samples are) says how closely. It never reaches 0 while G moves, because D
only gets $k$ steps towards $D^*$ between G's moves.

**What G is then minimising.** With $D = D^*$ the game's value is
$V = -\log 4 + 2\,\mathrm{JSD}(p_\text{data} \,\|\, p_g)$: a distance between the two distributions,
smallest exactly when $p_g = p_\text{data}$. That is the **Nash equilibrium**: G recovers the data
distribution and $D^* = \tfrac12$ everywhere, since D can no longer tell real from fake. Watch the
green curve settle on the black one, the blue dashes flatten at ½ and the JSD go to 0 (here in
bits: 0 means the same distribution, 1 means no overlap at all).

**Why the minimax G-loss saturates.** Early on G is poor and D rejects its samples with
confidence: $D(G(z)) \approx 0$. The gradient of $\log(1 - D(G(z)))$ with respect to D's logit is
$-D(G(z))$, which vanishes there: G learns least when it is most wrong. The **non-saturating**
loss $-\log D(G(z))$ has gradient $-(1 - D(G(z))) \approx -1$ there, with the same fixed point. To see
it, take the bimodal data (G starts between its two modes, where there is no data) and $k = 5$, so
that D gets confident before G has moved, and run both G losses with the same seed: within about 30
steps **mean D(G(z))** falls to around 0.1, and **‖∇G‖** is then several times (often ten times)
smaller with the minimax loss. Adam divides each step by the gradient's recent size, which is why G
still gets going here; with plain gradient descent its steps would shrink as much.

**Two dimensions: mode collapse.** G maps one connected cloud of noise onto the plane and is
pushed wherever D currently says "real". With the standard loss it often gathers its samples on one
or two modes; D then learns those are fake and G hops to others, so **modes covered** stays low and
jumps around. A sample counts as *high quality* within 3σ of its nearest mode; a mode counts as
*covered* when it holds at least 20% of its fair share of high-quality samples (the VEEGAN, Unrolled
GAN and PacGAN measures). The remedies:
- **PacGAN** (Lin et al., 2018): D judges two samples at once. Two samples of a collapsed G look
  alike, while two real ones usually come from different modes, so collapse is easy for D to
  punish; same seed, many more modes.
- **WGAN-GP** (Gulrajani et al., 2017): D becomes a critic estimating the Wasserstein distance,
  whose gradient stays informative even where the two distributions do not overlap; a gradient
  penalty keeps the critic 1-Lipschitz. It needs several critic steps per G step ($k = 5$, set when
  you pick it), so a step costs about five times more; it too spreads over the ring.

The **5 × 5 grid** is much harder for nets this small: within a few thousand steps neither loss puts
many samples within 3σ of the grid's modes, so the counts stay near 0; the scatter still shows the
standard GAN sitting on a few modes and PacGAN spreading wider.

**Pros and cons of GANs** (the paper's own list), and where the plots show them:
- ✔ No Markov chains and no inference during learning: just backpropagation through two nets
  (a step here is a few milliseconds).
- ✔ Sampling is one pass through G: the lines from z to x are the whole sampler.
- ✘ No explicit density: $p_g$ exists only through samples. The green curve is a kernel density
  estimate from {samples:,} samples of G; in 2-D all we can do is count modes.
- ✘ Training is a game, not a minimisation, and must keep D and G in balance: with equal learning
  rates the 1-D G circles the data's mean instead of settling (try D and G rates of 0.001).
- ✘ Mode collapse (the paper's "Helvetica scenario"): G maps many z to the same x, as the 2-D
  standard GAN shows.

**Sessions.** Each browser tab trains its own model; a run stops after its steps, after
{steps:,} steps or {seconds:.0f} s, on Pause, or when the tab is closed. Start with unchanged
settings goes on from where the last run stopped; any change starts a new game, and the same seed
and settings always replay the same game. A game left idle for {idle} minutes is forgotten.
""".replace("{steps:,}", f"{RUN_STEPS_MAX:,}")
    .replace("{seconds:.0f}", f"{RUN_SECONDS_MAX:.0f}")
    .replace("{samples:,}", f"{basics.EVAL_SAMPLES_1D:,}")
    .replace("{idle}", f"{STATE_TTL_S // 60}")
)

CAPTION_1D = (
    "**What to watch:** the green density (G) moving onto the dotted black one (data), the blue "
    "dashes (D) flattening to ½ where the data lives — the equilibrium — and the JSD falling to 0. "
    "For the vanishing gradient: bimodal data, k = 5, and compare the two G losses on ‖∇G‖."
)
CAPTION_2D = (
    "**What to watch:** with the *standard* loss G's orange points gather on a mode or two and hop "
    "around; switch to *PacGAN*, keep the seed, press Start, and the same start spreads over the ring. "
    "The heatmap is D's verdict: blue where it says real, red where it says fake."
)
LATEX = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]


def _choices(names: tuple[str, ...], titles: dict[str, str]) -> list[tuple[str, str]]:
    return [(titles.get(n, n), n) for n in names]


DATA_TITLES = {
    "gaussian": "Gaussian N(1, 0.5²)",
    "bimodal": "bimodal: ½ N(−1.5, 0.35²) + ½ N(1.5, 0.35²)",
    "uniform": "uniform on [−0.5, 2]",
    "ring": "ring of 8 Gaussians (σ = 0.05)",
    "grid": "5 × 5 grid of Gaussians (σ = 0.05)",
}


def _optimiser_controls(defaults: basics.Settings1D | basics.Settings2D) -> list[gr.components.Component]:
    with gr.Row():
        lr_d = gr.Number(defaults.lr_d, label="D learning rate", minimum=basics.LR_MIN, maximum=basics.LR_MAX)
        lr_g = gr.Number(defaults.lr_g, label="G learning rate", minimum=basics.LR_MIN, maximum=basics.LR_MAX)
    k = gr.Slider(basics.K_MIN, basics.K_MAX, value=defaults.k, step=1, label="k: D steps per G step")
    batch = gr.Slider(basics.BATCH_MIN, basics.BATCH_MAX, value=defaults.batch, step=8, label="Batch size")
    seed = gr.Number(defaults.seed, label="Seed", minimum=0, maximum=basics.SEED_MAX, precision=0)
    return [lr_d, lr_g, k, batch, seed]


def _run_controls(steps: int, every: int) -> tuple[gr.Slider, gr.Slider, list[gr.Button]]:
    steps_c = gr.Slider(1, RUN_STEPS_MAX, value=steps, step=1, label="Steps per Start")
    every_c = gr.Slider(1, UPDATE_EVERY_MAX, value=every, step=1, label="Steps per plot update")
    with gr.Row():
        buttons = [
            gr.Button("Start", variant="primary", min_width=60),
            gr.Button("Pause", min_width=60),
            gr.Button("Step", min_width=60),
            gr.Button("Reset", min_width=60),
        ]
    return steps_c, every_c, buttons


def _wire(
    fn: Any,
    numbers_fn: Numbers,
    api_name: str,
    settings_in: list[gr.components.Component],
    run_in: list[gr.components.Component],
    buttons: list[gr.Button],
    plot: gr.Plot,
    md: gr.Markdown,
    numbers: gr.JSON,
    state: gr.State,
) -> None:
    start, pause, step, reset = buttons
    outputs = [plot, md, numbers, state]

    def one_step(*args: Any) -> Iterator[Frame]:
        *settings, state_value = args
        yield from fn(*settings, 1, 1, state_value)

    # preprocess=False: the raw values reach the task's own checks, so every bad value gets the
    # same plain message (Gradio's own conversion would fail first, with a generic one)
    common = {"preprocess": False, "show_progress": "minimal", **CONCURRENCY}
    run = start.click(fn, [*settings_in, *run_in, state], outputs, api_name=api_name, **common)
    stepped = step.click(
        one_step, [*settings_in, state], outputs, cancels=[run], api_visibility="undocumented", **common
    )
    instant = {"cancels": [run, stepped], "api_visibility": "undocumented", "concurrency_limit": None}
    pause.click(_pause(numbers_fn), state, [plot, md, numbers], **instant)
    reset.click(_reset, state, [plot, numbers, md, state], **instant)


def build() -> None:
    """The GAN Basics tab body: the 1-D view, then the 2-D view, then "How it works"."""
    gr.Markdown(
        "Why GANs work and how they fail, on toy data small enough to train live in your browser "
        "session. Each click of **Start** trains your own model and streams the picture as it learns."
    )
    d1 = basics.Settings1D()
    gr.Markdown("### 1-D: the original paper's figure, alive\n" + CAPTION_1D)
    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            dist = gr.Dropdown(
                _choices(basics.DISTRIBUTIONS_1D, DATA_TITLES), value=d1.distribution, label="Data distribution"
            )
            noise = gr.Radio(
                _choices(basics.NOISES, {"normal": "N(0, 1)", "uniform": "U(−1, 1)"}), value=d1.noise, label="Noise z"
            )
            loss = gr.Radio(_choices(basics.LOSSES_1D, basics.LOSS_TITLES), value=d1.loss, label="G loss")
            opt1 = _optimiser_controls(d1)
            steps1, every1, buttons1 = _run_controls(3000, 20)
        with gr.Column(scale=3):
            plot1 = gr.Plot(label="1-D GAN")
            with gr.Row():
                with gr.Column(scale=2):
                    md1 = gr.Markdown("Press **Start**.")
                with gr.Column(scale=1), gr.Accordion("Numbers as JSON (what the API returns)", open=False):
                    json1 = gr.JSON(label="numbers")
    state1 = gr.State(None, time_to_live=STATE_TTL_S)

    d2 = basics.Settings2D()
    gr.Markdown("### 2-D: mode collapse you can see\n" + CAPTION_2D)
    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            dataset = gr.Dropdown(_choices(basics.DATASETS_2D, DATA_TITLES), value=d2.dataset, label="Data")
            loss2 = gr.Radio(_choices(basics.LOSSES_2D, basics.LOSS_TITLES), value=d2.loss, label="Loss")
            opt2 = _optimiser_controls(d2)
            steps2, every2, buttons2 = _run_controls(4000, 25)
        with gr.Column(scale=3):
            plot2 = gr.Plot(label="2-D GAN")
            with gr.Row():
                with gr.Column(scale=2):
                    md2 = gr.Markdown("Press **Start**.")
                with gr.Column(scale=1), gr.Accordion("Numbers as JSON (what the API returns)", open=False):
                    json2 = gr.JSON(label="numbers")
    state2 = gr.State(None, time_to_live=STATE_TTL_S)

    with gr.Accordion("How it works", open=False):
        gr.Markdown(HOW_IT_WORKS, latex_delimiters=LATEX)

    _wire(
        toy_gan,
        _numbers_1d,
        "toy_gan",
        [dist, noise, loss, *opt1],
        [steps1, every1],
        buttons1,
        plot1,
        md1,
        json1,
        state1,
    )
    # WGAN-GP's critic needs several steps per G step (Gulrajani et al. use 5); the others do with 1
    loss2.change(_k_for_loss, loss2, opt2[2], api_visibility="private", queue=False)
    _wire(
        toy_gan_2d,
        _numbers_2d,
        "toy_gan_2d",
        [dataset, loss2, *opt2],
        [steps2, every2],
        buttons2,
        plot2,
        md2,
        json2,
        state2,
    )
