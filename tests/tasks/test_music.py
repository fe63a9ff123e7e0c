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
from tests.conftest import write_tiny_music_checkpoint

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


def test_decode_sings_the_sure_pitch_and_holds_it_where_the_model_is_unsure():
    probs = torch.tensor(
        [
            [0.2, 0.4, 0.3, 0.0],  # unsure before any sure step: the first sure step's pitch
            [0.6, 0.9, 0.7, 0.1],  # three above 0.5: only the most probable sounds
            [0.2, 0.4, 0.49, 0.0],  # none reaches 0.5: the last sure pitch is held, not a rest
            [0.01, 0.001, 0.002, 0.0],  # however unlikely everything is: still held
            [0.5, 0.1, 0.1, 0.1],  # exactly 0.5 is sure
        ]
    )
    assert music.decode(probs).int().argmax(-1).tolist() == [1, 1, 1, 1, 0]
    assert (music.decode(probs).sum(-1) == 1).all()
    never_sure = torch.tensor([[0.1, 0.3], [0.2, 0.1]])
    assert music.decode(never_sure).int().argmax(-1).tolist() == [1, 0]  # its most probable pitch
    batch = torch.stack([probs, probs.flip(0)])  # (voices, steps, pitches): each voice on its own
    assert music.decode(batch)[1].int().argmax(-1).tolist() == [0, 0, 0, 1, 1]


def test_render_sounds_one_note_per_voice_and_one_seed_is_one_piece(G: MuseGenerator):
    z = music.latents(5, 3, G.latent_dim)
    rolls = music.render(G, z)
    assert rolls.shape == (3, 4, 64, 48) and rolls.dtype == bool
    with torch.no_grad():
        probs = music.flatten_bars(G.eval()(z)).numpy()
    assert np.array_equal(rolls, music.decode(torch.from_numpy(probs)).numpy())
    assert (rolls.sum(-1) == 1).all()  # one note at a time within a voice, at every step
    sure = probs.max(-1) >= music.SURE
    assert np.array_equal(rolls.argmax(-1)[sure], probs.argmax(-1)[sure])
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


# ---- the harmony figures, on hand-made four-voice pieces ------------------------------------------
def _satb(lines: dict[int, list[int]], beats: int = 16) -> np.ndarray:
    """One piece (1, 4, 64, 48): voice -> a MIDI pitch per beat (-1 = rest), each a quarter note."""
    r = _empty()
    for t, notes in lines.items():
        for b in range(beats):
            pitch = notes[b % len(notes)]
            if pitch >= 0:
                r[0, t, b * 4 : b * 4 + 4, pitch - music.LOWEST_PITCH] = True
    return r


def test_bass_consonance_counts_steps_by_the_interval_class_of_soprano_and_bass():
    # soprano C5 over bass C3 (octave), E3 (minor sixth), F3 (fifth), F#3 (tritone): 3 of 4 beats consonant
    r = _satb({0: [72], 1: [67], 2: [64], 3: [48, 52, 53, 54]})
    good, both = metrics.bass_consonance(metrics.voice_lines(r, music.LOWEST_PITCH))
    assert (good.tolist(), both.tolist()) == ([48], [64])
    assert music.piece_harmony(r)["bass_consonance"] == pytest.approx(0.75)
    silent = _satb({0: [72], 1: [67], 2: [64], 3: [-1, 48]})  # the bass rests every other beat: not counted
    assert music.piece_harmony(silent)["bass_consonance"] == 1.0
    # the soprano's top note and the bass's lowest are the ones compared when a voice has two
    r[0, 3, :, 71 - music.LOWEST_PITCH] = True
    assert metrics.voice_lines(r, music.LOWEST_PITCH)[0, 3, 0] == 48


