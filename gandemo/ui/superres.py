"""The 4x Upscale tab: upload any picture and an SRGAN (or the PSNR-trained SRResNet it started from)
makes it four times larger; a slider compares it with bicubic at the same size, a PNG download
holds it, and "Check the quality" measures both against your own picture.

`upscale(image, variant, check_quality)` is the one endpoint. Its picture reaches the task's own
decoder raw (`preprocess=False`: any mode, alpha and 16-bit kept, EXIF orientation applied, the
pixel cap checked before decoding), so a corrupt, empty, tiny or huge upload gets a plain
message and the next request is served. It runs in its own queue (`concurrency_id "superres"`,
3 at once), and a large picture also takes turns on the app's one slot for long jobs: a big
picture takes minutes on one core, and it must hold up neither the other tabs, whose events have
their own queues, nor the small pictures.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from gandemo import registry
from gandemo.checkpoint import Checkpoint
from gandemo.imaging import peek_size
from gandemo.tasks import TaskSpec, superres
from gandemo.ui.common import (
    EXAMPLES_ROOT,
    card_settings,
    draw_examples,
    endpoint,
    heavy_slot,
    how_it_works,
    image_source,
    output_path,
    result_image,
    settings_markdown,
    task_tab,
    upload_image,
)
from gandemo.validation import InvalidInput

_CAP = int(np.sqrt(superres.MAX_INPUT_PIXELS))  # the largest square picture taken
INTRO = (
    "Upload a picture and a model this project trained makes it four times larger on each side. "
    "Drag the slider to compare with bicubic interpolation at the same size. "
    f"Pictures from {superres.MIN_SIDE}×{superres.MIN_SIDE} up to {superres.MAX_INPUT_PIXELS / 1e6:.1f} MP "
    f"({_CAP}×{_CAP}); transparency and grey are kept. A large picture takes minutes on this CPU: "
    "the progress bar counts its tiles."
)
HOW_IT_WORKS = r"""
**The task.** From a picture $x$ that is four times smaller on each side, make the $4\times$
picture $G(x)$ as close as possible to the original $y$. Many originals shrink to the same small
picture, so "as close as possible" needs a definition, and the two models here take different ones.

**SRResNet (`psnr`): pixel loss.** $G$ minimises the mean squared error
$\ell_\text{MSE} = \frac{1}{r^2 WH}\sum_{x,y} \big(y - G(x)\big)^2$, i.e. it maximises PSNR. For a
detail it cannot be sure of, the average of all plausible originals has the least error, and an
average is smooth: the result is faithful but soft.

**SRGAN (`gan`): content + adversarial loss.** Starting from that SRResNet, $G$ minimises

$$\ell^{SR} = \underbrace{\ell_\text{content}}_{\text{features of } G(x) \text{ vs } y}
\;+\; 10^{-3}\,\underbrace{\big(-\log D(G(x))\big)}_{\text{adversarial}}$$

while a discriminator $D$ learns to tell original $96\times96$ crops from upscaled ones. The
**content loss** compares pictures by the features of a network trained on ImageNet instead of
pixel by pixel, so a texture shifted by a pixel is not punished as if it were wrong. The paper
uses VGG19; its ImageNet weights cannot be downloaded where this model was trained, so the
content loss here uses TF-Inception v3's features (the FID network, which ships inside a Python
package), plus a small pixel term that keeps the colours (the card says exactly which). The
**adversarial term** pushes $G$ off the blurry average towards pictures $D$ cannot tell from
real photos: sharper edges and texture, at some cost in PSNR, and some of that detail is
plausible rather than true.

**Residual blocks.** $G$ works at the small size: a $9\times9$ convolution, then residual blocks
Conv-BatchNorm-PReLU-Conv-BatchNorm that each add a correction to their input ($x + F(x)$), so a
deep stack starts close to the identity and trains easily; a long skip spans them all. Here $G$
also adds its output to the bicubic enlargement of its input, so it only has to learn what
bicubic misses.

**Pixel shuffle.** Upsampling is two sub-pixel convolutions: a $3\times3$ convolution makes four
times the channels, and a pixel shuffle rearranges each group of four channels into a $2\times2$
block of pixels. Twice that is $4\times$, and every convolution but the last $9\times9$ one runs
at the small size, where it is 16 times cheaper.

**Any size.** The picture is upscaled in overlapping tiles of at most $176\times176$ input pixels,
equal along a side and no larger than covering it needs, each with 16 pixels of context around
it, and the tiles are blended across their 16-pixel shared bands, so there are no seams and
memory stays bounded. Transparency is enlarged separately (by
bicubic); a grey picture stays grey.

