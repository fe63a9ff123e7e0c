"""The Edges → Photo tab: draw a shoe (or upload an edge map, or let the app find a photo's edges)
and the Pix2Pix generator turns it into a photo; beside it, the edges as the model saw them.

Both endpoints take a plain image and hand it, raw (`preprocess=False`), to the task's own decoder
(`gandemo.imaging.load_image`: pixel cap, any mode, transparency on white) and checks, never to
Gradio's: a corrupt, empty, huge or blank picture gets the task's own plain message and the next
request is served. Their input is the "What goes in" image. The sketchpad reaches it through a
private step that passes on its composite (a PNG the browser's canvas made, decoded by Gradio's
image editor); an example or an extracted edge map is put there directly. So the page and an API
client go through the same door.

`edges_to_photo(image[, colour])`: the colour is an optional second input ("automatic", the default,
or "#rrggbb"), so a call with the image alone answers as it always did. The page follows the pen:
each change of the sketchpad re-draws the photo through a private step (`live_photo`), the latest
drawing winning (`trigger_mode="always_last"`: while one drawing is converted, further strokes
leave one pending request, never a queue); the button stays for API users and for a second look.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image, ImageDraw

from gandemo import registry
from gandemo.checkpoint import Checkpoint
from gandemo.tasks import TaskSpec, edges2photo
from gandemo.ui.common import (
    EXAMPLES_ROOT,
    card_settings,
    draw_examples,
    endpoint,
    how_it_works,
    result_image,
    settings_markdown,
    task_tab,
    upload_image,
)
from gandemo.ui.common import image_source as _file
from gandemo.validation import InvalidInput

INTRO = (
    "Sketch a shoe and a Pix2Pix model this project trained on shoe photos draws it as a photo, "
    "following your pen as you draw. Draw the outline with the black brush (pick its size in the brush "
    "menu; undo and clear are above the canvas), upload an edge map, or start from a photo of a shoe "
    "(plain white around it works best, like the photos it learnt from; a busy background is cut away "
    "first). Edges carry no colour: leave it to the model, or pick one."
)
HOW_IT_WORKS = r"""
**The game, with a condition.** Pix2Pix (Isola et al., 2017) is a *conditional* GAN: the generator
$G$ sees an edge map $x$ and draws a photo $G(x)$; the discriminator $D$ sees the edge map *and* a
photo and says whether the photo is the real one $y$ for those edges. The adversarial part is

$$\mathcal{L}_\text{cGAN}(G, D) = \mathbb{E}_{x,y}[\log D(x, y)] + \mathbb{E}_{x}[\log(1 - D(x, G(x)))]$$

and $G$ is also pulled towards the true photo, pixel by pixel, by the L1 distance
$\mathcal{L}_{L1}(G) = \mathbb{E}_{x,y}\lVert y - G(x) \rVert_1$:

$$G^* = \arg\min_G \max_D \; \mathcal{L}_\text{cGAN}(G, D) + \lambda \, \mathcal{L}_{L1}(G), \qquad \lambda = 100$$

The **L1 term** alone gives the right colours in the right places, but blurry: for an uncertain
detail the average of all plausible photos has the least L1 error. The **GAN term** punishes blur,
because a blurry photo is easy for $D$ to call fake. As with the faces, $G$ minimises the
non-saturating $-\log D(x, G(x))$, and $D$'s loss is halved (the paper's choice, so $D$ learns
more slowly than $G$).

**U-Net generator.** The encoder halves the picture seven times, 128 → 64 → … → 1
(Conv-BatchNorm-LeakyReLU), and the decoder doubles it back (-BatchNorm-ReLU, Tanh at the end):
with the paper's transposed convolutions, or, against their **checkerboard**, by resizing (nearest
neighbour) and then convolving (3×3), which treats every output pixel alike (Odena et al., 2016;
the settings below say which this model uses). **Skip connections** hand each encoder block's
output straight to its mirrored decoder block (concatenated on channels), so where the edges are
reaches the output without squeezing
through the 1×1 bottleneck: the photo lines up with the edges pixel for pixel. The paper keeps
dropout on at test time as $G$'s only noise; $G$ learns to ignore it, so here dropout acts only
while training and the same edges always give the same photo.