def test_pitch_classes_together_count_distinct_classes_of_all_voices():
    r = _satb({0: [72], 1: [67], 2: [64], 3: [48]})  # C G E C: 3 classes
    assert music.piece_harmony(r)["pitch_classes_together"] == 3.0
    r = _satb({0: [72], 1: [60], 2: [48], 3: [36]})  # all Cs: 1
    assert music.piece_harmony(r)["pitch_classes_together"] == 1.0
    r = _satb({0: [72, -1], 1: [-1], 2: [-1], 3: [-1]})  # one voice, half the time: 1 (silence not counted)
    assert music.piece_harmony(r)["pitch_classes_together"] == 1.0


def test_consecutive_fifths_and_octaves_count_among_moves_together():
    # soprano and bass a fifth apart move up a step together: every move together is a parallel fifth
    fifths = _satb({0: [67, 69], 1: [-1], 2: [-1], 3: [60, 62]})
    bad, moves = metrics.parallel_moves(metrics.voice_lines(fifths, music.LOWEST_PITCH))
    assert (bad.tolist(), moves.tolist()) == ([15], [15])
    # contrary motion from an octave to an octave (C5/C4 -> D5/D3) is marked too
    contrary = _satb({0: [72, 74], 1: [-1], 2: [-1], 3: [60, 50]})
    assert music.piece_harmony(contrary)["parallel_fifths_octaves"] == 1.0
    # a third to a third, or one voice held while the other moves: no fault, and the held one is no move
    thirds = _satb({0: [64, 65], 1: [-1], 2: [-1], 3: [60, 62]})
    assert music.piece_harmony(thirds)["parallel_fifths_octaves"] == 0.0
    held = _satb({0: [67, 69], 1: [-1], 2: [-1], 3: [60]})
    assert math.isnan(music.piece_harmony(held)["parallel_fifths_octaves"])  # nothing moved together
    # fifth -> unison is not a consecutive fifth; any pair of voices counts (alto-tenor here)
    r = _satb({0: [79], 1: [67, 69], 2: [60, 62], 3: [48]})
    assert metrics.parallel_moves(metrics.voice_lines(r, music.LOWEST_PITCH))[0].tolist() == [15]


def test_notes_at_once_and_doubling_the_melody_in_octaves():
    r = _satb({0: [72, 74], 1: [60, 62], 2: [48, 50], 3: [36, 38]})  # every voice doubles the soprano
    h = music.piece_harmony(r)
    assert h["bass_consonance"] == 1.0 and h["parallel_fifths_octaves"] == 1.0 and h["pitch_classes_together"] == 1
    r[0, 1, :8, 64 - music.LOWEST_PITCH] = True  # the alto sounds two notes for 8 of its 64 steps
    assert music.piece_harmony(r, voices=[1])["notes_at_once"] == pytest.approx(72 / 64)
    assert music.piece_harmony(r)["notes_at_once"] == pytest.approx(200 / 192)  # default: alto, tenor, bass
    assert music.piece_harmony(r, voices=[0])["notes_at_once"] == 1.0
    assert metrics.harmony_gap(h, h) == 0.0
    assert metrics.harmony_gap({**h, "bass_consonance": 0.5}, h) == pytest.approx(0.5 / 4)


def test_the_harmony_of_a_real_cadence():
    """I - IV - V - I in C, one chord a bar: all consonant, 3 classes, no consecutive fifths."""
    r = _empty()
    for bar, chord in enumerate(((72, 67, 64, 48), (72, 69, 65, 53), (71, 67, 62, 43), (72, 67, 64, 48))):
        for t, pitch in enumerate(chord):
            r[0, t, bar * 16 : bar * 16 + 16, pitch - music.LOWEST_PITCH] = True
    h = music.piece_harmony(r, voices=None)
    assert h == {"bass_consonance": 1.0, "pitch_classes_together": 3.0, "parallel_fifths_octaves": 0.0,
                 "notes_at_once": 1.0}  # fmt: skip


