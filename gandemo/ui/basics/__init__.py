"""The GAN Basics tab: watch the minimax game play out live, in 1-D (the original paper's figure)
and in 2-D (mode collapse on a ring or grid of Gaussians). This module is the tab's layout: the
text, the controls and their wiring, built by `build(spec)`. The live run is in `session`, the
drawing in `figures`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gradio as gr

from gandemo.tasks import TaskSpec, basics
from gandemo.ui.basics import session
from gandemo.ui.basics.session import (
    RUN_SECONDS_MAX,
    RUN_STEPS_MAX,
    STATE_TTL_S,
    UPDATE_EVERY_MAX,
    toy_gan,
    toy_gan_2d,
)
from gandemo.ui.common import LATEX

__all__ = ["build", "toy_gan", "toy_gan_2d"]  # the endpoints, for callers (benchmarks, scripts)

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


def _reset(_state: Any) -> tuple[None, None, str, None]:
    # the cancelled run may finish its chunk on the old session, which nothing shows any more
    return None, None, "Cleared: the next Start begins a new game.", None


def _k_for_loss(loss: str) -> int:
    return 5 if loss == "wgan-gp" else 1


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


def _outputs(label: str) -> tuple[gr.Plot, gr.Markdown, gr.JSON]:
    """A view's outputs, beside its controls: the plot, the numbers as Markdown and, folded away,
    the same numbers as the API returns them."""
    with gr.Column(scale=3):
        plot = gr.Plot(label=label)
        with gr.Row():
            with gr.Column(scale=2):
                md = gr.Markdown("Press **Start**.")
            with gr.Column(scale=1), gr.Accordion("Numbers as JSON (what the API returns)", open=False):
                numbers = gr.JSON(label="numbers")
    return plot, md, numbers


def _wire(
    fn: Any,
    numbers_fn: session.Numbers,
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

    def one_step(*args: Any) -> Iterator[session.Frame]:
        *settings, state_value = args
        yield from fn(*settings, 1, 1, state_value)

    # preprocess=False: the raw values reach the task's own checks, so every bad value gets the
    # same plain message (Gradio's own conversion would fail first, with a generic one)
    common = {"preprocess": False, "show_progress": "minimal", **session.CONCURRENCY}
    run = start.click(fn, [*settings_in, *run_in, state], outputs, api_name=api_name, **common)
    stepped = step.click(
        one_step, [*settings_in, state], outputs, cancels=[run], api_visibility="undocumented", **common
    )
    instant = {"cancels": [run, stepped], "api_visibility": "undocumented", "concurrency_limit": None}
    pause.click(session.pause(numbers_fn), state, [plot, md, numbers], **instant)
    reset.click(_reset, state, [plot, numbers, md, state], **instant)


def build(spec: TaskSpec) -> None:
    """The body of the GAN Basics tab (`spec` is its entry in the task catalogue): the 1-D view,
    then the 2-D view, then "How it works". It needs no checkpoint: each session trains its own."""
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
        plot1, md1, json1 = _outputs("1-D GAN")
    state1 = gr.State(None, time_to_live=STATE_TTL_S)

    d2 = basics.Settings2D()
    gr.Markdown("### 2-D: mode collapse you can see\n" + CAPTION_2D)
    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            dataset = gr.Dropdown(_choices(basics.DATASETS_2D, DATA_TITLES), value=d2.dataset, label="Data")
            loss2 = gr.Radio(_choices(basics.LOSSES_2D, basics.LOSS_TITLES), value=d2.loss, label="Loss")
            opt2 = _optimiser_controls(d2)
            steps2, every2, buttons2 = _run_controls(4000, 25)
        plot2, md2, json2 = _outputs("2-D GAN")
    state2 = gr.State(None, time_to_live=STATE_TTL_S)

    with gr.Accordion("How it works", open=False):
        gr.Markdown(HOW_IT_WORKS, latex_delimiters=LATEX)

    _wire(
        toy_gan,
        session.numbers_1d,
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
        session.numbers_2d,
        "toy_gan_2d",
        [dataset, loss2, *opt2],
        [steps2, every2],
        buttons2,
        plot2,
        md2,
        json2,
        state2,
    )
