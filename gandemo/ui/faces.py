"""The Faces tab: a gallery of random faces from a seed, a walk between two seeds, the model card."""

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
"""


# Both faces endpoints share one limit of 2: two requests overlap (one in the model on one core
# while the other's images are encoded and sent), more would only queue inside torch.
FACES_CONCURRENCY = {"concurrency_limit": 2, "concurrency_id": "faces"}


@endpoint
def generate_faces(seed: Any, count: Any) -> tuple[list[Image.Image], str]:
    """`count` faces for `seed` -> (gallery, path of the grid PNG)."""
    seed, count = faces.check_seed(seed), faces.check_count(count)  # before any work
    G = registry.get("faces")["G"]
    images = faces.generate_faces(G, seed, count)
    grid = faces.grid_png(images, output_path(f"faces_seed{seed}_x{count}.png"))
    return images, str(grid)


@endpoint
def interpolate_faces(seed_a: Any, seed_b: Any, frames: Any) -> tuple[str, list[Image.Image]]:
    """Walk from seed_a's first face to seed_b's -> (GIF path, gallery of the frames)."""
    seed_a, seed_b = faces.check_seed(seed_a, "seed A"), faces.check_seed(seed_b, "seed B")
    frames = faces.check_frames(frames)
    G = registry.get("faces")["G"]
    images = faces.interpolate_faces(G, seed_a, seed_b, frames)
    gif = faces.animation_gif(images, output_path(f"walk_{seed_a}_to_{seed_b}.gif"))
    return str(gif), images


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
            go = gr.Button("Generate faces", variant="primary")
            grid_file = gr.File(label="Download the grid (PNG)", interactive=False)
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

    gr.Markdown("### Walk from one face to another\nThe first face of seed A morphs into the first face of seed B.")
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
        [seed, count],
        [gallery, grid_file],
        api_name="generate_faces",
        preprocess=False,
        **FACES_CONCURRENCY,
    )
    walk.click(
        interpolate_faces,
        [seed_a, seed_b, frames],
        [animation, frame_gallery],
        api_name="interpolate_faces",
        preprocess=False,
        **FACES_CONCURRENCY,
    )
