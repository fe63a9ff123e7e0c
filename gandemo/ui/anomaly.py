"""The Anomaly tab: pick a product category, upload a photo (or click an example) and see where GANs
trained on normal products only cannot reproduce it: a heatmap over the photo, the binary defect
mask, the model's reconstruction, the anomaly score with its verdict, and the score among the
normal validation images' scores; one more click shows the trivial baseline's heatmap beside it.

Two endpoints, for the page and API clients alike: `detect_anomaly(image, category, method,
iterations)` and `compare_baseline(image, category)`; raw inputs (`preprocess=False`) reach the
task's own checks and decoder. The methods differ a hundredfold in cost: the inpainter and the
encoder are one batch of passes, the latent search hundreds of backward passes. So the event
allows 3 requests at once, and latent searches additionally take turns on the app's one slot for
long CPU jobs (`ui.common.heavy_slot`, shared with large upscales), each with a bounded number of
torch threads (`GANDEMO_SEARCH_THREADS`, default 1): fast requests are not stuck behind a queue of
searches unless three searches are waiting at once.
"""

from __future__ import annotations

import html
import os
import sys
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from gandemo import registry
from gandemo.checkpoint import Checkpoint
from gandemo.registry import ModelUnavailable
from gandemo.tasks import TASKS, TaskSpec
from gandemo.tasks import anomaly as task
from gandemo.tasks import anomaly_examples as examples
from gandemo.ui.common import (
    EXAMPLES_ROOT,
    endpoint,
    heavy_slot,
    how_it_works,
    image_source,
    save_example,
    task_tab,
)
from gandemo.validation import InvalidInput

TASK = "anomaly"
ANOMALY_CONCURRENCY = {"concurrency_limit": 3, "concurrency_id": "anomaly"}
SEARCH_THREADS_ENV = "GANDEMO_SEARCH_THREADS"
IMAGE_HEIGHT = 256
EXAMPLE_SIZE = examples.EXAMPLE_SIZE  # examples: the generator's images enlarged to this, a defect painted on
EXAMPLES_DIR = EXAMPLES_ROOT / "anomaly"

HOW_IT_WORKS = r"""
**The inpainting GAN (the default).** A U-Net $I$ sees the photo at 128² with a grid of cells hidden
and redraws them from what surrounds them; it was trained on normal products only, against a PatchGAN
critic (Pix2Pix's conditional GAN, Isola et al. 2017) plus $100 \times$ the L1 error on the hidden
cells. At test time every pixel is hidden once in each of three grids (cells of 8, 16 and 32 px, dealt
into 4 disjoint masks each: 12 passes in one batch), following RIAD (Zavrtanik et al. 2021). A normal
region is redrawn from its normal surroundings; a scratch, a bent lead or rust is not, because $I$ has
never seen one. The heatmap is the mean redrawing error $|x - I(\text{hidden }x)|$ over the grids,
smoothed, and (where it measured better on the validation images) z-scored per pixel against the same
map over normal training images, which takes out the error that normal edges and textures always have.
The image score is the mean of the heatmap's top 0.5 % of pixels.

**Train on normal, search at test (AnoGAN, f-AnoGAN: the 64² models of v1).** A GAN is trained on
photos of *normal* products only: the generator $G$ learns to turn a random vector $z$ into a
picture of a normal product, the discriminator $D$ to tell such pictures from real ones. At test
time we look for the $z$ whose $G(z)$ is closest to the photo $x$. A normal photo can be
reproduced; a scratch, a crack or rust cannot, because $G$ has never seen one. *Where* $G(z)$
differs from $x$ is the heatmap.

**The anomaly score** (AnoGAN, Schlegl et al. 2017) mixes the residual and the discriminator's
view, with $\lambda = 0.1$:

$$A(x) = (1 - \lambda)\,R(x) + \lambda\,D(x)$$

$$R(x) = \overline{|x - G(z)|}, \qquad D(x) = \overline{|f(x) - f(G(z))|}$$

where $f$ is $D$'s last hidden layer (a feature-matching distance: does $G(z)$ look like $x$ to
the critic?) and the bars are means over pixels or features. The heatmap is the per-pixel
residual $|x - G(z)|$ (averaged over colour channels, lightly smoothed), mapped back onto the
photo's own size.

**Latent search (AnoGAN).** Start from the best of 16 seeded random $z$ and take Adam steps on
$z$ that lower $A(x)$, with $G$ and $D$ fixed. More iterations reproduce the photo more closely
(lower scores for everything, normal or not); each iteration is a forward and backward pass
through $G$ and $D$, so it takes seconds.

**The encoder shortcut (f-AnoGAN, Schlegl et al. 2019).** After the GAN, an encoder $E$ is
trained, with $G$ and $D$ frozen, to map a normal image to its $z$ in one pass ("izi_f",
with $\kappa = 1$):

$$\min_E \; \frac{1}{n}\lVert x - G(E(x))\rVert^2 + \kappa \, \frac{1}{n_f}\lVert f(x) - f(G(E(x)))\rVert^2$$

Then $z = E(x)$ and the same $A(x)$: milliseconds instead of seconds.

**Thresholds.** The verdict and the mask use thresholds stored in each model's card, calibrated on
*normal* validation images the model never trained on (no defect was looked at to choose them):
the image threshold lets 5 % of those normal images through as "anomalous", the pixel threshold
0.5 % of their pixels. The plot shows where this photo's score falls among theirs.

**The reference to beat** is a trivial detector with no GAN at all: each pixel's z-score against
the mean and standard deviation of the normal training images (128², RGB), the image score being
the mean of its top 1 % pixel scores. *Compare with the trivial baseline* shows its heatmap for the
same photo, with its own thresholds calibrated on the same normal images, and the table gives every
method's image and pixel AUROC beside it.
"""


