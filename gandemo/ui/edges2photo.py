"""The Edges → Photo tab: draw a shoe (or upload an edge map, or let the app find a photo's edges)
and the Pix2Pix generator turns it into a photo; beside it, the edges as the model saw them.

Both endpoints take a plain image and hand it, raw (`preprocess=False`), to the task's own decoder
(`gandemo.imaging.load_image`: pixel cap, any mode, transparency on white) and checks, never to
Gradio's: a corrupt, empty, huge or blank picture gets the task's own plain message and the next
request is served. Their input is the "What goes in" image. The sketchpad reaches it through a
private step that passes on its drawing (a PNG the page's canvas made, sent as a data URL);
an example, an uploaded sketch or an extracted edge map is put there directly. So the page and an
API client go through the same door.

The sketchpad is a plain 2-D canvas in a `gr.HTML` (pen, three widths, eraser, undo, clear), not
Gradio's image editor: for live drawing the editor exported its WebGL canvas as three PNGs and
uploaded them twice after every stroke, about 0.9 s in headless Chromium on these cores, where the
canvas's own `toDataURL` sent with the event takes a few milliseconds.

`edges_to_photo(image[, colour])`: the colour is an optional second input ("automatic", the default,
or "#rrggbb"), so a call with the image alone answers as it always did. The page follows the pen:
each change of the sketchpad re-draws the photo through a private step (`live_photo`), the latest
drawing winning (`trigger_mode="always_last"`: while one drawing is converted, further strokes
leave one pending request, never a queue); the button stays for API users and for a second look.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from gandemo import registry
from gandemo.checkpoint import Checkpoint
from gandemo.imaging import load_image
from gandemo.tasks import TaskSpec, edges2photo
from gandemo.ui.common import (
    EXAMPLES_ROOT,
    card_settings,
    draw_examples,
    endpoint,
    how_it_works,
    output_path,
    result_image,
    settings_markdown,
    task_tab,
    upload_image,
)
from gandemo.ui.common import image_source as _file
from gandemo.validation import InvalidInput

INTRO = (
    "Sketch a shoe and a Pix2Pix model this project trained on shoe photos draws it as a photo, "
    "following your pen as you draw. Draw the outline with the black pen (its width, an eraser, undo and "
    "clear are above the canvas), upload a sketch or an edge map, or start from a photo of a shoe "
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

# The sketchpad's canvas, px, shown up to PAD_HEIGHT wide: the model sees 128 px anyway, and a
# smaller canvas is a smaller PNG to send after every stroke.
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


PAD_PREFIX = "data:image/png;base64,"
PAD_MAX_CHARS = 4_000_000  # a 256x256 drawing is a few kB; a hand-made request may not be megabytes


def pad_picture(value: Any) -> str | None:
    """The sketchpad's value (the PNG data URL its canvas made) -> the PNG saved as a file (the "What
    goes in" picture); None when the pad has sent nothing yet. Anything else is refused in plain words."""
    if not value:
        return None
    if not isinstance(value, str) or not value.startswith(PAD_PREFIX) or len(value) > PAD_MAX_CHARS:
        raise InvalidInput("the sketchpad sent something that is not a drawing (a PNG data URL)")
    try:
        png = base64.b64decode(value[len(PAD_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("the sketchpad's drawing could not be read (broken base64)") from None
    path = output_path("sketch.png")
    path.write_bytes(png)
    return str(path)


@endpoint
def pad_input(value: Any) -> str | None:
    """The button's first step: the pad's drawing as the "What goes in" picture (None: an empty pad,
    which `edges_to_photo` then answers in plain words)."""
    return pad_picture(value)


@endpoint
def _live_from_pad(value: Any, colour: Any) -> tuple[Any, Any, Any]:
    """The pad's drawing -> (what goes in, the edges, the photo), for the live event."""
    source = pad_picture(value)
    return (source, *live_photo.__wrapped__(source, colour))


def _to_pad(image: Any) -> str:
    """An extracted edge map, an uploaded sketch or a clicked example, as the pad's new picture (a PNG
    data URL, at most CANVAS on its long side: the pad draws it fitted and centred, to draw on)."""
    import io

    picture = load_image(_file(image))
    picture.thumbnail((CANVAS, CANVAS), Image.Resampling.NEAREST)  # keeps 1-px lines black
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return PAD_PREFIX + base64.b64encode(buffer.getvalue()).decode("ascii")


# The pad: a 2-D canvas of CANVAS px shown at PAD_HEIGHT, white paper, black pen. Each finished stroke,
# undo or clear puts the canvas into the component's value and triggers `input`; a picture the server
# puts into the value (an example, an upload, an extracted edge map) is drawn onto the canvas, fitted.
PAD_HTML = f"""
<div class="pad">
  <div class="tools">
    <select data-act="size" aria-label="Pen width"><option value="2">thin</option>
      <option value="3" selected>medium</option><option value="6">thick</option></select>
    <button data-act="erase" aria-label="Eraser" type="button">eraser</button>
    <button data-act="undo" aria-label="Undo" type="button">undo</button>
    <button data-act="clear" aria-label="Clear" type="button">clear</button>
  </div>
  <canvas width="{CANVAS}" height="{CANVAS}" aria-label="Sketchpad: draw a shoe"></canvas>
</div>
"""
PAD_CSS = f"""
.pad canvas {{ width: 100%; max-width: {PAD_HEIGHT}px; aspect-ratio: 1; border: 1px solid #ccc;
  background: #fff; touch-action: none; cursor: crosshair; display: block; }}
.pad .tools {{ display: flex; gap: 6px; margin-bottom: 6px; }}
.pad .tools button {{ border: 1px solid #ccc; border-radius: 4px; padding: 2px 10px; background: #fff; }}
.pad .tools button.on {{ background: #ddd; }}
"""
PAD_JS = """
const c = element.querySelector('canvas');
const g = c.getContext('2d', {willReadFrequently: true});
const S = c.width;
let down = false, last = null, sent = '', erase = false, width = 3;
const undo = [];
const blank = () => { g.fillStyle = '#fff'; g.fillRect(0, 0, S, S); };
const snap = () => { undo.push(g.getImageData(0, 0, S, S)); if (undo.length > 30) undo.shift(); };
const send = () => { sent = c.toDataURL('image/png'); props.value = sent; trigger('input'); };
const at = e => { const r = c.getBoundingClientRect();
  return [(e.clientX - r.left) * S / r.width, (e.clientY - r.top) * S / r.height]; };
const line = (a, b) => { g.beginPath(); g.moveTo(a[0], a[1]); g.lineTo(b[0], b[1]); g.stroke(); };
blank();
c.addEventListener('pointerdown', e => {
  if (e.button !== 0) return;
  down = true; c.setPointerCapture(e.pointerId); snap(); last = at(e);
  g.strokeStyle = erase ? '#fff' : '#000'; g.lineWidth = erase ? 4 * width : width;
  g.lineCap = 'round'; g.lineJoin = 'round'; line(last, last);
});
c.addEventListener('pointermove', e => { if (!down) return; const p = at(e); line(last, p); last = p; });
const end = () => { if (!down) return; down = false; send(); };
c.addEventListener('pointerup', end);
c.addEventListener('pointercancel', end);
element.querySelector('[data-act=size]').addEventListener('change', e => { width = +e.target.value; });
element.querySelector('[data-act=erase]').addEventListener('click', e => {
  erase = !erase; e.currentTarget.classList.toggle('on', erase); });
element.querySelector('[data-act=undo]').addEventListener('click', () => {
  if (undo.length) { g.putImageData(undo.pop(), 0, 0); send(); } });
element.querySelector('[data-act=clear]').addEventListener('click', () => { snap(); blank(); send(); });
watch('value', () => {
  const v = props.value;
  if (!v || v === sent) return;
  const img = new Image();
  img.onload = () => {
    snap(); blank();
    const k = Math.min(S / img.width, S / img.height), w = img.width * k, h = img.height * k;
    g.imageSmoothingEnabled = false;
    g.drawImage(img, (S - w) / 2, (S - h) / 2, w, h);
    sent = c.toDataURL('image/png');
  };
  img.src = v;
});
"""


# ---- examples: shoes drawn by the app's code (gandemo.tasks.edges2photo.SKETCHES), never from the data set
EXAMPLES = edges2photo.SKETCHES


def example_sketches(folder: Path = EXAMPLES_DIR) -> list[Path]:
    """The example sketches as PNGs in `folder` (rewritten atomically on every build: another
    process may be reading them), black 4-px strokes on a white 256x256 canvas."""
    return draw_examples(folder, EXAMPLES, "L", edges2photo.SKETCH_CANVAS, 255)


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
            gr.Markdown("**Your sketch** (black strokes on white): the photo follows as you draw")
            sketch = gr.HTML(
                value="",
                html_template=PAD_HTML,
                css_template=PAD_CSS,
                js_on_load=PAD_JS,
                elem_id="edges-sketch",
                apply_default_css=False,
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
            with gr.Accordion("Upload a sketch or an edge map", open=False):
                drawing_in = upload_image("A sketch or an edge map (dark lines on white)", IMAGE_HEIGHT)
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
    # through a private step (the page's canvas as a PNG data URL: not an API input).
    convert.click(pad_input, [sketch], [input_img], api_visibility="private").success(
        edges_to_photo,
        [input_img, colour],
        [edges_out, photo_out],
        api_name="edges_to_photo",
        preprocess=False,
        **EDGES_CONCURRENCY,
    )
    # Live: each stroke, undo or clear on the pad re-draws the photo (the pad triggers `input`; a picture
    # the server puts there does not). One private event does both steps (one round trip),
    # "always_last" keeps at most one request of a session pending (the latest drawing), and no
    # progress overlay flickers over the pictures.
    live = {"trigger_mode": "always_last", "show_progress": "hidden", "api_visibility": "private"}
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
    # An uploaded sketch lands in "What goes in" like an example.
    uploaded = drawing_in.upload(_file, [drawing_in], [input_img], preprocess=False, api_visibility="private")
    # An example, an upload or an extracted edge map is converted as it is (a training-like map keeps
    # its geometry pixel for pixel) and also put on the sketchpad, to draw on and convert again.
    for loaded in (examples.load_input_event.then, found.success, uploaded.success):
        loaded(
            edges_to_photo,
            [input_img, colour],
            [edges_out, photo_out],
            preprocess=False,
            api_visibility="private",
            **EDGES_CONCURRENCY,
        )
        loaded(_to_pad, [input_img], [sketch], preprocess=False, api_visibility="private")
