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


# ---- harmonize_melody -----------------------------------------------------------------------------
HARMONIZE = "/harmonize_melody"


def test_a_melody_as_text_comes_back_in_four_parts_with_the_soprano_as_written(client: Client):
    text = "E4/4 E4/4 F4/4 G4/4 | G4/4 F4/4 E4/4 D4/4"
    wav, picture, midi, table, note = client.predict(None, text, None, 120, api_name=HARMONIZE)
    samples, rate = audio.read_wav(Path(wav).read_bytes())
    assert len(samples) / rate == pytest.approx(music.seconds(120, 32) + audio.TAIL_S, abs=1e-3)  # 2 bars + tail
    assert np.abs(samples).max() > 0.5
    pm = audio.read_midi(Path(midi).read_bytes())
    assert [i.name for i in pm.instruments][:1] == ["Soprano"]
    assert set(i.name for i in pm.instruments) <= {"Soprano", "Alto", "Tenor", "Bass"}
    assert [n.pitch for n in pm.instruments[0].notes] == [64, 64, 65, 67, 67, 65, 64, 62]
    assert pm.get_tempo_changes()[1][0] == pytest.approx(120, rel=1e-6)
    assert Image.open(picture).width == max(music.LEFT + 32 * music.STEP_W + music.PAD, music.MIN_WIDTH)  # 2 bars
    assert table["headers"][:3] == ["figure", "this piece", "aim"]
    assert [row[0] for row in table["data"]] == list(music.HARMONY_LABELS.values())
    assert table["data"][3][1] in ("1.00", "–")  # one note at a time within a voice
    assert "2 bars at 120 quarter notes per minute, harmonised in 1 phrase" in note


def test_an_uploaded_midi_file_is_harmonised_at_its_own_tempo_and_an_example_by_name(client: Client, tmp_path):
    from gradio_client import handle_file

    from tests.test_melody import midi_file

    path = tmp_path / "tune.mid"
    path.write_bytes(midi_file([(72, 0, 1), (74, 1, 2), (76, 2, 4), (60, 4, 5), (64, 4, 5)], tempo=66))
    wav, _, midi, _, note = client.predict(handle_file(str(path)), "ignored while a file is given", api_name=HARMONIZE)
    pm = audio.read_midi(Path(midi).read_bytes())
    assert [n.pitch for n in pm.instruments[0].notes] == [72, 74, 76, 64]  # the top of the last chord
    assert pm.get_tempo_changes()[1][0] == pytest.approx(66, rel=1e-6)
    assert "melody file: 4 notes, 2 bars at 66" in note.lower()
    name = "Frère Jacques (traditional)"
    wav, _, midi, _, note = client.predict(None, "", name, api_name=HARMONIZE)
    assert "8 bars at 104 quarter notes per minute, harmonised in 2 phrases" in note
    again = client.predict(None, "", name, api_name=HARMONIZE)[2]
    assert Path(again).read_bytes() == Path(midi).read_bytes()  # the same inputs, the same harmony
    other = audio.read_midi(
        Path(client.predict(None, "", name, None, 40, 40, 41, 42, 1, api_name=HARMONIZE)[2]).read_bytes()
    )
    first = audio.read_midi(Path(midi).read_bytes())
    assert [(n.pitch, n.start) for n in other.instruments[0].notes] == [
        (n.pitch, n.start) for n in first.instruments[0].notes
    ]
    assert [[n.pitch for n in i.notes] for i in other.instruments[1:]] != [
        [n.pitch for n in i.notes] for i in first.instruments[1:]
    ]


@pytest.mark.parametrize(
    "args, words",
    [
        ((None, "H4/4"), "could not read note 1"),
        ((None, "R/4 R/1"), "only rests"),
        ((None, "", ""), "no melody given"),  # (left out, the example is the page's, Ode to Joy)
        ((None, "C4/4", None, 0), "tempo .* must be from 30 to 240, got 0"),
        ((None, "C4/4", "Für Elise"), None),  # the text wins: a good answer
        ((None, "", "Für Elise"), "example must be one of"),
        ((None, "C4/4", None, None, 128), "soprano instrument .* must be from 0 to 127"),
        ((None, "C4/4", None, None, 40, 40, 41, 42, -1), "seed must be from 0"),
        ((None, "C2/4 C7/4"), "spans 60 semitones"),
    ],
)
def test_bad_melodies_get_a_plain_error_and_the_next_request_is_served(client: Client, args, words):
    if words is None:
        assert Path(client.predict(*args, api_name=HARMONIZE)[0]).stat().st_size > 1000
        return
    with pytest.raises(Exception, match=words):
        client.predict(*args, api_name=HARMONIZE)
    wav, *_ = client.predict(None, "C5/2 D5/2", api_name=HARMONIZE)
    assert Path(wav).stat().st_size > 1000


def test_files_that_are_no_melody_get_a_plain_error(client: Client, tmp_path):
    from gradio_client import handle_file

    from tests.test_melody import midi_file

    cases = {
        "notes.txt": (b"E4/4 E4/4", "not a MIDI file"),
        "drums.mid": (midi_file([], drums=[(36, 0, 1)]), "only drums"),
        "waltz.mid": (midi_file([(60, 0, 1)], time_signature=(3, 4)), "in 3/4: only 4/4"),
        "empty.mid": (b"", "melody file is empty"),
    }
    for name, (data, words) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(Exception, match=words):
            client.predict(handle_file(str(path)), "C4/4", api_name=HARMONIZE)


def test_compose_writes_eight_bars_when_asked_and_four_by_default(client: Client, seed: int):
    wav8, _, midi8, _, _ = client.predict(seed, 120, 40, 40, 41, 42, False, False, False, False, 8, api_name=API)
    samples, rate = audio.read_wav(Path(wav8).read_bytes())
    assert len(samples) / rate == pytest.approx(music.seconds(120, 128) + audio.TAIL_S, abs=1e-3)
    assert "8bars" in Path(midi8).name
    with pytest.raises(Exception, match="bars must be 4 or 8"):
        client.predict(seed, 120, 40, 40, 41, 42, False, False, False, False, 5, api_name=API)


def test_the_harmoniser_is_explained_and_its_caveats_fit_one_table():
    assert all(w in ui.HARMONIZE_HOW for w in ("Track-conditional", "encoder", "most probable pitch", "floor"))
    rows = [r for r in ui.HARMONIZE_CAVEATS.strip().splitlines() if r.startswith("| ") and "---" not in r]
    assert 4 <= len(rows) <= 8
    card = {
        "arch": {"G": {"kwargs": {"width": 128, "z_dim": 32, "cond_width": 64}}},
        "hyperparameters": {"n_critic": 5, "gp_weight": 10.0},
    }
    assert "melody encoder of 64 features" in ui.harmonize_settings(card)
    assert ui.example_melody("Frère Jacques (traditional)")[1] == "104"