def search_threads() -> int:
    """Torch threads for one latent search, from GANDEMO_SEARCH_THREADS (default 1, at most the
    number of cores). One long job runs at a time (`heavy_slot`), so this bounds what searches take.
    The default matches the app's: on 2 busy cores, 2 threads per request made torch slower, not
    faster (gandemo.ui.app.threads_from_env). A bad value is reported and 1 used."""
    raw = os.environ.get(SEARCH_THREADS_ENV, "1")
    cores = os.cpu_count() or 1
    try:
        n = int(raw)
        if not 1 <= n <= cores:
            raise ValueError
    except ValueError:
        print(f"{SEARCH_THREADS_ENV}={raw!r} is not a whole number from 1 to {cores}; using 1", file=sys.stderr)
        n = 1
    return n


def _thresholds(ckpt: Checkpoint, category: str, method: str) -> dict[str, Any]:
    entry = task.thresholds(ckpt.card, method)
    if entry is None:
        raise ModelUnavailable(
            f"the {category} checkpoint has no calibrated thresholds for {method}; re-export it: "
            f"{TASKS[TASK].train_command(category)} --resume --export-only"
        )
    return entry


def shortfall(card: dict[str, Any]) -> str:
    """One sentence on whether this model meets its aims, from the card's `aims` ('' when met)."""
    aims = card.get("aims")
    if not aims:
        return (
            "This model has not been evaluated yet, so how well it separates defects from normal products "
            "is unknown (python -m training evaluate anomaly measures it)."
        )
    if aims.get("met"):
        return ""
    text = "This model falls short of its aim (" + "; ".join(aims.get("shortfalls", [])) + ")."
    if aims.get("why"):
        text += " Why, as measured: " + " ".join(w.rstrip(".") + "." for w in aims["why"])
    return text


def _photo(image: Any, category: str) -> Image.Image:
    """The uploaded photo, decoded and checked, or InvalidInput saying what was wrong."""
    source = image_source(image)
    if source is None:
        raise InvalidInput(f"no image was given: upload a photo of a {category.replace('_', ' ')}")
    return task.check_image(source)


