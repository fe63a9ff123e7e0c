"""The Anomaly endpoint through gradio_client, on the session's app (tiny untrained G, D, E per
category, thresholds calibrated by the task's own code), and the tab's helpers."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from gandemo import registry
from gandemo.ui import anomaly as ui
from tests.conftest import TINY_ANOMALY_SEARCH, write_tiny_anomaly_checkpoint


@pytest.fixture(scope="module")
def client(app_url: str) -> Client:
    return Client(app_url, verbose=False)


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 60x40 RGBA 'product' with a dark scratch (not square, with transparency)."""
    a = np.zeros((40, 60, 4), np.uint8)
    a[..., :3] = np.linspace(80, 160, 60, dtype=np.uint8)[None, :, None]
    a[..., 3] = 255
    a[18:21, 10:50, :3] = 10
    path = tmp_path_factory.mktemp("anomaly") / "photo.png"
    Image.fromarray(a, "RGBA").save(path)
    return path


def _detect(client: Client, image: Path | None, category="transistor", method="encoder", iterations=3):
    return client.predict(
        handle_file(str(image)) if image else None, category, method, iterations, api_name="/detect_anomaly"
    )


@pytest.mark.parametrize("method", ["encoder", "latent_search"])
def test_detect_anomaly_returns_overlay_mask_reconstruction_score_verdict_plot_seconds(client, photo, method):
    overlay, mask, recon, score, verdict, plot, seconds = _detect(client, photo, method=method)
    assert Image.open(overlay).size == Image.open(mask).size == Image.open(recon).size == (60, 40)
    m = np.asarray(Image.open(mask).convert("L"))
    assert set(np.unique(m)) <= {0, 255}
    assert isinstance(score, float) and score >= 0
    assert ("ANOMALOUS" in verdict or "normal" in verdict) and "threshold" in verdict
    assert "normal validation images" in verdict
    assert Image.open(plot).size[0] > 300
    assert isinstance(seconds, float) and seconds >= 0


@pytest.mark.parametrize("category", ["magnetic_tile", "metal_plate"])
def test_every_category_answers_greyscale_and_colour_models_alike(client, photo, category):
    overlay, mask, *_ = _detect(client, photo, category=category)
    assert Image.open(overlay).size == (60, 40)


def test_the_same_photo_gives_the_same_answer(client, photo):
    a = _detect(client, photo, method="latent_search")
    b = _detect(client, photo, method="latent_search")
    assert a[3] == b[3] and a[4] == b[4]
    assert np.array_equal(np.asarray(Image.open(a[1])), np.asarray(Image.open(b[1])))


def _bad_file(tmp: Path, kind: str) -> Path:
    path = tmp / f"{kind}.png"
    if kind == "one_pixel":
        Image.new("RGB", (1, 1), "black").save(path)
    elif kind == "corrupt":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"broken" * 20)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "huge":  # 4,200 x 4,200 = 17.6 MP, over the 16 MP cap (a few kB as a PNG)
        Image.new("L", (4200, 4200), 255).save(path)
    return path


BAD_PICTURES = [
    ("one_pixel", "at least 16x16 is needed"),
    ("corrupt", "not a readable image"),
    ("empty", "not a readable image"),
    ("huge", "at most 16 MP is allowed"),
]
BAD_SETTINGS = [
    ({"category": "wood"}, "category must be one of magnetic_tile, metal_plate, transistor; got 'wood'"),
    ({"category": None}, "category must be one of"),
    ({"method": "magic"}, "method must be one of inpaint, encoder, latent_search"),
    ({"iterations": 0}, "iterations must be from 1 to 1000"),
    ({"iterations": 10**6}, "iterations must be from 1 to 1000"),
    ({"iterations": 2.5}, "iterations must be a whole number"),
    ({"iterations": "many"}, "iterations must be a whole number"),
    ({"image": None}, "no image was given"),
]


def test_bad_pictures_and_settings_get_a_plain_message_and_the_server_goes_on(client, photo, tmp_path):
    for kind, words in BAD_PICTURES:
        with pytest.raises(Exception, match=words):
            _detect(client, _bad_file(tmp_path, kind))
    for args, words in BAD_SETTINGS:
        call = {"image": photo, "category": "transistor", "method": "encoder", "iterations": 3} | args
        with pytest.raises(Exception, match=words):
            _detect(client, call["image"], call["category"], call["method"], call["iterations"])
    assert Image.open(_detect(client, photo)[0]).size == (60, 40)


def test_whole_numbers_in_any_spelling_are_accepted(client, photo):
    *_, seconds = _detect(client, photo, method="latent_search", iterations="2.0")
    assert seconds >= 0


