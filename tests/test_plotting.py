"""gandemo.plotting: every figure the app makes or draws holds the one matplotlib lock, since
matplotlib shares its fonts between threads (under a crowd, FreeType failed mid-frame)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.figure import Figure

from gandemo import plotting
from gandemo.tasks.anomaly import score_plot
from gandemo.tasks.basics import Settings1D, Settings2D, ToyGAN1D, ToyGAN2D
from gandemo.ui.basics import session
from gandemo.ui.basics.figures import Figure1D, Figure2D
from gandemo.ui.basics.session import _figure_for


@pytest.fixture
def lock_held(monkeypatch) -> list[tuple[str, bool]]:
    """What matplotlib was asked to do, and whether the asking thread held plotting.LOCK then: figures
    made, whole canvases drawn, text drawn (a blitted frame draws its title without a canvas draw)."""
    seen: list[tuple[str, bool]] = []

    def watch(cls: type, name: str) -> None:
        plain = getattr(cls, name)

        def watched(self, *args, **kwargs):
            seen.append((f"{cls.__name__}.{name}", plotting.LOCK._is_owned()))
            return plain(self, *args, **kwargs)

        monkeypatch.setattr(cls, name, watched)

    watch(Figure, "__init__")
    watch(FigureCanvasAgg, "draw")
    watch(RendererAgg, "draw_text")
    return seen


def _all_under_the_lock(seen: list[tuple[str, bool]], work: Callable[[], object]) -> None:
    seen.clear()
    work()
    assert seen and [what for what, held in seen if not held] == []


def test_gan_basics_figures_are_made_and_drawn_under_the_lock(lock_held, monkeypatch):
    monkeypatch.setattr(session, "_idle", {})  # no idle figure left by other tests: a new one is made
    gan1, gan2 = ToyGAN1D(Settings1D()), ToyGAN2D(Settings2D())
    fig1 = _figure_for(Figure1D, gan1, 100)
    fig2 = _figure_for(Figure2D, gan2, 100)
    _all_under_the_lock(lock_held, lambda: _figure_for(Figure1D, gan1, 100))  # made
    for fig, gan in ((fig1, gan1), (fig2, gan2)):
        _all_under_the_lock(lock_held, lambda fig=fig, gan=gan: fig.draw(gan.snapshot(), gan.history))  # full
        gan.train(3)
        _all_under_the_lock(lock_held, lambda fig=fig, gan=gan: fig.draw(gan.snapshot(), gan.history))  # blitted
    assert fig1.full_redraws == 1 and fig1.frames == 2


def test_the_anomaly_score_plot_is_drawn_under_the_lock(lock_held):
    _all_under_the_lock(lock_held, lambda: score_plot(0.5, [0.1, 0.2, 0.3], 0.4, "transistor"))


def test_the_lock_is_re_entrant_for_a_figure_drawn_inside_another_drawing():
    with plotting.LOCK, plotting.LOCK:  # a constructor may draw through its own methods
        assert score_plot(0.5, [0.1, 0.2], 0.4).size == (560, 220)