@endpoint
def detect_anomaly(
    image: Any,
    category: Any,
    method: Any,
    iterations: Any,
    progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio finds its progress tracker by this default
) -> tuple[Image.Image, Image.Image, Image.Image, float, str, Image.Image, float]:
    """A photo of a product -> (heatmap overlay, defect mask, reconstruction, score, verdict, score
    plot, seconds the method took). The overlay, mask and reconstruction have the photo's size."""
    spec = TASKS[TASK]
    category = task.check_category(category, spec.variants)
    method = task.check_method(method)
    iterations = task.check_iterations(iterations)
    original = _photo(image, category)  # decoded and checked before any model work
    ckpt = registry.get(TASK, category)
    _thresholds(ckpt, category, method)
    if method != "latent_search":  # one batch of passes: no need to wait for the long-job slot
        found = task.detect(ckpt.modules, ckpt.card, original, method)
    else:
        with heavy_slot(progress, "latent search or large upscale"):
            found = task.detect(
                ckpt.modules,
                ckpt.card,
                original,
                method,
                iterations,
                progress=lambda i, n: progress((i, n), desc="latent search", unit="iterations"),
                threads=search_threads(),
            )
    verdict = found.verdict
    note = shortfall(ckpt.card)
    if note:
        verdict += " Note: " + note
    return found.overlay, found.mask, found.reconstruction, found.score, verdict, found.plot, round(found.seconds, 4)


@endpoint
def compare_baseline(image: Any, category: Any) -> tuple[Image.Image, Image.Image, Image.Image, float, str]:
    """The trivial baseline (per-pixel z-score against the normal training images, no GAN) on the same
    photo -> (heatmap overlay, mask, the normal images' mean, score, verdict), thresholds calibrated on
    the same normal validation images as the GAN's."""
    category = task.check_category(category, TASKS[TASK].variants)
    original = _photo(image, category)
    ckpt = registry.get(TASK, category)
    found = task.detect_baseline(ckpt.modules, ckpt.card, original)
    return found.overlay, found.mask, found.reconstruction, found.score, found.verdict


# ---- examples: the model's own normal images, with a defect painted on (drawn by gandemo.tasks.anomaly_examples)
DEFECTS = examples.DEFECTS
generated_normal = examples.generated_normal