# ---- 8 bars, and the harmoniser ------------------------------------------------------------------
def test_eight_bars_are_two_phrases_that_share_their_static_latents(G: MuseGenerator):
    z = music.phrase_latents(9, 2, G)
    assert torch.equal(z[0], music.latents(9, 1, G.latent_dim)[0])  # phrase 1 is the seed's 4-bar piece
    d, k = G.z_dim, G.n_tracks
    assert torch.equal(z[1, :d], z[0, :d]) and torch.equal(z[1, 2 * d : (2 + k) * d], z[0, 2 * d : (2 + k) * d])
    assert not torch.equal(z[1, d : 2 * d], z[0, d : 2 * d])  # its own temporal latents
    piece = music.compose(G, 9, 120, music.DEFAULT_PROGRAMS, [False] * 4, engine="sine", bars=8)
    assert piece.roll.shape == (4, 128, 48)
    assert np.array_equal(piece.roll[:, :64], music.compose(G, 9, 120, music.DEFAULT_PROGRAMS, [False] * 4,
                                                            engine="sine").roll)  # fmt: skip
    assert piece.audio.seconds == pytest.approx(music.seconds(120, 128) + audio.TAIL_S)
    with pytest.raises(InvalidInput, match="bars must be 4 or 8, got 6"):
        music.compose(G, 9, 120, music.DEFAULT_PROGRAMS, [False] * 4, bars=6)


@pytest.fixture(scope="module")
def H(tmp_path_factory) -> MuseGenerator:
    from gandemo.checkpoint import load_checkpoint
    from tests.conftest import write_tiny_harmony_checkpoint

    return load_checkpoint(write_tiny_harmony_checkpoint(tmp_path_factory.mktemp("hk")))["G"]