**PatchGAN discriminator.** $D$ does not give one verdict per picture but one per patch: three
strided 4×4 convolutions and two more, so each logit sees a **70×70** window of the (edges, photo)
pair. On a 128×128 pair that is a 14×14 grid of overlapping windows (stride 8, each covering 55 %
of the side), averaged into the loss. L1 already takes care of the large-scale layout, so $D$
only has to judge local texture and sharpness, with far fewer weights than a whole-image judge.

**Your sketch → the model's edges.** The model learnt from edge maps drawn from shoe photos by one
recipe (silhouette outline + Canny edges inside it, 1-px lines, the shoe filling a 122×94 box and
standing 17 px above the bottom of a 128×128 frame). A drawing is brought to that style: cropped
to its strokes, scaled into that box, small gaps closed and the strokes thinned to 1 px, whatever
the brush. An edge map that already looks like the training ones (such as the app's "Extract
edges from a photo", which uses that very recipe) keeps its geometry. The middle picture shows
exactly what the model saw. The recipe expects a shoe on plain white, as in the catalogue photos;
from a photo on a busy background the shoe is first cut out with GrabCut (colour models of object
and background, refined by a graph cut), so the background's edges do not reach the model.

**Sketches and colour.** The data's edge maps hold every seam and lace; people draw an outline and
a few lines. So a model of the second version (the settings below say whether this is one) also
trained on half of its edge maps redrawn like a drawing (outline only or some interior lines,
wobbly, thick or open strokes, thinned as above). And edges carry no colour: during training $G$
was told the photo's dominant colour (the median colour of the shoe, in CIELAB) for half of the
pairs, as three constant input planes and a "given" plane, and nothing for the other half, so
"automatic" lets it guess and a swatch asks for a colour.
"""

# Both endpoints share one limit of 2, like the faces ones: one request in the model while
# another's pictures are decoded, normalised or sent; more would only queue inside torch.
EDGES_CONCURRENCY = {"concurrency_limit": 2, "concurrency_id": "edges"}

# The sketchpad's canvas, px (an uploaded picture sets its own size), shown at PAD_HEIGHT. 256, not 512:
# with live drawing the browser exports the canvas as PNGs after every stroke, and in headless Chromium
# on these busy cores that took 300-500 ms at 512 and 55-135 ms at 256; the model sees 128 px anyway.
CANVAS = 256
PAD_HEIGHT = 512
IMAGE_HEIGHT = 256  # the pictures beside it, px (128x128 pictures shown at twice their size)
CUT_OUT_NOTE = (
    "The photo's background is not plain white, unlike the shoe photos the model learnt from, so the "
    "shoe was cut out of it first (GrabCut) and only its edges were drawn."
)
NOTHING_TO_CONVERT = "nothing to convert: draw the outline of a shoe, or upload an edge map or a photo"
BLANK = "the sketch is blank"  # normalise_sketch's message for a pad with (next to) nothing on it
DEFAULT_PICK = "#b22222"  # the swatch's first colour once "automatic" is unticked (a red no edge map suggests)
EXAMPLES_DIR = EXAMPLES_ROOT / "edges2photo"


@endpoint
def photo_to_edges(image: Any) -> Image.Image:
    """A photo of a shoe -> its 128x128 edge map (black lines on white), by the training data's recipe."""
    edges = edges2photo.photo_to_edges(_file(image))
    if edges.info.get("cut_out"):
        gr.Info(CUT_OUT_NOTE)
    return edges


@endpoint
def edges_to_photo(image: Any, colour: Any = edges2photo.AUTOMATIC) -> tuple[Image.Image, Image.Image]:
    """A sketch or an edge map (any size and mode; transparent parts count as white) and the shoe's
    colour ("automatic" or "#rrggbb") -> (the edges as the model saw them, the photo), both 128x128 PNG."""
    source = _file(image)  # checked before any work: here, then by load_image and the task
    if source is None:
        raise InvalidInput(NOTHING_TO_CONVERT)
    rgb = edges2photo.parse_colour(colour)
    G = registry.get("edges2photo")["G"]
    return edges2photo.edges_to_photo(G, source, rgb)


@endpoint
def live_photo(image: Any, colour: Any = edges2photo.AUTOMATIC) -> tuple[Any, Any]:
    """`edges_to_photo` for the page while drawing: nothing to show yet (an empty or blank pad, the
    first dots of a stroke) clears the pictures instead of raising a message at every stroke; any
    other problem is answered like the button's."""
    if _file(image) is None:
        return None, None
    try:
        return edges_to_photo.__wrapped__(image, colour)  # the plain function: its InvalidInput is caught here
    except InvalidInput as exc:
        if BLANK in str(exc):
            return None, None
        raise


def chosen_colour(automatic: bool, picked: str | None) -> str:
    """The page's two colour controls -> the endpoint's colour input: "automatic" or the swatch's colour."""
    return edges2photo.AUTOMATIC if automatic or not picked else picked


def sketch_input(value: dict[str, Any] | None) -> str | None:
    """The sketchpad's value {background, layers, composite} (files) -> the picture to convert:
    the composite (the strokes over the background; transparent where nothing was drawn, which
    load_image takes as white), else the background. None when the pad is empty, which
    `edges_to_photo` then answers in plain words."""
    if not value:
        return None
    return value.get("composite") or value.get("background")


def _live_from_pad(value: dict[str, Any] | None, colour: Any) -> tuple[Any, Any, Any]:
    """The pad's drawing -> (what goes in, the edges, the photo), for the live event."""
    source = sketch_input(value)
    return (source, *live_photo(source, colour))


def _to_sketchpad(image: Any) -> Any:
    """An extracted edge map or a clicked example, as the sketchpad's new picture (to draw on)."""
    return _file(image)


# ---- examples: shoes drawn by this code, never taken from the data set -----------------------------
def _sneaker(d: ImageDraw.ImageDraw) -> None:
    d.line([(28, 196), (226, 196), (238, 184), (236, 170), (214, 152)], fill=0, width=4, joint="curve")  # sole, toe
    d.line([(30, 182), (232, 182)], fill=0, width=4)  # midsole
    d.line([(28, 196), (26, 132), (44, 108), (76, 106), (96, 124), (128, 116)], fill=0, width=4, joint="curve")
    d.line([(128, 116), (168, 132), (214, 152)], fill=0, width=4, joint="curve")  # vamp
    d.line([(96, 124), (122, 160), (168, 170), (214, 152)], fill=0, width=4, joint="curve")  # side panel
    for x in (112, 128, 144, 160):  # laces
        d.line([(x, 118 + (x - 112) // 3), (x + 8, 134 + (x - 112) // 3)], fill=0, width=4)
    d.ellipse([(40, 140), (58, 158)], outline=0, width=4)  # heel logo


def _boot(d: ImageDraw.ImageDraw) -> None:
    d.line([(62, 34), (64, 206), (226, 206), (232, 190), (220, 168), (164, 148), (138, 128)], fill=0, width=4)
    d.line([(138, 128), (132, 34), (62, 34)], fill=0, width=4)  # shaft front, top opening
    d.line([(64, 190), (228, 190)], fill=0, width=4)  # sole
    d.line([(64, 206), (64, 190), (104, 190), (104, 206)], fill=0, width=4)  # heel block
    d.line([(98, 34), (100, 120)], fill=0, width=4)  # zip
    d.line([(132, 90), (150, 146)], fill=0, width=4)  # ankle seam


def _heel(d: ImageDraw.ImageDraw) -> None:
    outline = [(46, 92), (54, 118), (70, 132), (120, 168), (170, 192), (220, 200), (238, 196), (240, 184)]
    d.line(outline + [(226, 172), (190, 158), (150, 140)], fill=0, width=4, joint="curve")  # heel, sole, toe, vamp
    d.line([(150, 140), (100, 124), (70, 104), (46, 92)], fill=0, width=4, joint="curve")  # the opening
    d.line([(56, 124), (60, 210), (70, 210), (74, 136)], fill=0, width=4)  # stiletto
    d.line([(170, 192), (176, 206), (226, 206), (238, 196)], fill=0, width=4, joint="curve")  # sole under the toe


EXAMPLES = {"sneaker": _sneaker, "boot": _boot, "high heel": _heel}


def blank_sheet(folder: Path = EXAMPLES_DIR) -> Path:
    """The sketchpad's starting sheet: white, CANVAS x CANVAS, drawn by the app (like the examples)."""
    return draw_examples(folder, {"blank sheet": lambda d: None}, "L", (CANVAS, CANVAS), 255)[0]


def example_sketches(folder: Path = EXAMPLES_DIR) -> list[Path]:
    """The example sketches as PNGs in `folder` (rewritten atomically on every build: another
    process may be reading them), black 4-px strokes on a white 256x256 canvas."""
    return draw_examples(folder, EXAMPLES, "L", (256, 256), 255)


# ---- the tab ----------------------------------------------------------------------------------------
def model_settings(card: dict[str, Any]) -> str:
    """The shipped model's settings from its card, as one Markdown paragraph ('' if it has none)."""
    hp, g = card_settings(card)
    parts = []
    if card.get("objective"):
        parts.append(f"objective {card['objective']}")
    if "lambda_l1" in hp:
        parts.append(f"λ = {hp['lambda_l1']:g}")
    if g:
        parts.append(
            f"U-Net depth {g.get('depth', '?')}, first width {g.get('ngf', '?')}, widths capped at "
            f"{g.get('ngf', 0) * g.get('max_mult', 0) or '?'}"
        )
        decoders = {"resize": "nearest-neighbour resize", "bilinear": "bilinear resize"}
        upsample = g.get("upsample", "transposed")
        parts.append(
            f"decoder: {decoders[upsample]} then 3×3 convolution"
            if upsample in decoders
            else "decoder: transposed convolutions"
        )
        if g.get("in_channels", 3) > 3:
            parts.append("a colour input (hint planes + a 'given' plane)")
    if hp.get("sketch_p"):
        parts.append(f"{hp['sketch_p']:.0%} of the training edge maps redrawn like sketches")
    if "ndf" in hp:
        parts.append(f"PatchGAN width {hp['ndf']}, {hp.get('d_layers', '?')} strided layers")
    return settings_markdown(card, parts)


def build(spec: TaskSpec) -> None:
    task_tab(spec, _body, INTRO)


def _body(ckpt: Checkpoint) -> None:
    colour_model = edges2photo.takes_colour(ckpt["G"])
    with gr.Row():
        with gr.Column(scale=2, min_width=320):
            sketch = gr.ImageEditor(
                # A blank sheet to start from, not an empty editor: Gradio 6's editor skips the first edit
                # event of an empty pad (it takes it for its own loading), which would swallow the first
                # stroke; with a sheet loaded, that event is the sheet's and every stroke is announced.
                value={"background": str(blank_sheet()), "layers": [], "composite": None},
                label="Your sketch (black strokes on white) or an edge map",
                type="filepath",
                sources=("upload", "clipboard"),
                brush=gr.Brush(colors=["#000000"], color_mode="fixed", default_size=3),
                eraser=gr.Eraser(default_size=8),
                layers=False,
                transforms=(),
                canvas_size=(CANVAS, CANVAS),
                format="png",
                height=PAD_HEIGHT,
                elem_id="edges-sketch",
            )
            with gr.Row(visible=colour_model):  # a model trained without colour hints gets no swatch
                automatic = gr.Checkbox(
                    value=True, label="Automatic colour (the model guesses)", elem_id="edges-colour-auto"
                )
                picker = gr.ColorPicker(
                    value=DEFAULT_PICK, label="Shoe colour", interactive=False, elem_id="edges-colour-pick"
                )
            # what the endpoint takes after the image: "automatic" or "#rrggbb" (the API's optional input)
            colour = gr.Textbox(value=edges2photo.AUTOMATIC, label="Colour", visible=False)
            convert = gr.Button("Make the photo", variant="primary")
        with gr.Column(scale=3, min_width=320):
            with gr.Row():
                input_img = gr.Image(
                    label="What goes in",
                    type="filepath",
                    format="png",
                    interactive=False,
                    buttons=["fullscreen"],
                    height=IMAGE_HEIGHT,
                    elem_id="edges-input",
                )
                edges_out = result_image("Edges as the model saw them", "edges-normalised", IMAGE_HEIGHT)
                photo_out = result_image("The photo (128×128 PNG)", "edges-photo", IMAGE_HEIGHT)
            with gr.Accordion("Start from a photo", open=False):
                photo_in = upload_image(
                    "A photo of a shoe (best on plain white; a busy background is cut away)", IMAGE_HEIGHT
                )
                extract = gr.Button("Extract edges from a photo")
    examples = gr.Examples(
        [[str(p)] for p in example_sketches()],
        inputs=[input_img],
        label="Examples (drawn by this app's code): click one to convert it",
        cache_examples=False,
    )

    how_it_works(HOW_IT_WORKS, ckpt, "Held-out edges, photos, real photos", settings=model_settings(ckpt.card))

    # Both endpoints take the "What goes in" image raw (preprocess=False): the file reaches load_image,
    # which answers a corrupt, empty or huge one in plain words. The sketchpad's drawing gets there
    # through a private step (Gradio's editor decodes the canvas's PNG: not reachable from the API).
    convert.click(sketch_input, [sketch], [input_img], api_visibility="private").success(
        edges_to_photo,
        [input_img, colour],
        [edges_out, photo_out],
        api_name="edges_to_photo",
        preprocess=False,
        **EDGES_CONCURRENCY,
    )
    # Live: each change of the pad (a stroke, an undo, a clear, an upload) re-draws the photo. One
    # private event does both steps (one round trip), "always_last" keeps at most one request of a
    # session pending (the latest drawing), and no progress overlay flickers over the pictures.
    live = {"trigger_mode": "always_last", "show_progress": "hidden", "api_visibility": "private"}
    # `input`, not `change`: measured in Chromium, the editor announces every stroke as `input`, but
    # `change` only for some of them.
    sketch.input(_live_from_pad, [sketch, colour], [input_img, edges_out, photo_out], **live, **EDGES_CONCURRENCY)
    # The colour follows the same way: the controls set the endpoint's input, then the picture is re-drawn.
    for control in (automatic, picker):
        control.change(chosen_colour, [automatic, picker], [colour], api_visibility="private", show_progress="hidden")
    automatic.change(lambda a: gr.update(interactive=not a), [automatic], [picker], api_visibility="private")
    colour.change(
        live_photo, [input_img, colour], [edges_out, photo_out], preprocess=False, **live, **EDGES_CONCURRENCY
    )
    found = extract.click(
        photo_to_edges, [photo_in], [input_img], api_name="photo_to_edges", preprocess=False, **EDGES_CONCURRENCY
    )
    # An example or an extracted edge map is converted as it is (a training-like map keeps its
    # geometry pixel for pixel) and also put on the sketchpad, to draw on and convert again.
    for loaded in (examples.load_input_event.then, found.success):
        loaded(
            edges_to_photo,
            [input_img, colour],
            [edges_out, photo_out],
            preprocess=False,
            api_visibility="private",
            **EDGES_CONCURRENCY,
        )
        loaded(_to_sketchpad, [input_img], [sketch], preprocess=False, api_visibility="private")
