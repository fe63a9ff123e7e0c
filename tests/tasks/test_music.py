"""Music inference: the MuseGAN metrics on hand-made rolls with known answers, the one render(),
roll <-> MIDI through the task's own names, the picture, the checks and the whole compose()."""

import math

import numpy as np
import pytest
import torch

from gandemo import audio, metrics
from gandemo.nets.musegan import MuseGenerator
from gandemo.tasks import music
from gandemo.validation import InvalidInput
from tests.conftest import TINY_MUSE, write_tiny_music_checkpoint

C4 = 60 - music.LOWEST_PITCH  # pitch index of middle C


def _empty(pieces: int = 1, tracks: int = 4) -> np.ndarray:
    return np.zeros((pieces, tracks, music.N_STEPS, music.N_PITCHES), bool)


# ---- the metrics, on rolls whose answers are known ------------------------------------------------
def test_empty_bars():
    r = _empty(tracks=2)
    r[0, 0, 0, C4] = True  # one sixteenth in bar 1
    r[0, 0, 40:46, C4] = True  # bar 3 (bars are steps 0-15, 16-31, 32-47, 48-63)
    assert metrics.empty_bar_rate(r, 16).tolist() == [[0.5, 1.0]]


def test_pitch_classes_per_bar_fold_octaves_and_skip_empty_bars():
    r = _empty(tracks=3)
    r[0, 0, :16, [C4, C4 + 4, C4 + 7]] = True  # bar 1: C major triad -> 3
    r[0, 0, 16:32, [C4, C4 + 12, C4 - 12]] = True  # bar 2: C in three octaves -> 1
    r[0, 1, :, C4 + 1] = True  # every bar: C sharp -> 1
    got = metrics.pitch_classes_per_bar(r, 16, music.LOWEST_PITCH)[0]
    assert got[0] == 2.0 and got[1] == 1.0 and math.isnan(got[2])  # bars 3-4 of track 0 are empty: skipped


def test_qualified_notes_count_runs_per_pitch():
    r = _empty(tracks=2)
    r[0, 0, 0, C4] = True  # 1 step: not qualified
    r[0, 0, 2:6, C4 + 2] = True  # 4 steps
    r[0, 0, 0:8, C4 - 12] = True  # 8 steps, overlapping the others in time
    r[0, 0, 10:11, C4] = True  # 1 step again, same pitch as the first
    r[0, 0, 12:14, C4] = True  # 2 steps: exactly an eighth, qualified
    assert metrics.qualified_note_rate(r, 2)[0, 0] == pytest.approx(3 / 5)
    assert math.isnan(metrics.qualified_note_rate(r, 2)[0, 1])
    rows, lengths = metrics.note_lengths(r)
    assert sorted(lengths.tolist()) == [1, 1, 2, 4, 8] and set(rows.tolist()) == {0}


def test_polyphony_is_the_share_of_sounding_steps_with_a_chord():
    r = _empty(tracks=2)
    r[0, 0, :8, [C4, C4 + 4, C4 + 7]] = True  # 8 steps of a triad
    r[0, 0, 8:32, C4] = True  # 24 steps of one note; then silence, which does not count
    r[0, 1, :, C4] = True
    got = metrics.polyphony_rate(r)[0]
    assert got[0] == pytest.approx(8 / 32) and got[1] == 0.0
    assert metrics.polyphony_rate(r, min_pitches=3)[0, 0] == pytest.approx(8 / 32)


def test_tonal_distance_follows_the_circle_of_fifths():
    """The same pitch class: 0. A fifth apart: closer than a tritone. Octaves do not matter."""

    def td(a: int, b: int) -> float:
        r = _empty(tracks=2)
        r[0, 0, :, C4 + a] = True
        r[0, 1, :, C4 + b] = True
        return float(metrics.tonal_distance(r, 0, 1, 4, music.LOWEST_PITCH)[0])

    assert td(0, 0) == pytest.approx(0, abs=1e-12) and td(0, 12) == pytest.approx(0, abs=1e-12)
    assert td(0, 7) < td(0, 6)
    # C vs G by hand: each centroid is one column of the tonal matrix
    m = metrics.tonal_matrix()
    assert td(0, 7) == pytest.approx(np.linalg.norm(m[:, 0] - m[:, 7]))
    r = _empty(tracks=2)
    r[0, 0, :, C4] = True
    r[0, 1, :32, C4 + 7] = True  # silent in the second half: only beats where both sound count
    assert metrics.tonal_distance(r, 0, 1, 4, music.LOWEST_PITCH)[0] == pytest.approx(td(0, 7))


