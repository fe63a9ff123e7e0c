"""The GAN Basics live session: one browser session's toy GAN and figure, the streaming endpoints
`toy_gan` and `toy_gan_2d` that train it chunk by chunk under the run caps, the numbers shown
beside the plot, and the Pause handler. Its one job is running the game; the layout is in
`__init__`, the drawing in `figures`.

Each browser session trains its own toy GAN, kept in a `gr.State`; a click streams plot updates
until the run's step count, the step cap or the time cap is reached, Pause is pressed, or the
page is closed (Gradio then stops iterating the generator). Start with the same settings
continues the session's model; changed settings start a new one, so the same seed and settings
always replay the same run.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr
import numpy as np
from gradio.components.plot import PlotData

from gandemo import plotting
from gandemo.tasks import basics
from gandemo.ui.basics.figures import Figure1D, Figure2D
from gandemo.ui.common import endpoint
from gandemo.validation import as_int

RUN_STEPS_MAX = 20_000  # steps one Start click may run
RUN_SECONDS_MAX = 120.0  # wall time one Start click may run
UPDATE_EVERY_MAX = 500
STATE_TTL_S = 900  # a session idle this long loses its game (and frees its figure's memory)
CONCURRENCY = {"concurrency_limit": 2, "concurrency_id": "gan_basics"}  # runs in parallel, all users: 2 vCPUs

# Sessions that keep their figure between clicks. A figure is a few MB (measured ~7 MB of resident
# memory per session), and every API call without a session is a session of its own, kept for
# STATE_TTL_S: without a bound, a script calling toy_gan in a loop grew the server by gigabytes. The
# least recently used figures beyond this are let go; their session draws one again on its next click.
FIGURES_KEPT = 8  # 4 visitors drawing both views; ~56 MB at most
# Sessions that keep their game (toy GAN, optimisers, evaluation samples: ~0.24 MB each, measured). For
# the same reason as the figures, unbounded games grew the server ~1 % a round of benchmarks/load.py, up
# to STATE_SESSIONS of them (~120 MB). An older idle session's next Start begins again from step 0.
GAMES_KEPT = 16  # 8 visitors playing both views; ~4 MB at most, filled in a crowd's first minute
# Figures that no session holds any more (let go above, or their session ended: every REST call's
# session ends a second after its answer) are kept, this many per view, and retargeted to the next new
# game. Building a figure per game made and freed thousands of objects a call, and the server's RSS
# swung by 1-2 % a round of benchmarks/load.py with GAN Basics alone.
IDLE_FIGURES_KEPT = 2  # ~28 MB at most beside the FIGURES_KEPT that sessions hold

_active_runs = 0  # runs iterating right now (the tests check that closing a page ends its run)
_active_lock = threading.Lock()
# id(session) -> session, least recently used first: the sessions that hold a game (GAMES_KEPT), the
# last FIGURES_KEPT of which may hold a figure too
_kept: OrderedDict[int, weakref.ref] = OrderedDict()
_kept_lock = threading.Lock()
_idle: dict[type, list[Any]] = {}  # figure class -> figures no session holds (IDLE_FIGURES_KEPT)
# re-entrant: a session may end (Session.__del__) in whichever thread drops it, this one included
_idle_lock = threading.RLock()


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
        self.runs = 0  # streams running from this session (their game is not let go meanwhile: _keep)
        # Pause sets this: Gradio's cancel only stops the stream between chunks, and the running
        # chunk would otherwise train on past the step that Pause reports
        self.stop = threading.Event()

    def __del__(self) -> None:
        _let_go(self.figure)  # the session ended (its state expired or was forgotten): the figure lives on


def _let_go(figure: Any) -> None:
    """Keep a figure that no session holds for the next new game, up to IDLE_FIGURES_KEPT per view."""
    if figure is None:
        return
    with _idle_lock:
        idle = _idle.setdefault(type(figure), [])
        if len(idle) < IDLE_FIGURES_KEPT and figure not in idle:
            idle.append(figure)


def _figure_for(figure_cls: Callable[[Any, int], Any], gan: basics.ToyGAN, x_end: int, own: Any = None) -> Any:
    """A figure showing `gan` from its start, with room for steps up to `x_end`: the session's `own`
    figure or an idle one, retargeted, else a new one."""
    if own is None or type(own) is not figure_cls:
        _let_go(own)
        with _idle_lock:
            idle = _idle.get(figure_cls)
            own = idle.pop() if idle else None
    with plotting.LOCK:  # matplotlib is not thread-safe (gandemo.plotting)
        if own is None:
            return figure_cls(gan, x_end)
        own.retarget(gan, x_end)
        return own


def _keep(session: Session) -> None:
    """Count `session` as the most recently used, and let the least recently used figures beyond
    FIGURES_KEPT go, and whole games beyond GAMES_KEPT: never those of a session that is busy (a run
    streams from it, or a chunk or Pause holds its lock)."""
    with _kept_lock:
        _kept.pop(id(session), None)
        _kept[id(session)] = weakref.ref(session)
        keys = list(_kept)
        for rank, key in enumerate(keys):
            from_newest = len(keys) - rank  # 1 for the most recently used
            if from_newest <= FIGURES_KEPT:
                break
            old = _kept[key]()
            if old is None:  # the session itself is gone (its state expired)
                del _kept[key]
            elif old is not session and not old.runs and old.lock.acquire(blocking=False):
                try:
                    _let_go(old.figure)
                    old.figure = None
                    if from_newest > GAMES_KEPT:
                        old.gan = None
                        del _kept[key]
                finally:
                    old.lock.release()


def numbers_1d(gan: basics.ToyGAN1D, view: basics.View1D, status: str, rate: float) -> dict[str, Any]:
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


def numbers_2d(_gan: basics.ToyGAN2D, view: basics.View2D, status: str, rate: float) -> dict[str, Any]:
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


def _run_limits(steps: Any, update_every: Any) -> tuple[int, int]:
    steps = as_int(steps, "steps", 1, RUN_STEPS_MAX)
    return steps, as_int(update_every, "steps per plot update", 1, UPDATE_EVERY_MAX)


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
    with _active_lock:
        _active_runs += 1
        session.runs += 1
    try:
        with session.lock:  # waits for a cancelled run's chunk, which a set `stop` ends at its next step
            session.stop.clear()
            if session.gan is None or session.gan.settings != settings:
                session.gan = make(settings)  # new settings, new game: the same settings replay exactly
                session.figure = _figure_for(figure_cls, session.gan, steps, session.figure)
            elif session.figure is None:  # let go to bound memory (_keep): drawn again for this game
                session.figure = _figure_for(figure_cls, session.gan, session.gan.steps + steps)
            _keep(session)
            gan, fig = session.gan, session.figure
            fig.reach(gan.steps + steps)
            frame = _frame(gan, fig, numbers, f"Running {steps} steps from step {gan.steps}…", float("nan"))
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
            session.runs -= 1


# @endpoint turns the plain-words InvalidInput of the checks into gr.Error; the checks run at the
# stream's first step, before any training or drawing


@endpoint
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
    settings = basics.settings_1d(distribution, noise, loss, lr_d, lr_g, k, batch, seed)
    steps, update_every = _run_limits(steps, update_every)
    yield from _stream(state, basics.ToyGAN1D, settings, steps, update_every, Figure1D, numbers_1d)


@endpoint
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
    settings = basics.settings_2d(dataset, loss, lr_d, lr_g, k, batch, seed)
    steps, update_every = _run_limits(steps, update_every)
    yield from _stream(state, basics.ToyGAN2D, settings, steps, update_every, Figure2D, numbers_2d)


def _paused_status(gan: basics.ToyGAN) -> str:
    return f"Paused at step {gan.steps}; Start goes on from here."


def pause(numbers: Numbers) -> Callable[[Any], tuple[Any, str, Any]]:
    """Pause's handler for a view: stop the session's run at its next step and show exactly where
    the game stands (a cancelled stream drops the frame it was about to send)."""

    def paused(state: Any) -> tuple[Any, str, Any]:
        if not isinstance(state, Session) or state.gan is None:
            return gr.skip(), "Nothing to pause: press Start.", gr.skip()
        state.stop.set()
        with state.lock:  # a chunk in progress ends at its next step: then the state is final
            if state.figure is None:  # let go while idle (_keep): the picture on the page is current
                return gr.skip(), f"**{_paused_status(state.gan)}**", gr.skip()
            return _frame(state.gan, state.figure, numbers, _paused_status(state.gan), float("nan"))

    return paused
