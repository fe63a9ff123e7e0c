"""The GAN Basics figures (gandemo/ui/basics/figures.py), drawn directly: a PNG of the tab's size
with a drawing on it, blitted frames after the first, limits that grow only when a curve leaves
them, and the WGAN critic's heatmap rescaled to [0, 1]."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from gandemo.tasks.basics import Settings1D, Settings2D, ToyGAN1D, ToyGAN2D
from gandemo.ui.basics.figures import Figure1D, Figure2D, _grown


def _png(plot) -> Image.Image:
    assert plot.type == "matplotlib" and plot.plot.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(plot.plot.split(",", 1)[1])))


def test_a_1d_frame_is_a_png_drawing_and_later_frames_are_blitted():
    gan = ToyGAN1D(Settings1D())
    fig = Figure1D(gan, 20)
    first = _png(fig.draw(gan.snapshot(), gan.history))
    assert first.size == (945, 414) and len(first.convert("L").getcolors(10_000)) > 20  # a drawing, not a blank
    gan.train(5)
    second = _png(fig.draw(gan.snapshot(), gan.history))
    assert (fig.frames, fig.full_redraws) == (2, 1)  # the axes and text were drawn once
    assert np.asarray(second).tobytes() != np.asarray(first).tobytes()  # it moved


def test_reach_grows_the_step_axis_with_headroom():
    gan = ToyGAN1D(Settings1D())
    fig = Figure1D(gan, 100)
    fig.reach(50)
    assert fig.side[0].get_xlim()[1] == 100  # fits: no redraw needed
    fig.reach(120)
    assert all(ax.get_xlim()[1] == 150 for ax in fig.side)  # 1.5x the old end, not just enough


@pytest.mark.parametrize(
    "lo, hi, values, log, expected",
    [
        (0.0, 1.5, [0.2, 1.4], False, None),  # inside: keep the limits
        (0.0, 1.5, [0.2, 2.0], False, (-0.25, 2.45)),  # outside: a quarter of the span as headroom
        (1e-3, 10, [0.0, 5.0, np.nan], True, None),  # log scale: zeros and NaN are not drawn
        (1e-3, 10, [1e-4, 20.0], True, (1e-4 / 3, 60.0)),  # log scale: grow by a factor of 3
        (0.0, 1.0, [np.nan], False, None),  # nothing to fit
    ],
)
def test_grown_limits(lo, hi, values, log, expected):
    got = _grown(lo, hi, np.asarray(values, np.float64), log)
    assert got == (None if expected is None else pytest.approx(expected))


def test_the_wgan_critics_heatmap_is_shown_rescaled_to_0_1():
    gan = ToyGAN2D(Settings2D(loss="wgan-gp", k=5))
    fig = Figure2D(gan, 10)
    view = gan.snapshot()
    assert _png(fig.draw(view, gan.history)).size == (945, 414)
    heat = np.asarray(fig.heat.get_array())
    assert heat.min() == pytest.approx(0) and heat.max() == pytest.approx(1)
    assert "modes" in fig.title.get_text()


def _frame_after(fig, gan, steps: int) -> bytes:
    gan.train(steps)
    return np.asarray(_png(fig.draw(gan.snapshot(), gan.history))).tobytes()


@pytest.mark.parametrize(
    "figure_cls, gan_cls, before, after",
    [
        (Figure1D, ToyGAN1D, Settings1D(distribution="uniform", loss="minimax", batch=32), Settings1D(batch=32)),
        (Figure2D, ToyGAN2D, Settings2D(dataset="grid", loss="wgan-gp", k=2, batch=32), Settings2D(batch=32)),
        (Figure2D, ToyGAN2D, Settings2D(batch=32), Settings2D(dataset="grid", loss="wgan-gp", k=2, batch=32)),
    ],
)
def test_a_figure_retargeted_to_a_new_game_draws_exactly_as_a_new_figure(figure_cls, gan_cls, before, after):
    used = figure_cls(used_gan := gan_cls(before), 10)
    _frame_after(used, used_gan, 0)
    _frame_after(used, used_gan, 15)  # grows the step axis and the limits: all of it must be undone
    used.retarget(reused_gan := gan_cls(after), 10)
    new = figure_cls(new_gan := gan_cls(after), 10)
    for steps in (0, 2, 10):  # the first frame, a blitted one, and one past the first step axis
        assert _frame_after(used, reused_gan, steps) == _frame_after(new, new_gan, steps)
    assert (used.frames, used.full_redraws) == (new.frames, new.full_redraws)  # the same redraws, too
    assert used.frames == 3 and used.full_redraws >= 2  # the first frame and the grown step axis


def test_the_real_points_the_modes_and_the_keys_are_drawn_above_what_moves_under_them():
    gan = ToyGAN2D(Settings2D(batch=32))
    fig = Figure2D(gan, 10)
    order = fig._animated()  # blitted frames draw these over the background, in this order
    assert all(order.index(fig.heat) < order.index(a) for a in (fig.real, fig.centers, fig.fake))
    assert [h.get_color() for h in fig.key.legend_handles] == ["black", "tab:orange"]  # the points' own colours
    first = np.asarray(_png(fig.draw(gan.snapshot(), gan.history)))
    gan.train(3)
    later = np.asarray(_png(fig.draw(gan.snapshot(), gan.history)))  # blitted: the keys pasted back on top
    assert fig.full_redraws == 1
    for key in fig._keys():
        x0, y0, x1, y1 = np.asarray(key.get_window_extent().extents).round().astype(int)
        rows = slice(first.shape[0] - y1 + 1, first.shape[0] - y0 - 1)  # display y goes up, rows go down
        assert (first[rows, x0 + 1 : x1 - 1] == later[rows, x0 + 1 : x1 - 1]).all()  # untouched by what moved