def test_music_metrics_average_pieces_and_tracks_and_the_gap_is_zero_to_itself():
    r = _empty(pieces=2)
    for t, pitch in enumerate((72, 67, 64, 48)):
        r[0, t, :, pitch - music.LOWEST_PITCH] = True
    r[1, 0, :16, C4] = True  # piece 2: a soprano note in bar 1, the rest silent
    m = music.piece_metrics(r)
    assert set(m) == set(metrics.MUSIC_METRICS) == set(music.METRIC_LABELS)
    assert m["empty_bars"]["soprano"] == pytest.approx((0 + 0.75) / 2)
    assert m["empty_bars"]["alto"] == pytest.approx((0 + 1) / 2)
    assert m["empty_bars"]["mean"] == pytest.approx(np.mean([0.375, 0.5, 0.5, 0.5]))
    assert m["pitch_classes_per_bar"]["soprano"] == 1.0 and m["polyphony"]["mean"] == 0.0
    assert set(m["tonal_distance"]) == {"soprano-alto", "soprano-tenor", "soprano-bass", "alto-tenor",
                                        "alto-bass", "tenor-bass", "mean"}  # fmt: skip
    assert metrics.music_metric_gap(m, m) == 0.0
    other = music.piece_metrics(r[:1])
    assert metrics.music_metric_gap(other, m) > 0


def test_the_metrics_of_a_real_chorale_phrase():
    """Four single-note voices, every note at least an eighth: the shape of the data."""
    r = _empty()
    lines = {0: [72, 74, 76, 77], 1: [67, 67, 69, 69], 2: [64, 62, 60, 60], 3: [48, 47, 45, 41]}
    for t, notes in lines.items():
        for beat in range(16):
            r[0, t, beat * 4 : beat * 4 + 4, notes[beat % 4] - music.LOWEST_PITCH] = True
    m = music.piece_metrics(r)
    assert m["empty_bars"]["mean"] == 0 and m["polyphony"]["mean"] == 0 and m["qualified_notes"]["mean"] == 1
    assert m["pitch_classes_per_bar"]["soprano"] == 4 and m["pitch_classes_per_bar"]["alto"] == 2


# ---- the model and the piece ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def G(tmp_path_factory) -> MuseGenerator:
    from gandemo.checkpoint import load_checkpoint

    return load_checkpoint(write_tiny_music_checkpoint(tmp_path_factory.mktemp("ck")))["G"]


def test_render_thresholds_at_one_half_and_one_seed_is_one_piece(G: MuseGenerator):
    z = music.latents(5, 3, G.latent_dim)
    rolls = music.render(G, z)
    assert rolls.shape == (3, 4, 64, 48) and rolls.dtype == bool
    with torch.no_grad():
        probs = music.flatten_bars(G.eval()(z)).numpy()
    assert np.array_equal(rolls, probs >= 0.5)
    assert np.array_equal(music.render(G, z[1:2])[0], rolls[1])  # a piece does not depend on its batch
    one = music.render(G, music.latents(5, 1, G.latent_dim))
    assert np.array_equal(one[0], rolls[0])  # row 0 of seed 5 is the app's seed 5
    assert not np.array_equal(music.render(G, music.latents(6, 1, G.latent_dim))[0], one[0])


def test_the_task_reads_back_its_own_midi(G: MuseGenerator):
    roll = music.render(G, music.latents(2, 1, G.latent_dim))[0]
    pm = music.to_midi(roll, 90, music.DEFAULT_PROGRAMS)
    assert [i.name for i in pm.instruments] == ["Soprano", "Alto", "Tenor", "Bass"]
    assert np.array_equal(music.from_midi(audio.read_midi(audio.midi_bytes(pm))), roll)


def test_compose_gives_midi_audio_picture_and_metrics(G: MuseGenerator):
    piece = music.compose(G, 2, 120, [0, 19, 52, 73], [False, False, False, True], engine="sine")
    assert [i.program for i in piece.midi.instruments] == [0, 19, 52, 73]  # the MIDI keeps the muted bass
    assert piece.audio.seconds == pytest.approx(music.seconds(120) + audio.TAIL_S) == pytest.approx(9.0)
    assert np.abs(piece.audio.samples).max() > 0.5
    w = music.LEFT + 64 * music.STEP_W + music.PAD
    assert piece.image.size == (w, music.TOP + 48 * music.PITCH_H + music.PAD)
    assert piece.metrics == music.piece_metrics(piece.roll[None])
    again = music.compose(G, "2", 120.0, [0, 19, 52, 73], [False, False, False, True], engine="sine")
    assert np.array_equal(again.roll, piece.roll)


