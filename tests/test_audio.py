"""gandemo.audio: piano roll <-> MIDI both ways, and MIDI -> audio with FluidSynth or the sine fallback."""

import numpy as np
import pretty_midi
import pytest

from gandemo import audio

NAMES = ["S", "A", "T", "B"]


def _roll(seed: int = 0, density: float = 0.15) -> np.ndarray:
    return np.random.default_rng(seed).random((4, 64, 48)) < density


@pytest.mark.parametrize("tempo", [30, 77.5, 120, 240])
def test_roll_to_midi_to_roll_is_exact_for_any_roll(tempo: float):
    for seed in range(3):
        roll = _roll(seed)
        pm = audio.roll_to_midi(roll, tempo, [40, 41, 42, 43], NAMES, lowest_pitch=36)
        back = audio.read_midi(audio.midi_bytes(pm))  # through a real Standard MIDI File
        assert np.array_equal(audio.midi_to_roll(back, 64, 36, 48, names=NAMES), roll)
        assert [i.program for i in back.instruments] == [40, 41, 42, 43]
        assert back.get_tempo_changes()[1][0] == pytest.approx(tempo, rel=1e-4)


def test_midi_to_roll_to_midi_is_exact_for_grid_notes():
    """Any MIDI a roll can hold (notes on the 16th grid, none touching another of its pitch)
    comes back note for note: same pitches, starts, ends, programs."""
    pm = pretty_midi.PrettyMIDI(resolution=480, initial_tempo=96.0)
    spb = 60 / 96 / 4  # seconds per 16th
    rng = np.random.default_rng(1)
    for name, program in zip(NAMES, [0, 19, 52, 73], strict=True):
        inst = pretty_midi.Instrument(program=program, name=name)
        t = int(rng.integers(0, 4))
        while t < 60:
            length = int(rng.integers(1, 9))
            end = min(t + length, 64)
            inst.notes.append(pretty_midi.Note(80, int(rng.integers(36, 84)), t * spb, end * spb))
            t = end + int(rng.integers(1, 4))  # a gap: notes of one pitch never touch
        pm.instruments.append(inst)
    roll = audio.midi_to_roll(audio.read_midi(audio.midi_bytes(pm)), 64, 36, 48, names=NAMES)
    again = audio.read_midi(audio.midi_bytes(audio.roll_to_midi(roll, 96.0, [0, 19, 52, 73], NAMES, 36)))
    for a, b in zip(pm.instruments, again.instruments, strict=True):
        key = lambda n: (round(n.start, 6), n.pitch)  # noqa: E731
        assert [(round(n.start, 6), round(n.end, 6), n.pitch) for n in sorted(a.notes, key=key)] == [
            (round(n.start, 6), round(n.end, 6), n.pitch) for n in sorted(b.notes, key=key)
        ]
        assert (a.program, a.name) == (b.program, b.name)


def test_a_run_of_steps_is_one_note_and_a_silent_voice_stays_silent():
    roll = np.zeros((4, 64, 48), bool)
    roll[0, 4:12, 24] = True  # C4, two beats
    roll[2, 0:64, 12] = True  # C3, the whole roll
    pm = audio.roll_to_midi(roll, 120, [40] * 4, NAMES, 36)
    s = pm.instruments[0].notes
    assert len(s) == 1 and s[0].pitch == 60 and s[0].start == pytest.approx(0.5) and s[0].end == pytest.approx(1.5)
    back = audio.read_midi(audio.midi_bytes(pm))
    assert [i.name for i in back.instruments] == ["S", "T"]  # a MIDI file keeps no empty track...
    assert np.array_equal(audio.midi_to_roll(back, 64, 36, 48, names=NAMES), roll)  # ...its voice stays empty


def test_midi_to_roll_refuses_what_does_not_fit():
    pm = audio.roll_to_midi(_roll(), 100, [0] * 4, NAMES, 36)
    with pytest.raises(ValueError, match="outside"):
        audio.midi_to_roll(pm, 64, 48, 24)
    with pytest.raises(ValueError, match="after the roll's 32 steps"):
        audio.midi_to_roll(pm, 32, 36, 48)
    with pytest.raises(ValueError, match="none of the tracks"):
        audio.midi_to_roll(pm, 64, 36, 48, names=["Soprano", "Alto", "Tenor", "Bass"])
    with pytest.raises(ValueError, match="outside MIDI"):
        audio.roll_to_midi(_roll(), 100, [0] * 4, NAMES, lowest_pitch=100)


