"""The Faces tab: a gallery of random faces from a seed, a walk between two seeds, the model card.

Both endpoints take the truncation psi as an optional last input (default 1, which gives exactly the
faces a call without it has always given): `generate_faces(seed, count[, psi])`,
`interpolate_faces(seed_a, seed_b, frames[, psi])`."""

from __future__ import annotations

import random
from typing import Any

import gradio as gr
from PIL import Image

from gandemo import registry
from gandemo.checkpoint import Checkpoint
from gandemo.tasks import TaskSpec, faces
from gandemo.ui.common import endpoint, how_it_works, output_path, task_tab

INTRO = (
    "Faces that do not exist, drawn by a DCGAN this project trained on CelebA photos. "
    "Pick a seed (the same seed always gives the same faces) and how many."
)
HOW_IT_WORKS = r"""
**The game.** A generator $G$ turns random noise $z \sim \mathcal{N}(0, I)$ (100 numbers) into a
64×64 picture; a discriminator $D$ says how likely a picture is a real photo. They play

$$\min_G \max_D \; \mathbb{E}_{x \sim p_\text{data}}[\log D(x)] + \mathbb{E}_{z}[\log(1 - D(G(z)))]$$

$D$ minimises $-[\log D(x) + \log(1 - D(G(z)))]$. Early on $D$ rejects every fake with confidence,
where $\log(1 - D(G(z)))$ is flat and gives $G$ almost no gradient, so $G$ instead minimises the
**non-saturating** loss $-\log D(G(z))$: same fixed point, strong gradients when $G$ is losing.

**DCGAN's rules** (Radford et al., 2016), all followed here:
- no pooling: strided convolutions in $D$, transposed ("fractionally-strided") convolutions in $G$;
- batch normalisation in both nets (not on $G$'s output or $D$'s input);
- ReLU in $G$ with Tanh on the output; LeakyReLU(0.2) in $D$;
- no fully connected hidden layers: $z$ is a 1×1 "image" with 100 channels, grown
  4→8→16→32→64; $D$ shrinks 64→32→16→8→4 and a 4×4 convolution gives one logit;
- Adam with learning rate 0.0002 and $\beta_1 = 0.5$.

**Here on top**, each measured by FID during training (the curve below the card):
- the app draws with an exponential moving average of $G$'s weights (smoother, steadier faces), whose
  averaging window grows with training (StyleGAN2-ADA's ramp) so the random start is forgotten fast;
- $D$ sees randomly coloured and shifted copies of real and fake images alike (DiffAugment), so it
  cannot simply memorise the 13,000 training faces; real faces are also mirrored at random;
- the model is measured on ~1,000 held-out faces it never saw, against a simple "eigenfaces"
  baseline (a Gaussian in PCA space): FID (lower is better), and precision (are the faces
  realistic?) and recall (do they cover the variety of real faces?).

**Seeds.** Face *i* of a seed always comes from the same $z$, so a seed is a fixed gallery; the
walk goes along the sphere where Gaussian $z$ live (slerp) from face 1 of seed A to face 1 of seed B.

**Truncation $\psi$** (the knob of StyleGAN demos): every $z$ is pulled toward the mean of its
distribution, $z' = \psi z$. Rare, extreme $z$, where $G$ saw least and fails most, move toward the
typical middle: faces get cleaner and more alike. $\psi = 1$ leaves $z$ as drawn (full variety),
$\psi = 0$ draws one "average" face for every seed. The table beside the slider gives the trade as
measured: FID (overall, lower is better), precision (realism) and recall (variety) at each $\psi$.
"""


# Both faces endpoints share one limit of 2: two requests overlap (one in the model on one core
# while the other's images are encoded and sent), more would only queue inside torch.
FACES_CONCURRENCY = {"concurrency_limit": 2, "concurrency_id": "faces"}


@endpoint
def generate_faces(seed: Any, count: Any, psi: Any = 1.0) -> tuple[list[Image.Image], str]:
    """`count` faces for `seed` at truncation `psi` -> (gallery, path of the grid PNG)."""
    seed, count, psi = faces.check_seed(seed), faces.check_count(count), faces.check_psi(psi)  # before any work
    G = registry.get("faces")["G"]
    images = faces.generate_faces(G, seed, count, psi)
    grid = faces.grid_png(images, output_path(f"faces_seed{seed}_x{count}{_psi_suffix(psi)}.png"))
    return images, str(grid)