def example_images(ckpts: dict[str, Checkpoint], folder: Path = EXAMPLES_DIR) -> list[tuple[Path, str, str]]:
    """Per category: (PNG path, category, what it shows): the model's own normal image and the same
    image with a defect painted on by this code (a crack, rust, a scratch). Written atomically (another
    process may be reading them)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for category, ckpt in ckpts.items():
        for label, img in examples.example_pictures(ckpt["G"], category):
            path = folder / f"{category}_{label.replace(' ', '_')}.png"
            save_example(img, path)
            out.append((path, category, label))
    return out


# ---- the tab ------------------------------------------------------------------------------------------
def _loaded(spec: TaskSpec) -> tuple[dict[str, Checkpoint], dict[str, str]]:
    """The categories whose model loads, and for the others the reason (with the training command)."""
    ckpts, missing = {}, {}
    for category in spec.variants:
        try:
            ckpts[category] = registry.get(TASK, category)
        except ModelUnavailable as exc:
            missing[category] = str(exc)
    return ckpts, missing


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else "–"


def categories_table(ckpts: dict[str, Checkpoint], missing: dict[str, str]) -> str:
    """Markdown: per category, the image AUROC on val/ of every method beside the trivial baseline's, the
    pixel AUROC of the app's method and the baseline's, and whether the model meets its aims."""
    heads = [task.METHOD_TITLES[m].split(" (")[0] for m in task.METHODS]
    lines = [
        f"| category | image AUROC: {' | '.join(heads)} | trivial baseline "
        "| pixel AUROC (inpainting / baseline) | aims |",
        "|---" * (len(heads) + 4) + "|",
    ]
    for category, ckpt in ckpts.items():
        aims = ckpt.card.get("aims") or {}
        image, pixel = aims.get("image_auroc") or {}, aims.get("pixel_auroc") or {}
        base_pixel = (ckpt.card.get("metrics") or {}).get("pixel AUROC, inpaint", {}).get("baseline")
        status = "met" if aims.get("met") else ("**falls short** (below)" if aims else "not evaluated yet")
        cells = " | ".join(_fmt(image.get(m)) for m in task.METHODS)
        lines.append(
            f"| {category} | {cells} | {_fmt(aims.get('baseline_image_auroc'))} | "
            f"{_fmt(pixel.get('inpaint'))} / {_fmt(base_pixel)} | {status} |"
        )
    for category in missing:
        lines.append(f"| {category} |" + " – |" * (len(heads) + 2) + " not trained yet |")
    return "\n".join(lines)


def shortfall_notes(ckpts: dict[str, Checkpoint], missing: dict[str, str]) -> str:
    """Markdown bullets: one per distinct note (why a model falls short, or what is missing), naming the
    categories it is about; '' when there is nothing to say."""
    said: dict[str, list[str]] = {}
    for c, k in ckpts.items():
        if shortfall(k.card):
            said.setdefault(shortfall(k.card), []).append(c)
    for c, m in missing.items():
        said.setdefault(html.escape(m, quote=False), []).append(c)  # a command's <category> stays visible
    return "\n".join(f"- **{', '.join(cs)}**: {text}" for text, cs in said.items())


def thresholds_text(ckpts: dict[str, Checkpoint]) -> str:
    """How each category's thresholds were chosen, from its card."""
    lines = []
    for category, ckpt in ckpts.items():
        cal = (ckpt.card.get("anomaly") or {}).get("calibration") or {}
        parts = []
        for method in task.METHODS:
            entry = cal.get(method)
            if entry:
                extra = f" at {entry['iterations']} iterations" if entry.get("iterations") else ""
                parts.append(
                    f"{task.METHOD_TITLES[method]}{extra}: image {entry['image_threshold']:.4g}, "
                    f"pixel {entry['pixel_threshold']:.4g}"
                )
        if parts:
            lines.append(f"- **{category}** ({cal.get('data', '?')}): " + "; ".join(parts) + ".")
    if not lines:
        return ""
    how = next(((k.card.get("anomaly") or {}).get("calibration", {}).get("how") for k in ckpts.values()), None)
    return "**How the thresholds were chosen** (from the cards): " + (how or "") + "\n\n" + "\n".join(lines)


def build(spec: TaskSpec) -> None:
    task_tab(spec, lambda ckpt: _body(spec, ckpt))


def _image(label: str, elem_id: str, download: bool = True) -> gr.Image:
    buttons = ["download", "fullscreen"] if download else ["fullscreen"]
    return gr.Image(label=label, format="png", interactive=False, height=IMAGE_HEIGHT, buttons=buttons, elem_id=elem_id)