def test_the_picture_has_one_colour_per_voice_bar_lines_and_hollow_muted_voices():
    r = _empty()[0]
    for t, pitch in enumerate((72, 67, 64, 48)):
        r[t, 0:16, pitch - music.LOWEST_PITCH] = True
    img = np.asarray(music.piano_roll_image(r))
    colours = {tuple(c) for c in img.reshape(-1, 3)}
    assert all(c in colours for c in music.TRACK_COLOURS)

    def centre(track: int, pitch: int) -> tuple[int, int]:
        return (
            music.TOP + (music.N_PITCHES - 1 - (pitch - music.LOWEST_PITCH)) * music.PITCH_H + music.PITCH_H // 2,
            music.LEFT + 8 * music.STEP_W,
        )

    y, x = centre(0, 72)
    assert tuple(img[y, x]) == music.TRACK_COLOURS[0]
    muted = np.asarray(music.piano_roll_image(r, mute=[True, False, False, False]))
    assert tuple(muted[y, x]) != music.TRACK_COLOURS[0]  # hollow: only the outline is coloured
    bar_x = music.LEFT + 16 * music.STEP_W
    assert (img[music.TOP + 5 : music.TOP + 40, bar_x] < 100).all()  # a dark bar line after bar 1
    assert music.pitch_name(60) == "C4" and music.pitch_name(36) == "C2" and music.pitch_name(70) == "B♭4"


@pytest.mark.parametrize(
    "args, words",
    [
        ((-1, 80), "seed must be from 0"),
        ((2.5, 80), "seed must be a whole number"),
        ((1, 0), "tempo .* must be from 30 to 240, got 0"),
        ((1, 10_000), "tempo .* must be from 30 to 240, got 10000"),
        ((1, "fast"), "tempo .* must be a whole number"),
        ((1, 80, [40, 40, 128, 42]), "tenor instrument .* must be from 0 to 127, got 128"),
        ((1, 80, [40, "violin", 41, 42]), "alto instrument .* must be a whole number"),
        ((1, 80, None, [False, "maybe", False, False]), "mute alto must be true or false"),
        ((1, 80, None, [True] * 4), "every voice is muted"),
    ],
)
def test_bad_inputs_are_refused_in_plain_words(G: MuseGenerator, args, words):
    seed, tempo, *rest = args
    programs = rest[0] if rest and rest[0] is not None else music.DEFAULT_PROGRAMS
    mutes = rest[1] if len(rest) > 1 else [False] * 4
    with pytest.raises(InvalidInput, match=words):
        music.compose(G, seed, tempo, programs, mutes, engine="sine")


def test_a_piece_without_notes_in_the_voices_left_on_is_refused():
    G = MuseGenerator(**TINY_MUSE).eval()
    with torch.no_grad():
        G.semitone_bias.fill_(-20.0)  # every note off
    with pytest.raises(InvalidInput, match="has no notes in the voices left on"):
        music.compose(G, 1, 80, music.DEFAULT_PROGRAMS, [False] * 4, engine="sine")


def test_metrics_table_puts_the_piece_beside_the_model_and_the_held_out_chorales():
    piece = music.piece_metrics(_empty())
    card = {
        "held_out_metrics": {"pieces": 271, "values": {k: {"mean": 0.5} for k in music.METRIC_LABELS}},
        "metrics": {music.METRIC_LABELS["qualified_notes"]: {"model": 0.83, "held_out": 0.97, "generated": 1000}},
    }
    headers, rows = music.metrics_table(piece, card)
    assert headers[-2:] == ["this model (1000 pieces)", "held-out chorales (271 phrases)"]
    by_label = {r[0]: r for r in rows}
    assert by_label["qualified notes (an eighth or longer)"][3:] == ["83 %", "50 %"]
    assert by_label["empty bars"][1] == "100 %" and by_label["empty bars"][3] == "–"
    assert by_label["pitch classes used per bar"][1] == "–"  # silent: no pitch classes
    headers, rows = music.metrics_table(piece, {})
    assert headers[-1] == "held-out chorales" and all(r[-1] == "–" for r in rows)