**Check the quality** does what the papers do: it crops your picture to a multiple of 4, shrinks
it $4\times$ by bicubic interpolation, upscales that back with bicubic and with the model, and
measures both against your picture: PSNR and SSIM on the luma Y, with a 4-pixel border left out.
"""

# Upscales have a queue of their own (other tabs keep theirs) with 3 places. A picture of more than
# HEAVY_UPSCALE_PIXELS (256x256: 3 s and up on one core; 2048x2048 takes minutes) also takes turns on
# the app's one slot for long jobs (`heavy_slot`, shared with anomaly latent searches): two in
# parallel would only halve both on 2 vCPUs. Small pictures (the examples: 160x120, ~0.6 s) go past.
SUPERRES_CONCURRENCY = {"concurrency_limit": 3, "concurrency_id": "superres"}
HEAVY_UPSCALE_PIXELS = 256 * 256
NOTHING_TO_UPSCALE = "nothing to upscale: upload a picture (PNG, JPEG, WebP, BMP, GIF or TIFF)"
QUALITY_HEADERS = ["upscaled from your picture shrunk 4×", "PSNR-Y (dB)", "SSIM-Y"]
LABELS = {"gan": "SRGAN (gan): sharper", "psnr": "SRResNet (psnr): smoother, higher PSNR"}
EXAMPLES_DIR = EXAMPLES_ROOT / "superres"
FAST_PNG_PIXELS = 4_000_000  # bigger outputs are written with light PNG compression (seconds, not a minute)


def _png(image: Image.Image, name: str) -> str:
    path = output_path(name)
    image.save(path, format="PNG", compress_level=6 if image.width * image.height <= FAST_PNG_PIXELS else 1)
    return str(path)


def quality_table(measured: dict[str, dict[str, float]] | None) -> dict[str, Any]:
    """The quality check as the table's value: one row for bicubic, one for the model."""
    if not measured:
        return {"headers": QUALITY_HEADERS, "data": []}
    names = {"bicubic": "bicubic", "model": "this model"}
    rows = [[names[k], round(v["psnr_y"], 2), round(v["ssim_y"], 4)] for k, v in measured.items()]
    return {"headers": QUALITY_HEADERS, "data": rows}


@endpoint
def upscale(
    image: Any,
    variant: Any = "gan",
    check_quality: Any = False,
    progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio finds its progress tracker by this default
) -> tuple[str, tuple[str, str], str, dict[str, Any]]:
    """A picture (any mode and size up to 2048x2048) -> (its 4x PNG by the model, (bicubic 4x, model
    4x) for the slider, the PNG file, the quality table: bicubic and model, PSNR/SSIM on Y, empty
    unless `check_quality`)."""
    variant = superres.check_variant(variant)  # every input checked before any work
    check = superres.check_flag(check_quality, "check_quality")
    source = image_source(image)
    if source is None:
        raise InvalidInput(NOTHING_TO_UPSCALE)
    G = registry.get("superres", variant)["G"]

    def tiles(done: int, total: int) -> None:
        if total > 1:  # a small picture is one tile: nothing to show
            progress((done, total), desc="upscaling, tile by tile", unit="tiles")

    size = peek_size(source)
    heavy = size is not None and size[0] * size[1] > HEAVY_UPSCALE_PIXELS
    with heavy_slot(progress, "large upscale or latent search") if heavy else contextlib.nullcontext():
        result = superres.upscale(G, source, progress=tiles)
        model_png = _png(result.image, f"upscaled_4x_{variant}.png")
        bicubic_png = _png(result.bicubic, "bicubic_4x.png")
        measured = None
        if check:
            progress(None, desc="checking the quality")
            measured = superres.quality_check(G, source)
    return model_png, (bicubic_png, model_png), model_png, quality_table(measured)


# ---- examples: pictures drawn by this code ----------------------------------------------------------
def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _sign(d: ImageDraw.ImageDraw) -> None:
    d.rectangle((0, 0, 160, 120), fill=(245, 240, 225))
    d.text((10, 12), "GAN Studio", fill=(30, 30, 90), font=_font(22))
    d.text((10, 44), "4x upscale: small text,", fill=(40, 40, 40), font=_font(11))
    d.text((10, 58), "thin lines and edges", fill=(40, 40, 40), font=_font(11))
    for i in range(8):
        d.line((10 + 6 * i, 80, 10 + 6 * i, 110), fill=(20, 20, 20), width=1)
    d.ellipse((80, 78, 150, 112), outline=(180, 30, 30), width=2)


def _rings(d: ImageDraw.ImageDraw) -> None:
    d.rectangle((0, 0, 160, 120), fill="white")
    for i, r in enumerate(range(58, 0, -4)):
        d.ellipse((80 - r, 60 - r, 80 + r, 60 + r), outline=(200, 60, 20) if i % 4 == 0 else (0, 0, 0), width=2)