def _body(spec: TaskSpec, default: Checkpoint) -> None:
    ckpts, missing = _loaded(spec)
    iterations_default = task.settings(default.card)["search_iterations"]
    first_method = "inpaint" if "I" in default.modules else "encoder"
    gr.Markdown(
        "Where is the defect? Upload a photo of a product (or click an example below) and pick its category: "
        "GANs trained on **normal** products only redraw it, and red is where they cannot."
    )
    with gr.Row():
        with gr.Column(scale=2, min_width=300):
            image_in = gr.Image(
                label="Photo of a product",
                type="filepath",
                sources=["upload", "clipboard"],
                height=IMAGE_HEIGHT,
                elem_id="anomaly-input",
            )
            category = gr.Dropdown(
                choices=list(spec.variants),
                value=default.card.get("variant", spec.default_variant),  # the first trained one
                label="Product category",
                elem_id="anomaly-category",
            )
            method = gr.Radio(
                choices=[(task.METHOD_TITLES[m], m) for m in task.METHODS],
                value=first_method,
                label="Method",
                elem_id="anomaly-method",
            )
            iterations = gr.Slider(
                task.ITERATIONS_MIN,
                task.ITERATIONS_MAX,
                value=iterations_default,
                step=1,
                label=f"Latent-search iterations (thresholds calibrated at {iterations_default})",
                visible=first_method == "latent_search",
                elem_id="anomaly-iterations",
            )
            run = gr.Button("Find the defect", variant="primary")
            compare = gr.Button("Compare with the trivial baseline", elem_id="anomaly-compare")
        with gr.Column(scale=3, min_width=320):
            with gr.Row():
                overlay = _image("Heatmap over the photo", "anomaly-overlay")
                mask = _image("Defect mask", "anomaly-mask")
                recon = _image("The model's reconstruction", "anomaly-reconstruction", download=False)
            with gr.Row():
                score = gr.Number(label="Anomaly score", interactive=False, elem_id="anomaly-score")
                seconds = gr.Number(
                    label="Seconds (the method's own time)", interactive=False, elem_id="anomaly-seconds"
                )
            verdict = gr.Textbox(label="Verdict", interactive=False, lines=2, elem_id="anomaly-verdict")
            plot = gr.Image(
                label="This score among the normal validation images' scores",
                format="png",
                interactive=False,
                buttons=["fullscreen"],
                elem_id="anomaly-plot",
            )
            with gr.Group(visible=False) as baseline_box:
                with gr.Row():
                    b_overlay = _image("Trivial baseline: heatmap", "anomaly-baseline-overlay")
                    b_mask = _image("Trivial baseline: mask", "anomaly-baseline-mask")
                    b_mean = _image("What it compares with: the normal images' mean", "anomaly-baseline-mean", False)
                with gr.Row():
                    b_score = gr.Number(label="Baseline z-score", interactive=False, elem_id="anomaly-baseline-score")
                    b_verdict = gr.Textbox(
                        label="Baseline verdict", interactive=False, lines=2, elem_id="anomaly-baseline-verdict"
                    )
    made = example_images(ckpts)
    examples = gr.Examples(
        [[str(path), cat, first_method] for path, cat, _ in made],
        inputs=[image_in, category, method],
        label="Examples (the model's own generated normal images, some with a defect painted on by this app's code)",
        cache_examples=False,
        elem_id="anomaly-examples",
    )
    gr.Markdown(
        "**How well each method finds defects** (AUROC on each category's validation images, never trained "
        "on; 1 = perfect, 0.5 = chance):\n\n" + categories_table(ckpts, missing),
        elem_id="anomaly-categories",
    )
    notes = shortfall_notes(ckpts, missing)
    if notes:
        with gr.Accordion("Where a model falls short, and why (measured)", open=False):
            gr.Markdown(notes)
    how_it_works(
        HOW_IT_WORKS,
        default,
        "G's images | normal val images | G(E(x)) | the inpainter's redrawing",
        more=[(f"The {c} model", k) for c, k in ckpts.items() if k is not default],
        settings=thresholds_text(ckpts),
    )

    method.change(lambda m: gr.update(visible=m == "latent_search"), method, iterations, api_visibility="private")
    inputs = [image_in, category, method, iterations]
    outputs = [overlay, mask, recon, score, verdict, plot, seconds]
    run.click(detect_anomaly, inputs, outputs, api_name="detect_anomaly", preprocess=False, **ANOMALY_CONCURRENCY)
    compare.click(
        compare_baseline,
        [image_in, category],
        [b_overlay, b_mask, b_mean, b_score, b_verdict],
        api_name="compare_baseline",
        preprocess=False,
        **ANOMALY_CONCURRENCY,
    ).success(lambda: gr.update(visible=True), None, baseline_box, api_visibility="private")
    # a clicked example is checked at once with the app's fast method
    examples.load_input_event.then(
        detect_anomaly, inputs, outputs, preprocess=False, api_visibility="private", **ANOMALY_CONCURRENCY
    )
