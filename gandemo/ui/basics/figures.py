"""The GAN Basics figures: one matplotlib figure per view (1-D and 2-D), drawn with blitting and
sent to gr.Plot as a PNG. Its one job is drawing a toy GAN's moment; it knows nothing of sessions.
A figure is built once and `retarget`ed to each new game, so the app can reuse a few figures rather
than build one per game (each is ~7 MB and thousands of small objects)."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from gradio.components.plot import PlotData
from PIL import Image

from gandemo import plotting
from gandemo.tasks import basics

D_STAR_MIN_DENSITY = 0.01  # draw D* only where (p_data + p_g) / 2 exceeds this


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
    figure between clicks (Step then costs one blitted frame), drawing under the session's lock.

    The artists are made once, in `__init__`; everything that depends on the game is set by
    `retarget`, which `__init__` calls too, so a reused figure draws exactly as a new one would."""

    def __init__(self, side_titles: tuple[str, str, str]) -> None:
        # matplotlib is imported by the first figure, not with the app: importing it is ~1 s of the
        # app's cold start, and only a GAN Basics click needs it
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.fig = Figure(figsize=(10.5, 4.6), dpi=90)
        self.canvas = FigureCanvasAgg(self.fig)
        grid = self.fig.add_gridspec(
            3, 2, width_ratios=(1.75, 1), left=0.05, right=0.98, top=0.92, bottom=0.09, wspace=0.16, hspace=0.62
        )
        self.main = self.fig.add_subplot(grid[:, 0])
        self.side = [self.fig.add_subplot(grid[i, 1]) for i in range(3)]
        for ax, title in zip(self.side, side_titles, strict=True):
            _style_side(ax, title)
        self.side[2].set_xlabel("step", fontsize=8)
        (self.d_loss,) = self.side[0].plot([], [], color="tab:blue", lw=1.2, label="D loss")
        (self.g_loss,) = self.side[0].plot([], [], color="tab:green", lw=1.2, label="G loss")
        self.loss_key = self.side[0].legend(fontsize=7, loc="upper right")
        self.title = self.main.set_title("", fontsize=10)
        self._background = None

    def retarget(self, gan: Any, x_end: int) -> None:
        """Show a new game from its start: no history, the first limits, the step axis up to `x_end`
        (a run's last step is known, so the axis rarely moves)."""
        for ax in self.side:
            ax.set_xlim(0, max(10, x_end))
        self.side[0].set_ylim(0, 1.5)
        for line in (self.d_loss, self.g_loss):
            line.set_data([], [])
        self.title.set_text("")
        self._background = None
        self._key_pixels: list[Any] = []
        self._dirty = True  # limits changed: the background must be drawn again
        self.frames = 0
        self.full_redraws = 0

    def _animated(self) -> list[Any]:
        """The artists drawn on every frame, in this order."""
        return [self.title, self.d_loss, self.g_loss]

    def _keys(self) -> list[Any]:
        """The legends, pasted back over each frame as the full redraw drew them (a copy of their
        pixels: drawing them again would double a frame's time), so that no moving line crosses them."""
        return [self.loss_key]

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
            renderer = self.canvas.get_renderer()
            self._key_pixels = [self.canvas.copy_from_bbox(k.get_window_extent(renderer)) for k in self._keys()]
            self._dirty = False
            self.full_redraws += 1
        else:
            self.canvas.restore_region(self._background)
        for a in artists:
            self.fig.draw_artist(a)
        for pixels in self._key_pixels:
            self.canvas.restore_region(pixels)
        self.frames += 1
        return np.asarray(self.canvas.buffer_rgba())[..., :3]

    def plot_data(self) -> PlotData:
        """The frame as what gr.Plot shows: a PNG data URL, sent inline (no file per frame on disk)."""
        with plotting.LOCK:  # matplotlib's fonts are shared by every thread (gandemo.plotting)
            frame = Image.fromarray(self.render())
        buf = io.BytesIO()
        # compress_level 1: a third of the default's encoding time for a slightly bigger file
        frame.save(buf, format="PNG", compress_level=1)
        return PlotData(type="matplotlib", plot="data:image/png;base64," + base64.b64encode(buf.getvalue()).decode())


