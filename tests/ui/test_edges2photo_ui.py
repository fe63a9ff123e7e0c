"""The Edges → Photo endpoints through gradio_client, on the session's app (tiny untrained U-Net)."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image, ImageDraw

from gandemo.ui import edges2photo as ui
from gandemo.validation import InvalidInput


@pytest.fixture(scope="module")
def client(app_url: str) -> Client:
    return Client(app_url, verbose=False)


def _pixels(path: str) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def sketch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shoe-ish outline: dark 5-px strokes on a transparent 300x200 canvas (as a sketchpad sends)."""
    img = Image.new("RGBA", (300, 200), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.line([(20, 170), (280, 170), (270, 120), (150, 90), (120, 40), (30, 40), (20, 170)], fill=(0, 0, 0, 255), width=5)
    path = tmp_path_factory.mktemp("edges") / "sketch.png"
    img.save(path)
    return path


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dark shoe-like shape with a light stripe, on white."""
    img = Image.new("RGB", (240, 180), "white")
    d = ImageDraw.Draw(img)
    d.polygon([(20, 150), (220, 150), (210, 100), (120, 80), (100, 30), (30, 30)], fill=(60, 40, 30))
    d.line([(40, 120), (200, 120)], fill=(230, 220, 200), width=6)
    path = tmp_path_factory.mktemp("edges") / "photo.jpg"
    img.save(path, quality=95)
    return path


def test_photo_to_edges_gives_a_128px_black_on_white_edge_map(client: Client, photo: Path):
    edges = _pixels(client.predict(handle_file(str(photo)), api_name="/photo_to_edges"))
    assert edges.shape == (128, 128, 3)
    assert set(np.unique(edges)) == {0, 255} and 0.005 < (edges == 0).mean() < 0.3


def test_edges_to_photo_gives_normalised_edges_and_a_photo(client: Client, sketch: Path):
    edges, photo = client.predict(handle_file(str(sketch)), api_name="/edges_to_photo")
    e, p = _pixels(edges), _pixels(photo)
    assert e.shape == p.shape == (128, 128, 3)
    assert set(np.unique(e)) == {0, 255}  # 1-px black lines on white, as the training maps
    assert p.std() > 0  # a picture, not a blank


def test_same_sketch_same_photo(client: Client, sketch: Path):
    a = [_pixels(f) for f in client.predict(handle_file(str(sketch)), api_name="/edges_to_photo")]
    b = [_pixels(f) for f in client.predict(handle_file(str(sketch)), api_name="/edges_to_photo")]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_an_extracted_edge_map_keeps_its_geometry(client: Client, photo: Path):
    found = client.predict(handle_file(str(photo)), api_name="/photo_to_edges")
    edges, _ = client.predict(handle_file(found), api_name="/edges_to_photo")
    assert np.array_equal(_pixels(edges), _pixels(found))


def _bad_file(tmp: Path, kind: str) -> Path | None:
    path = tmp / f"{kind}.png"
    if kind == "blank":
        Image.new("RGB", (200, 200), "white").save(path)
    elif kind == "one_pixel":
        Image.new("RGB", (1, 1), "black").save(path)
    elif kind == "text":
        path.write_text("not a picture, just words")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "huge":  # 4,200 x 4,200 = 17.6 MP, over the 16 MP cap (a few kB as a PNG)
        Image.new("L", (4200, 4200), 255).save(path)
    else:
        return None
    return path


@pytest.mark.parametrize(
    "kind, sketch_words, photo_words",
    [
        ("blank", "the sketch is blank", "no edges were found"),
        ("one_pixel", "the sketch is blank", "no edges were found"),
        ("text", "not a readable image", "not a readable image"),
        ("empty", "not a readable image", "not a readable image"),
        ("huge", "at most 16 MP is allowed", "at most 16 MP is allowed"),
        ("none", "nothing to convert", "no image was given"),
    ],
)
def test_bad_inputs_get_the_apps_own_message_and_the_next_request_is_served(
    client: Client, tmp_path: Path, sketch: Path, kind: str, sketch_words: str, photo_words: str
):
    bad = _bad_file(tmp_path, kind)
    with pytest.raises(Exception, match=sketch_words):
        client.predict(handle_file(str(bad)) if bad else None, api_name="/edges_to_photo")
    with pytest.raises(Exception, match=photo_words):
        client.predict(handle_file(str(bad)) if bad else None, api_name="/photo_to_edges")
    edges, photo = client.predict(handle_file(str(sketch)), api_name="/edges_to_photo")
    assert _pixels(photo).shape == (128, 128, 3)


def _data_url(path: Path) -> str:
    import base64

    return ui.PAD_PREFIX + base64.b64encode(path.read_bytes()).decode("ascii")


def test_the_sketchpad_hands_over_its_drawing_as_a_png(sketch: Path):
    path = ui.pad_picture(_data_url(sketch))
    assert Path(path).read_bytes() == sketch.read_bytes()
    assert ui.pad_picture("") is None and ui.pad_picture(None) is None
    for bad in ("data:image/jpeg;base64,AAAA", ui.PAD_PREFIX + "***", 5, ui.PAD_PREFIX + "A" * ui.PAD_MAX_CHARS):
        with pytest.raises(InvalidInput, match="sketchpad"):
            ui.pad_picture(bad)
    with pytest.raises(gr.Error, match="sketchpad"):
        ui.pad_input("not a data URL")
    with pytest.raises(gr.Error, match="nothing to convert"):
        ui.edges_to_photo(ui.pad_input(""))


def test_a_picture_goes_onto_the_pad_fitted_to_its_canvas(tmp_path: Path, sketch: Path):
    import base64
    import io

    url = ui._to_pad(str(sketch))  # 300x200 -> at most 256 on its long side, as a PNG data URL
    picture = Image.open(io.BytesIO(base64.b64decode(url[len(ui.PAD_PREFIX) :])))
    assert url.startswith(ui.PAD_PREFIX) and picture.size == (256, 171)
    Image.new("L", (128, 128), 255).save(tmp_path / "small.png")
    small = ui._to_pad(str(tmp_path / "small.png"))
    assert Image.open(io.BytesIO(base64.b64decode(small[len(ui.PAD_PREFIX) :]))).size == (128, 128)


def test_examples_are_drawn_by_the_app_and_each_gives_a_photo(tmp_path: Path, checkpoint_root: Path, use_checkpoints):
    use_checkpoints(checkpoint_root)
    paths = ui.example_sketches(tmp_path)
    assert len(paths) >= 3
    for path in paths:
        edges, photo = ui.edges_to_photo(str(path))
        assert edges.size == photo.size == (128, 128)


def test_how_it_works_names_the_objective_and_the_card_settings():
    card = {
        "arch": {"G": {"class": "pix2pix:UNetGenerator", "kwargs": {"ngf": 32, "depth": 7, "max_mult": 4}}},
        "hyperparameters": {"lambda_l1": 100.0, "ndf": 32, "d_layers": 3, "batch_size": 16, "lr": 2e-4},
    }
    text = ui.model_settings(card)
    assert "λ = 100" in text and "widths capped at 128" in text and "PatchGAN width 32" in text
    assert "transposed convolutions" in text and "colour input" not in text
    card["arch"]["G"]["kwargs"] |= {"upsample": "bilinear", "in_channels": 7}
    card["hyperparameters"]["sketch_p"] = 0.5
    text = ui.model_settings(card)
    assert (
        "bilinear resize then 3×3 convolution" in text
        and "colour input" in text
        and "50% of the training edge maps" in text
    )
    assert ui.model_settings({}) == ""
    assert "70×70" in ui.HOW_IT_WORKS and "14×14" in ui.HOW_IT_WORKS and r"\lambda = 100" in ui.HOW_IT_WORKS


def test_a_photo_on_a_busy_background_is_cut_out_and_the_user_is_told(tmp_path: Path, monkeypatch):
    from tests.tasks.test_edges2photo import on_busy_background, shoe_photo

    told: list[str] = []
    monkeypatch.setattr(ui.gr, "Info", told.append)
    path = tmp_path / "busy.png"
    on_busy_background(shoe_photo(size=(272, 204))).save(path)
    edges = np.asarray(ui.photo_to_edges(str(path)).convert("L"))
    assert told == [ui.CUT_OUT_NOTE] and "cut out" in ui.CUT_OUT_NOTE
    assert 0.005 < (edges == 0).mean() < 0.1  # the shoe's lines, not the background's tiles
    shoe_photo(size=(272, 204)).save(tmp_path / "plain.png")
    ui.photo_to_edges(str(tmp_path / "plain.png"))
    assert told == [ui.CUT_OUT_NOTE]  # a photo like the data's: nothing to tell


def test_a_colour_is_an_optional_input_after_the_image(client: Client, sketch: Path):
    alone = [_pixels(f) for f in client.predict(handle_file(str(sketch)), api_name="/edges_to_photo")]
    auto = [_pixels(f) for f in client.predict(handle_file(str(sketch)), "automatic", api_name="/edges_to_photo")]
    red = [_pixels(f) for f in client.predict(handle_file(str(sketch)), "#b22222", api_name="/edges_to_photo")]
    blue = [_pixels(f) for f in client.predict(handle_file(str(sketch)), "#1a3a8b", api_name="/edges_to_photo")]
    assert all(np.array_equal(a, b) for a, b in zip(alone, auto, strict=True))  # the image alone = automatic
    assert np.array_equal(red[0], alone[0]) and np.array_equal(blue[0], alone[0])  # the edges do not move
    assert not np.array_equal(red[1], alone[1]) and not np.array_equal(red[1], blue[1])  # G is told the colour
    with pytest.raises(Exception, match="the colour must be"):
        client.predict(handle_file(str(sketch)), "#12", api_name="/edges_to_photo")


def test_a_rest_call_with_the_image_alone_answers_as_before(app_url: str, sketch: Path):
    import httpx

    from tests.ui.test_hostile_inputs import _rest

    path = httpx.post(f"{app_url.rstrip('/')}/gradio_api/upload", files={"files": sketch.open("rb")}).json()[0]
    kind, answer = _rest(app_url, "edges_to_photo", [{"path": path, "meta": {"_type": "gradio.FileData"}}])
    assert kind == "complete" and len(answer) == 2


def test_the_page_asks_for_automatic_or_the_swatchs_colour():
    assert ui.chosen_colour(True, "#b22222") == "automatic"
    assert ui.chosen_colour(False, "#b22222") == "#b22222"
    assert ui.chosen_colour(False, None) == "automatic"


def test_drawing_live_shows_nothing_for_an_empty_or_blank_pad_and_refuses_the_rest(
    tmp_path: Path, checkpoint_root: Path, use_checkpoints, sketch: Path
):
    use_checkpoints(checkpoint_root)
    assert ui.live_photo(None) == (None, None)
    Image.new("RGB", (300, 200), "white").save(tmp_path / "blank.png")
    assert ui.live_photo(str(tmp_path / "blank.png")) == (None, None)  # the first dots of a stroke: no nagging
    edges, photo = ui.live_photo(str(sketch), "#b22222")
    assert edges.size == photo.size == (128, 128)
    assert ui.live_photo(str(sketch))[1] != photo
    (tmp_path / "text.png").write_text("not a picture")
    with pytest.raises(gr.Error, match="not a readable image"):
        ui.live_photo(str(tmp_path / "text.png"))
    path, edges2, _ = ui._live_from_pad(_data_url(sketch), "#b22222")
    assert Path(path).read_bytes() == sketch.read_bytes() and np.array_equal(np.asarray(edges2), np.asarray(edges))
    assert ui._live_from_pad("", "automatic") == (None, None, None)  # nothing drawn yet


def test_a_model_without_colour_input_keeps_working_and_refuses_a_colour(tmp_path: Path, use_checkpoints, sketch: Path):
    from tests.conftest import TINY_UNET, write_tiny_edges_checkpoint

    write_tiny_edges_checkpoint(tmp_path, kwargs=TINY_UNET)  # the first version's kind: 3 planes in
    use_checkpoints(tmp_path)
    edges, photo = ui.edges_to_photo(str(sketch))
    assert photo.size == (128, 128) and ui.edges_to_photo(str(sketch), "automatic")[1] == photo
    with pytest.raises(gr.Error, match="trained without a colour input"):
        ui.edges_to_photo(str(sketch), "#b22222")