@endpoint
def interpolate_faces(seed_a: Any, seed_b: Any, frames: Any, psi: Any = 1.0) -> tuple[str, list[Image.Image]]:
    """Walk from seed_a's first face to seed_b's at truncation `psi` -> (GIF path, gallery of the frames)."""
    seed_a, seed_b = faces.check_seed(seed_a, "seed A"), faces.check_seed(seed_b, "seed B")
    frames, psi = faces.check_frames(frames), faces.check_psi(psi)
    G = registry.get("faces")["G"]
    images = faces.interpolate_faces(G, seed_a, seed_b, frames, psi)
    gif = faces.animation_gif(images, output_path(f"walk_{seed_a}_to_{seed_b}{_psi_suffix(psi)}.gif"))
    return str(gif), images


def _psi_suffix(psi: float) -> str:
    # a file name says what it holds; psi = 1 keeps the names files have always had
    return "" if psi == 1 else f"_psi{psi:g}"


_COLUMNS = (("FID", ".1f"), ("precision", ".2f"), ("recall", ".3f"))


def truncation_markdown(card: dict[str, Any]) -> str:
    """The card's truncation sweep as a compact table for the slider ('' when it was not measured)."""
    rows = faces.truncation_table(card)
    if not rows:
        return ""
    lines = ["| ψ | FID | precision | recall |", "|---|---|---|---|"]
    for psi, measured in rows:
        cells = [format(measured[k], f) if k in measured else "–" for k, f in _COLUMNS]
        lines.append(f"| {psi:g} | " + " | ".join(cells) + " |")
    return (
        "\n".join(lines) + "\n\n*Measured on held-out faces: FID lower is better; precision = realism, "
        "recall = variety (the card under How it works).*"
    )


def random_seed() -> int:
    return random.randint(0, faces.SEED_MAX)


def build(spec: TaskSpec) -> None:
    task_tab(spec, _body, INTRO)


def _body(ckpt: Checkpoint) -> None:
    with gr.Row():
        with gr.Column(scale=1, min_width=240):
            seed = gr.Number(value=42, label="Seed", minimum=0, maximum=faces.SEED_MAX, elem_id="faces-seed")
            dice = gr.Button("🎲 Random seed", size="sm")
            count = gr.Slider(1, faces.COUNT_MAX, value=16, step=1, label="How many faces")
            psi = gr.Slider(
                faces.PSI_MIN,
                faces.PSI_MAX,
                value=1.0,
                step=0.05,
                label="Truncation ψ",
                info="1 = full variety; lower = cleaner, more alike faces (also used by the walk)",
                elem_id="faces-psi",
            )
            go = gr.Button("Generate faces", variant="primary")
            grid_file = gr.File(label="Download the grid (PNG)", interactive=False)
            table = truncation_markdown(ckpt.card)  # below the controls: it informs the slider, never blocks it
            if table:
                gr.Markdown(table, elem_id="faces-truncation-table")
        with gr.Column(scale=3):
            # no captions: on 64x64 thumbnails they would cover the faces; the label says the order
            gallery = gr.Gallery(
                label="Faces (64×64 each, face 1 first; click one to enlarge)",
                columns=8,
                format="png",
                object_fit="contain",
                height="auto",
                elem_id="faces-gallery",
            )

    gr.Markdown(
        "### Walk from one face to another\nThe first face of seed A morphs into the first face of seed B "
        "(at the truncation ψ chosen above)."
    )
    with gr.Row():
        with gr.Column(scale=1, min_width=240):
            seed_a = gr.Number(value=42, label="Seed A", minimum=0, maximum=faces.SEED_MAX)
            seed_b = gr.Number(value=7, label="Seed B", minimum=0, maximum=faces.SEED_MAX)
            frames = gr.Slider(faces.FRAMES_MIN, faces.FRAMES_MAX, value=16, step=1, label="Frames")
            walk = gr.Button("Interpolate", variant="primary")
        with gr.Column(scale=1):
            animation = gr.Image(
                label="Animation (GIF, plays back and forth)", type="filepath", format="gif", height=256
            )
        with gr.Column(scale=2):
            frame_gallery = gr.Gallery(label="Frames, in order", columns=6, format="png", height="auto")

    how_it_works(HOW_IT_WORKS, ckpt, "64 faces from the shipped checkpoint")

    dice.click(random_seed, outputs=seed, api_visibility="undocumented")
    # preprocess=False: the raw numbers reach the task's own checks, so every bad value (3.5,
    # "abc", -1, 10000) gets the same plain message instead of Gradio's generic conversion error
    go.click(
        generate_faces,
        [seed, count, psi],
        [gallery, grid_file],
        api_name="generate_faces",
        preprocess=False,
        **FACES_CONCURRENCY,
    )
    walk.click(
        interpolate_faces,
        [seed_a, seed_b, frames, psi],
        [animation, frame_gallery],
        api_name="interpolate_faces",
        preprocess=False,
        **FACES_CONCURRENCY,
    )