class Figure1D(_Figure):
    """The paper's Figure 1, live: p_data (black dots), p_g (green), D (blue dashes), D* (purple)
    over x, the z -> x mapping below, and the losses, G's gradient and JSD / |D - D*| over time."""

    Z_LINE, X_LINE = -0.42, -0.08  # heights of the z axis and the x axis of the mapping drawing

    def __init__(self, gan: basics.ToyGAN1D, x_end: int) -> None:
        super().__init__(("losses", "‖∇G‖ (log scale)", "JSD (bits) and mean |D − D*|"))
        ax = self.main
        ax.axhline(0.5, color="0.6", lw=0.8, zorder=0)
        ax.axhline(self.X_LINE, color="0.3", lw=0.8)
        ax.axhline(self.Z_LINE, color="0.3", lw=0.8)
        self.z_label = ax.text(0, self.Z_LINE + 0.03, "z", fontsize=9)
        self.x_label = ax.text(0, self.X_LINE + 0.03, "x = G(z)", fontsize=9)
        (self.p_data,) = ax.plot([], [], ":", color="black", lw=2, label="data density")
        (self.p_g,) = ax.plot([], [], color="tab:green", lw=2, label="G's density")
        (self.d,) = ax.plot([], [], "--", color="tab:blue", lw=2, label="D(x)")
        (self.d_star,) = ax.plot([], [], color="tab:purple", lw=1, alpha=0.7, label="D*(x) = p_data / (p_data + p_g)")
        from matplotlib.collections import LineCollection

        self.mapping = LineCollection([], colors="0.35", linewidths=0.8)
        ax.add_collection(self.mapping)
        self.key = ax.legend(fontsize=8, loc="upper left", ncols=2)
        ax.tick_params(labelsize=8)
        ax.set_yticks([0, 0.5, 1])
        (self.g_grad,) = self.side[1].semilogy([], [], color="tab:green", lw=1.2)
        (self.jsd,) = self.side[2].plot([], [], color="black", lw=1.2, label="JSD")
        (self.gap,) = self.side[2].plot([], [], color="tab:purple", lw=1.2, label="|D − D*|")
        self.side[2].set_ylim(0, 1.02)  # both live in [0, 1]: fixed limits, no redraws
        self.metric_key = self.side[2].legend(fontsize=7, loc="upper right")
        self.retarget(gan, x_end)

    def retarget(self, gan: basics.ToyGAN1D, x_end: int) -> None:
        """Show `gan` from its start: its data's density over its grid, nothing of G or D yet."""
        super().retarget(gan, x_end)
        x = gan.grid
        self.main.set_xlim(x[0], x[-1])
        self.main.set_ylim(-0.5, max(1.1, 1.35 * float(gan.p_data.max())))
        self.z_label.set_x(x[0] + 0.1)
        self.x_label.set_x(x[0] + 0.1)
        self.p_data.set_data(x, gan.p_data)
        for line in (self.p_g, self.d, self.d_star):
            line.set_data(x, np.zeros_like(x))
        self.mapping.set_segments([])
        for line in (self.g_grad, self.jsd, self.gap):
            line.set_data([], [])
        self.side[1].set_ylim(1e-3, 10)

    def _animated(self) -> list[Any]:
        return [*super()._animated(), self.p_g, self.d, self.d_star, self.mapping, self.g_grad, self.jsd, self.gap]

    def _keys(self) -> list[Any]:
        return [*super()._keys(), self.key, self.metric_key]

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

    D_TICKS = (0, 0.2, 0.4, 0.6, 0.8, 1)

    def __init__(self, gan: basics.ToyGAN2D, x_end: int) -> None:
        super().__init__(("losses", "modes covered", "high-quality samples (%)"))
        ax = self.main
        self.heat = ax.imshow(
            np.zeros((2, 2)), origin="lower", cmap="RdBu", vmin=0, vmax=1, interpolation="bilinear", alpha=0.75
        )
        self.colorbar = self.fig.colorbar(self.heat, ax=ax, fraction=0.04, pad=0.01)
        self.colorbar.ax.tick_params(labelsize=7)
        self.real = ax.scatter([], [], s=4, c="black", alpha=0.5, label="real", linewidths=0)
        self.fake = ax.scatter([], [], s=5, c="tab:orange", alpha=0.8, label="G(z)", linewidths=0)
        self.centers = ax.scatter([], [], s=40, marker="+", c="black", linewidths=0.8)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=8)
        # the key is made of plain markers: the scatters are translucent, and empty until a game is shown
        from matplotlib.lines import Line2D

        key = [
            Line2D([], [], ls="", marker="o", ms=5, color=c, label=t)
            for c, t in (("black", "real"), ("tab:orange", "G(z)"))
        ]
        self.key = ax.legend(handles=key, fontsize=8, loc="upper right")
        (self.modes,) = self.side[1].plot([], [], color="tab:orange", lw=1.2, drawstyle="steps-post")
        self.all_modes = self.side[1].axhline(0, color="0.5", lw=0.8, ls=":")
        (self.hq,) = self.side[2].plot([], [], color="tab:orange", lw=1.2)
        self.side[2].set_ylim(-3, 103)
        self.retarget(gan, x_end)

    def retarget(self, gan: basics.ToyGAN2D, x_end: int) -> None:
        """Show `gan` from its start: its data's points and modes, no samples of G yet."""
        super().retarget(gan, x_end)
        e = gan.data.extent
        self.wgan = gan.settings.loss == "wgan-gp"
        self.heat.set_data(np.zeros((2, 2)))
        self.heat.set_extent((-e, e, -e, e))
        if self.wgan:  # the critic's scale drifts: show it rescaled to [0, 1] each frame
            self.colorbar.set_ticks([0, 1], labels=["low", "high"])
            self.colorbar.set_label("critic score (high: real side)", fontsize=8)
        else:
            self.colorbar.set_ticks(self.D_TICKS, labels=[f"{t:.1f}" for t in self.D_TICKS])
            self.colorbar.set_label("D(x): blue says real, red says fake", fontsize=8)
        self.real.set_offsets(gan.real_eval.numpy())
        self.fake.set_offsets(np.empty((0, 2)))
        self.centers.set_offsets(gan.data.centers)
        self.main.set_xlim(-e, e)
        self.main.set_ylim(-e, e)
        total = len(gan.data.centers)
        self.all_modes.set_ydata([total, total])
        self.side[1].set_ylim(-0.3, total + 0.7)
        for line in (self.modes, self.hq):
            line.set_data([], [])

    def _animated(self) -> list[Any]:
        # the heatmap changes every frame, so it is drawn over the background: the real points and the
        # modes' centres, which must be seen on top of it, are drawn after it
        return [*super()._animated(), self.heat, self.real, self.centers, self.fake, self.modes, self.hq]

    def _keys(self) -> list[Any]:
        return [*super()._keys(), self.key]

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