def _piece() -> pretty_midi.PrettyMIDI:
    roll = np.zeros((4, 64, 48), bool)
    for track, pitch in enumerate((72, 67, 64, 48)):
        roll[track, :32, pitch - 36] = True
        roll[track, 32:, pitch - 36 - 5] = True
    return audio.roll_to_midi(roll, 120, [40, 40, 41, 42], NAMES, 36)


def _onset_seconds(x: np.ndarray, rate: int) -> float:
    env = np.abs(x)
    return float(np.argmax(env > 0.05 * env.max()) / rate)


@pytest.mark.skipif(audio.fluidsynth_synth() is None, reason="FluidSynth or a SoundFont is not installed")
def test_fluidsynth_plays_the_notes_for_exactly_the_piece_plus_its_tail():
    out = audio.render_audio(_piece(), seconds=8.0)
    assert out.engine == "fluidsynth" and "FluidSynth" in out.note
    assert out.sample_rate == audio.SAMPLE_RATE and out.seconds == pytest.approx(8.0 + audio.TAIL_S)
    assert np.abs(out.samples).max() == pytest.approx(audio.PEAK, rel=1e-3)
    middle = out.samples[int(0.5 * out.sample_rate) : int(7.5 * out.sample_rate)]
    assert float(np.sqrt(np.mean(middle**2))) > 0.02  # it sounds the whole piece through


def test_the_sine_fallback_is_never_silent_and_says_so():
    out = audio.render_audio(_piece(), seconds=8.0, engine="sine")
    assert out.engine == "sine" and "FluidSynth is not installed" in out.note
    assert out.seconds == pytest.approx(8.0 + audio.TAIL_S) and np.abs(out.samples).max() > 0.5


def test_without_fluidsynth_auto_falls_back_to_sine_and_says_so(monkeypatch):
    monkeypatch.setattr(audio, "fluidsynth_synth", lambda sample_rate=audio.SAMPLE_RATE: None)
    out = audio.render_audio(_piece(), seconds=8.0)
    assert out.engine == "sine" and "sine tone" in out.note and np.abs(out.samples).max() > 0.5
    with pytest.raises(RuntimeError, match="FluidSynth is not available"):
        audio.render_audio(_piece(), seconds=8.0, engine="fluidsynth")


def test_a_muted_voice_is_not_heard():
    """The soprano alone starts at 0 s; with the soprano muted and the others starting late, the
    audio starts late too."""
    roll = np.zeros((4, 64, 48), bool)
    roll[0, 0:8, 36] = True
    roll[1:, 32:40, 20] = True
    pm = audio.roll_to_midi(roll, 120, [0] * 4, NAMES, 36)
    all_on = audio.render_audio(pm, 8.0, engine="sine")
    muted = audio.render_audio(pm, 8.0, mute=[True, False, False, False], engine="sine")
    assert _onset_seconds(all_on.samples, all_on.sample_rate) < 0.05
    assert _onset_seconds(muted.samples, muted.sample_rate) == pytest.approx(4.0, abs=0.05)
    silent = audio.roll_to_midi(np.zeros((4, 64, 48), bool), 120, [0] * 4, NAMES, 36)
    with pytest.raises(ValueError, match="nothing to play"):
        audio.render_audio(silent, 8.0)
    with pytest.raises(ValueError, match="4 instruments but 3"):
        audio.render_audio(pm, 8.0, mute=[True, False, False])


def test_wav_round_trip():
    out = audio.render_audio(_piece(), seconds=2.0, engine="sine")
    samples, rate = audio.read_wav(audio.wav_bytes(out))
    assert rate == out.sample_rate and len(samples) == len(out.samples)
    assert np.abs(samples - out.samples).max() < 1 / 16000


def test_a_soundfont_is_found(monkeypatch, tmp_path):
    sf2 = tmp_path / "mine.sf2"
    sf2.write_bytes(b"RIFF")
    monkeypatch.setenv(audio.ENV_SOUNDFONT, str(sf2))
    assert audio.soundfont_path() == sf2
    monkeypatch.setenv(audio.ENV_SOUNDFONT, str(tmp_path / "missing.sf2"))
    assert audio.soundfont_path() is not None  # a system one or pretty_midi's own TimGM6mb.sf2