def test_a_checkpoint_without_thresholds_says_how_to_make_one(tmp_path, use_checkpoints):
    folder = write_tiny_anomaly_checkpoint(tmp_path, "transistor")
    card = folder / "card.json"
    import json

    data = json.loads(card.read_text())
    del data["anomaly"]["calibration"]["encoder"]
    card.write_text(json.dumps(data))
    use_checkpoints(tmp_path)
    with pytest.raises(gr.Error, match="no calibrated thresholds for encoder.*--export-only"):
        ui.detect_anomaly(Image.new("RGB", (32, 32)), "transistor", "encoder", 3)
    with pytest.raises(gr.Error, match="not trained yet"):
        ui.detect_anomaly(Image.new("RGB", (32, 32)), "metal_plate", "encoder", 3)


def test_examples_are_made_by_the_app_from_its_own_generators(tmp_path, checkpoint_root, use_checkpoints):
    use_checkpoints(checkpoint_root)
    ckpts = {c: registry.get("anomaly", c) for c in ("magnetic_tile", "metal_plate", "transistor")}
    made = ui.example_images(ckpts, tmp_path)
    assert [(c, label) for _, c, label in made] == [
        ("magnetic_tile", "generated normal"),
        ("magnetic_tile", "painted crack"),
        ("metal_plate", "generated normal"),
        ("metal_plate", "painted rust"),
        ("transistor", "generated normal"),
        ("transistor", "painted scratch"),
    ]
    for (normal, _, _), (painted, _, _) in zip(made[::2], made[1::2], strict=True):
        a, b = np.asarray(Image.open(normal)), np.asarray(Image.open(painted))
        assert a.shape == b.shape == (ui.EXAMPLE_SIZE, ui.EXAMPLE_SIZE, 3)
        changed = (a != b).any(-1).mean()
        assert 0.002 < changed < 0.2  # a defect painted on a small part of the model's own image
    overlay, *_ = ui.detect_anomaly(str(made[1][0]), "magnetic_tile", "encoder", TINY_ANOMALY_SEARCH)
    assert overlay.size == (ui.EXAMPLE_SIZE, ui.EXAMPLE_SIZE)


def test_search_threads_come_from_the_environment_and_are_bounded(monkeypatch, capsys):
    monkeypatch.delenv(ui.SEARCH_THREADS_ENV, raising=False)
    assert ui.search_threads() == 1
    monkeypatch.setenv(ui.SEARCH_THREADS_ENV, "1")
    assert ui.search_threads() == 1
    for bad in ("0", "lots", "100000"):
        monkeypatch.setenv(ui.SEARCH_THREADS_ENV, bad)
        assert ui.search_threads() == 1
    assert "GANDEMO_SEARCH_THREADS" in capsys.readouterr().err


def test_the_tab_says_when_a_model_falls_short_and_why():
    assert "not been evaluated yet" in ui.shortfall({})
    assert ui.shortfall({"aims": {"met": True}}) == ""
    card = {"aims": {"met": False, "shortfalls": ["encoder: image AUROC 0.610 is below the aim of 0.90"], "why": ["x"]}}
    text = ui.shortfall(card)
    assert "falls short" in text and "0.610" in text and "Why, as measured: x." in text


def test_the_categories_table_shows_measured_aurocs_and_missing_models():
    class Ck:
        card = {
            "aims": {
                "met": False,
                "image_auroc": {"inpaint": 0.93, "encoder": 0.61, "latent_search": 0.7},
                "pixel_auroc": {"inpaint": 0.91},
                "baseline_image_auroc": 0.84,
            },
            "metrics": {"pixel AUROC, inpaint": {"model": 0.91, "baseline": 0.77}},
        }

    ckpts, missing = {"transistor": Ck()}, {"metal_plate": "no checkpoint: python -m training <x>"}
    table = ui.categories_table(ckpts, missing)
    assert "| transistor | 0.930 | 0.610 | 0.700 | 0.840 | 0.910 / 0.770 | **falls short** (below) |" in table
    assert "| metal_plate | – | – | – | – | – | not trained yet |" in table
    assert table.splitlines()[1].count("|---") == 7  # one column per method, the baseline, pixel AUROC, aims
    notes = ui.shortfall_notes(ckpts, missing)
    assert "**transistor**: This model falls short" in notes
    assert "&lt;x&gt;" in notes  # a command's <...> stays visible


def test_how_it_works_gives_the_score_and_the_encoder_objective():
    text = ui.HOW_IT_WORKS
    assert r"A(x) = (1 - \lambda)\,R(x) + \lambda\,D(x)" in text and r"\lambda = 0.1" in text
    assert "izi_f" in text and "normal" in text and "5 %" in text
