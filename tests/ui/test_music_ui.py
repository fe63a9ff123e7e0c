"""The Music endpoint through gradio_client, on the session's app (tiny untrained MuseGAN)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client
from PIL import Image

from gandemo import audio
from gandemo.checkpoint import load_checkpoint
from gandemo.tasks import music
from gandemo.ui import music as ui

API = "/compose_music"


@pytest.fixture(scope="module")
def client(app_url: str) -> Client:
    return Client(app_url, verbose=False)


@pytest.fixture(scope="module")
def G(checkpoint_root: Path):
    return load_checkpoint(checkpoint_root / "music" / "default")["G"]


@pytest.fixture(scope="module")
def seed(G) -> int:
    """A seed whose piece (from the tiny test model) has notes in all four voices."""
    for s in range(200):
        if music.render(G, music.latents(s, 1, G.latent_dim))[0].any(axis=(1, 2)).all():
            return s
    raise AssertionError("no seed of the tiny model gives four voices")


def test_seed_and_tempo_alone_give_a_playable_piece_midi_picture_and_table(client: Client, G, seed: int):
    wav, picture, midi, table, note = client.predict(seed, 100, api_name=API)
    samples, rate = audio.read_wav(Path(wav).read_bytes())
    assert len(samples) / rate == pytest.approx(music.seconds(100) + audio.TAIL_S, abs=1e-3)  # 9.6 s + 1 s tail
    assert np.abs(samples).max() > 0.5 and float(np.sqrt(np.mean(samples[: int(9.6 * rate)] ** 2))) > 0.01
    assert "FluidSynth" in note or "sine" in note
    pm = audio.read_midi(Path(midi).read_bytes())
    assert [i.name for i in pm.instruments] == ["Soprano", "Alto", "Tenor", "Bass"]
    assert [i.program for i in pm.instruments] == list(music.DEFAULT_PROGRAMS)
    assert np.array_equal(music.from_midi(pm), music.render(G, music.latents(seed, 1, G.latent_dim))[0])
    img = Image.open(picture)
    assert img.size == music.piano_roll_image(np.zeros((4, 64, 48), bool)).size
    assert table["headers"][:2] == ["metric", "this piece"] and table["headers"][-1].startswith("held-out chorales")
    assert [row[0] for row in table["data"]] == list(music.METRIC_LABELS.values())
    assert all(row[-1] != "–" for row in table["data"])  # the test card carries held-out numbers


def test_instruments_and_mute_reach_the_midi_and_the_audio(client: Client, seed: int):
    args = (seed, 120, 0, 19, 52, 73, False, False, False, True)
    wav, _, midi, _, _ = client.predict(*args, api_name=API)
    pm = audio.read_midi(Path(midi).read_bytes())
    assert [i.program for i in pm.instruments] == [0, 19, 52, 73]  # the MIDI keeps the muted bass
    samples, rate = audio.read_wav(Path(wav).read_bytes())
    assert len(samples) / rate == pytest.approx(8.0 + audio.TAIL_S, abs=1e-3)
    wav2, _, midi2, _, _ = client.predict(*args, api_name=API)
    assert Path(midi2).read_bytes() == Path(midi).read_bytes()  # the same inputs, the same piece


@pytest.mark.parametrize(
    "args, words",
    [
        ((7, 0), "tempo .* must be from 30 to 240, got 0"),
        ((7, 10_000), "tempo .* must be from 30 to 240, got 10000"),
        ((7, "allegro"), "tempo .* must be a whole number"),
        ((-5, 100), "seed must be from 0"),
        ((7, 100, 128), "soprano instrument .* must be from 0 to 127, got 128"),
        ((7, 100, 40, -1), "alto instrument .* must be from 0 to 127, got -1"),
        ((7, 100, 40, 40, 41, 42, True, True, True, True), "every voice is muted"),
    ],
)
def test_bad_inputs_get_a_plain_error_and_the_next_request_is_served(client: Client, seed: int, args, words):
    with pytest.raises(Exception, match=words):
        client.predict(*args, api_name=API)
    wav, *_ = client.predict(seed, 100, api_name=API)
    assert Path(wav).stat().st_size > 1000


def test_the_endpoint_is_described_with_seed_and_tempo_first():
    params = list(ui.compose_music.__wrapped__.__code__.co_varnames[:10])
    assert params[:2] == ["seed", "tempo"]
    assert params[2:6] == [f"{t}_instrument" for t in music.TRACKS]
    assert params[6:] == [f"mute_{t}" for t in music.TRACKS]
    assert len(ui.program_choices()) == 128 and ui.program_choices()[40] == ("40: Violin", 40)


def test_how_it_works_explains_the_three_models_and_wgan_gp():
    text = ui.HOW_IT_WORKS
    assert all(w in text for w in ("*Jamming*", "*Composer*", "*Hybrid*", "shared by all", "WGAN-GP", "0.5"))
    card = {
        "arch": {"G": {"class": "musegan:MuseGenerator", "kwargs": {"width": 128, "z_dim": 32}}},
        "hyperparameters": {"d_width": 64, "n_critic": 5, "gp_weight": 10.0, "batch_size": 32, "lr": 1e-3},
    }
    settings = ui.model_settings(card)
    assert "128 features per voice" in settings and "5 critic steps per G step, λ = 10" in settings
    assert ui.model_settings({}) == ""