def test_the_harmonised_soprano_is_exactly_the_melody_and_the_voices_end_with_it(H: MuseGenerator):
    from gandemo import melody

    tune = melody.from_text("G4/4 | C5/4 C5/4 D5/8 E5/8 D5/4 | " + "C5/1 | " * 4 + "E5/2")  # 7 bars: 2 phrases
    piece = music.harmonize(H, tune, 90, music.DEFAULT_PROGRAMS, 4, engine="sine")
    assert piece.roll.shape == (4, 7 * 16, 48) and piece.shift == 0
    assert piece.roll.sum(-1).max() == 1  # one note at a time in every voice
    pm = audio.read_midi(audio.midi_bytes(piece.midi))
    assert [i.name for i in pm.instruments][0] == "Soprano"
    assert pm.get_tempo_changes()[1][0] == pytest.approx(90, rel=1e-6)
    ticks = pm.resolution // 4
    got = [
        (n.pitch, pm.time_to_tick(n.start) // ticks, pm.time_to_tick(n.end) // ticks) for n in pm.instruments[0].notes
    ]
    assert got == list(tune.notes)  # the repeated C5 stays two notes
    assert not piece.roll[1:, :12].any()  # nothing before the pickup
    assert not piece.roll[1:, tune.notes[-1][2] :].any()  # nothing after the melody's last note
    again = music.harmonize(H, tune, 90, music.DEFAULT_PROGRAMS, 4, engine="sine")
    assert np.array_equal(again.roll, piece.roll)  # a seed is one harmonisation
    np.testing.assert_equal(piece.harmony, music.piece_harmony(piece.roll[None]))  # NaN where nothing moved
    assert piece.onsets[0].tolist().count(True) == 4  # C5 C5, and three C5 whole notes after the first


def _line_roll(lines: list[list[int]], steps: int = 64) -> np.ndarray:
    """One 4-voice piece whose voice v sings lines[v][k] (MIDI) over the k-th equal part of the steps."""
    r = np.zeros((4, steps, music.N_PITCHES), bool)
    for v, pitches in enumerate(lines):
        part = steps // len(pitches)
        for k, pitch in enumerate(pitches):
            r[v, k * part : (k + 1) * part, pitch - music.LOWEST_PITCH] = True
    return r


def test_the_best_draft_has_the_fewest_consecutive_fifths_or_octaves_then_the_most_consonant_bass():
    soprano = [72, 74]  # C5 D5
    fifths = _line_roll([soprano, [67, 69], [60, 62], [53, 55]])  # soprano-bass F3 G3: fifths in parallel
    clean = _line_roll([soprano, [67, 65], [64, 59], [48, 55]])  # C3 G3: octave to fifth, no parallels
    dissonant = _line_roll([soprano, [67, 65], [64, 59], [50, 53]])  # D3 F3: a seventh, then a sixth
    drafts = np.stack([fifths, dissonant, clean, clean])[:, None]  # 4 drafts of one phrase
    parallels, consonance = music.voice_leading(drafts[:, 0])
    assert parallels.tolist()[0] > 0 and parallels.tolist()[1:] == [0, 0, 0]
    assert consonance.tolist() == [1.0, 0.5, 1.0, 1.0]
    assert music.best_drafts(drafts).tolist() == [2]  # fewest parallels, then consonance, then the first
    assert music.best_drafts(np.stack([fifths, dissonant])[:, None]).tolist() == [1]  # no parallels beats consonance
    two_phrases = np.stack([np.stack([clean, fifths]), np.stack([fifths, clean])])  # (2 drafts, 2 phrases)
    assert music.best_drafts(two_phrases).tolist() == [0, 1]  # each phrase chooses for itself


def test_drafts_keep_the_pieces_character_and_draft_0_is_the_seeds_piece(H: MuseGenerator):
    z = music.draft_latents(5, 3, H, 4)
    assert z.shape == (4, 3, H.latent_dim)
    assert torch.equal(z[0], music.phrase_latents(5, 3, H))  # one draft: the model as before
    static = music.static_latents(H)
    assert torch.equal(z[:, :, static], z[:1, :, static].expand(4, 3, -1))  # every draft: the same character
    assert all(not torch.equal(z[j, i, ~static], z[0, i, ~static]) for j in range(1, 4) for i in range(3))
    assert torch.equal(music.draft_latents(5, 3, H, 4), z)  # a fixed function of the seed
    assert torch.equal(music.draft_latents(5, 3, H, 8)[:4], z)  # more drafts add to the same ones
    with pytest.raises(ValueError, match="at least 1"):
        music.draft_latents(5, 1, H, 0)


def test_harmonize_phrases_keeps_the_best_draft_and_the_melody_exactly(H: MuseGenerator):
    from gandemo import melody

    tune = melody.from_text("G4/4 | C5/4 C5/4 D5/8 E5/8 D5/4 | " + "C5/1 | " * 4 + "E5/2")
    model_in, _, _ = music.melody_rolls(tune)
    z = music.draft_latents(11, len(model_in), H, 6)
    rolls, chosen = music.harmonize_phrases(H, model_in, z)
    assert rolls.shape == (2, 4, 64, 48) and np.array_equal(rolls[:, 0], model_in)  # the soprano as given
    every = np.stack([music.render(H, z[j], model_in) for j in range(6)])  # each draft on its own
    for i in range(2):
        assert np.array_equal(rolls[i], every[chosen[i], i])
        parallels, consonance = music.voice_leading(every[:, i])
        best = min(range(6), key=lambda j: (parallels[j], -consonance[j], j))
        assert chosen[i] == best
    again, chosen_again = music.harmonize_phrases(H, model_in, music.draft_latents(11, len(model_in), H, 6))
    assert np.array_equal(again, rolls) and np.array_equal(chosen_again, chosen)  # same seed, same piece
    one, kept = music.harmonize_phrases(H, model_in, music.draft_latents(11, len(model_in), H, 1))
    assert kept.tolist() == [0, 0]
    assert np.array_equal(one, music.render(H, music.phrase_latents(11, len(model_in), H), model_in))
    piece = music.harmonize(H, tune, 90, music.DEFAULT_PROGRAMS, 11, engine="sine", drafts=6)
    assert piece.chosen == tuple(chosen.tolist()) and piece.drafts == 6
    first, last = tune.notes[0][1], tune.notes[-1][2]
    assert np.array_equal(piece.roll[1:, first:last], np.concatenate(list(rolls), axis=1)[1:, first:last])
    with pytest.raises(ValueError, match="latents for 1 phrases but 2 melodies"):
        music.harmonize_phrases(H, model_in, z[:, :1])


def test_a_melody_outside_the_sopranos_range_is_moved_by_octaves_and_back(H: MuseGenerator):
    from gandemo import melody

    low = melody.from_text("C3/4 E3/4 G3/4 C4/4")  # 48..60: below G3
    piece = music.harmonize(H, low, 80, music.DEFAULT_PROGRAMS, 1, engine="sine")
    assert piece.shift == 12
    pm = piece.midi
    assert [n.pitch for n in pm.instruments[0].notes] == [48, 52, 55, 60]  # sounds as given
    soprano = np.nonzero(piece.roll[0])[1] + music.LOWEST_PITCH
    assert soprano[0] == 60  # the model saw it an octave up
    lower = [n.pitch for inst in pm.instruments[1:] for n in inst.notes]
    model_lower = np.nonzero(piece.roll[1:])[2] + music.LOWEST_PITCH
    assert lower and set(lower) == set((model_lower - 12).tolist())  # the written voices moved back down
    assert music.octave_shift(90, 95) == -12 and music.octave_shift(90, 96) == -24 and music.octave_shift(60, 72) == 0
    with pytest.raises(InvalidInput, match="spans 36 semitones .* learnt sopranos within 28"):
        music.octave_shift(48, 84)


def test_the_model_reads_a_melody_without_rests_and_phrase_by_phrase():
    from gandemo import melody

    tune = melody.from_text("R/2 E4/4 R/4 | G4/1 | " + "R/1 | " * 2 + "C5/4")  # 5 bars
    model, soprano, onsets = music.melody_rolls(tune)
    assert model.shape == (2, 64, 48) and soprano.shape == (80, 48)
    pitch = model.argmax(-1).reshape(-1) + music.LOWEST_PITCH
    assert model.sum(-1).min() == 1  # every step holds a note
    assert pitch[:12].tolist() == [64] * 12  # leading rest: the first note; inner rest: the one before
    assert pitch[16:64].tolist() == [67] * 48 and pitch[64:].tolist() == [72] * 64  # the end held
    assert not soprano[:8].any() and soprano[8, 64 - music.LOWEST_PITCH] and not soprano[12:16].any()
    assert not onsets.any()


def test_the_harmony_table_puts_the_piece_beside_its_aim_the_model_the_chorales_and_the_floor():
    piece = {
        "bass_consonance": 0.9,
        "pitch_classes_together": 3.1,
        "parallel_fifths_octaves": 0.01,
        "notes_at_once": 1.0,
    }
    card = {
        "harmony_reference": {"pieces": 271, "chorales": {**piece, "bass_consonance": 0.854},
                              "mismatched": {**piece, "bass_consonance": 0.57}},
        "metrics": {music.HARMONY_LABELS["bass_consonance"]: {"model": 0.83, "generated": 1084}},
    }  # fmt: skip
    headers, rows = music.harmony_table(piece, card)
    assert headers[3:] == ["this model on held-out sopranos (1084 pieces)", "held-out chorales (271 phrases)",
                           "mismatched chorales (the floor)"]  # fmt: skip
    assert rows[0] == ["bass consonant with the melody", "90.0 %", "≥ 80 %", "83.0 %", "85.4 %", "57.0 %"]
    assert rows[2][1] == "1.0 %" and rows[3][1] == "1.00" and rows[1][3] == "–"
    headers, rows = music.harmony_table(piece, {})
    assert headers[-2] == "held-out chorales" and all(r[-1] == "–" for r in rows)
    card["metrics"][music.HARMONY_LABELS["bass_consonance"]] |= {"drafts": 8, "one_draft": 0.76}
    headers, rows = music.harmony_table(piece, card)  # the first draft alone, last, where measured
    assert headers[3] == "this model on held-out sopranos (1084 pieces, best of 8 drafts)"
    assert headers[4:] == ["held-out chorales (271 phrases)", "mismatched chorales (the floor)",
                           "this model's first draft alone (no choice)"]  # fmt: skip
    assert rows[0][3] == "83.0 %" and rows[0][-1] == "76.0 %" and rows[1][-1] == "–"