def _landscape(d: ImageDraw.ImageDraw) -> None:
    for y in range(120):  # sky
        d.line((0, y, 160, y), fill=(110 + y // 2, 160 + y // 3, 235))
    d.polygon([(0, 80), (40, 55), (80, 75), (120, 45), (160, 70), (160, 120), (0, 120)], fill=(60, 120, 60))
    d.rectangle((90, 78, 130, 108), fill=(200, 170, 130), outline=(80, 50, 30))
    d.polygon([(86, 80), (110, 62), (134, 80)], fill=(150, 40, 40))
    for x in (96, 116):
        d.rectangle((x, 86, x + 8, 94), fill=(90, 140, 200), outline=(60, 40, 30))
    d.ellipse((12, 10, 36, 34), fill=(255, 220, 90))


EXAMPLES = {"sign": _sign, "rings": _rings, "landscape": _landscape}


def example_pictures(folder: Path = EXAMPLES_DIR) -> list[Path]:
    """The example pictures as 160x120 PNGs in `folder` (rewritten atomically on every build: another
    process may be reading them)."""
    return draw_examples(folder, EXAMPLES, "RGB", (160, 120), "white")


# ---- the tab ----------------------------------------------------------------------------------------
def model_settings(card: dict[str, Any]) -> str:
    """A model's settings from its card, as one Markdown paragraph ('' if it has none)."""
    hp, g = card_settings(card)
    parts = []
    if g:
        parts.append(
            f"SRResNet with {g.get('blocks', '?')} residual blocks of {g.get('channels', '?')} channels"
            + (", plus the bicubic enlargement" if g.get("bicubic_skip") else "")
        )
    if card.get("objective"):
        parts.append(f"loss: {card['objective']}")
    if card.get("content_loss") and card.get("variant") == "gan":
        parts.append(f"content network: {card['content_loss']}")
    if "crop" in hp:
        parts.append(f"HR crops of {hp['crop']}×{hp['crop']}")
    if hp.get("init"):
        parts.append(f"started from {hp['init']}")
    return settings_markdown(card, parts, heading=f"{card.get('variant', '?')} settings")


def build(spec: TaskSpec) -> None:
    task_tab(spec, _body, INTRO)


def _body(ckpt: Checkpoint) -> None:
    with gr.Row():
        with gr.Column(scale=2, min_width=300):
            picture = upload_image("Your picture", 300, image_mode=None, elem_id="superres-input")
            variant = gr.Radio(
                [(LABELS[v], v) for v in superres.VARIANTS],
                # the variant task_tab could load: an untrained one would answer "not trained yet"
                value=ckpt.card.get("variant", superres.VARIANTS[0]),
                label="Model",
                elem_id="superres-variant",
            )
            check = gr.Checkbox(
                value=False,
                label="Check the quality: shrink my picture 4×, upscale it back, measure PSNR/SSIM against it",
                elem_id="superres-check",
            )
            run = gr.Button("Upscale 4×", variant="primary")
        with gr.Column(scale=3, min_width=320):
            upscaled = result_image("Upscaled 4× (PNG)", "superres-output", type="filepath")
            slider = gr.ImageSlider(
                label="Bicubic (left) ◀ ▶ the model (right), the same size",
                type="filepath",
                format="png",
                interactive=False,
                elem_id="superres-slider",
            )
            download = gr.File(label="Download the PNG", interactive=False, elem_id="superres-file")
            table = gr.Dataframe(
                value=quality_table(None),
                headers=QUALITY_HEADERS,
                label="Quality check",
                interactive=False,
                elem_id="superres-quality",
            )
    examples = gr.Examples(
        [[str(p)] for p in example_pictures()],
        inputs=[picture],
        label="Examples (drawn by this app's code): click one to upscale it",
        cache_examples=False,
        elem_id="superres-examples",
    )

    more = []
    if registry.status("superres", "psnr") is None:
        more.append(("The PSNR model (SRResNet, variant psnr)", registry.get("superres", "psnr")))
    how_it_works(
        HOW_IT_WORKS,
        ckpt,
        "Held-out photos: the 4× smaller input (shown 4× larger) | bicubic | the model | the original",
        more=more,
        settings="\n\n".join(s for s in (model_settings(c.card) for c in [ckpt, *(c for _, c in more)]) if s),
    )

    outputs = [upscaled, slider, download, table]
    run.click(
        upscale,
        [picture, variant, check],
        outputs,
        api_name="upscale",
        preprocess=False,
        **SUPERRES_CONCURRENCY,
    )
    examples.load_input_event.then(
        upscale, [picture, variant, check], outputs, preprocess=False, api_visibility="private", **SUPERRES_CONCURRENCY
    )
