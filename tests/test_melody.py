"""A melody in: text with note values, bar lines, pickups, rests and ties; MIDI files read by their
highest sounding note on the 16th grid; the example tunes; every refusal in plain words."""

import io

import numpy as np
import pretty_midi
import pytest

from gandemo import melody
from gandemo.validation import InvalidInput


def midi_file(
    notes: list[tuple[int, float, float]],
    tempo: float = 90.0,
    drums: list[tuple[int, float, float]] = (),
    time_signature: tuple[int, int] | None = None,
    tracks: int = 1,
) -> bytes:
    """A Standard MIDI file of `notes` (pitch, start beat, end beat), dealt round-robin over `tracks`
    instruments, plus drums; beats at `tempo`."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    if time_signature:
        pm.time_signature_changes.append(pretty_midi.TimeSignature(*time_signature, 0.0))
    insts = [pretty_midi.Instrument(program=0, name=f"track {i}") for i in range(tracks)]
    beat = 60.0 / tempo
    for i, (pitch, start, end) in enumerate(notes):
        insts[i % tracks].notes.append(pretty_midi.Note(90, pitch, start * beat, end * beat))
    pm.instruments.extend(insts)
    if drums:
        kit = pretty_midi.Instrument(program=0, is_drum=True)
        kit.notes.extend(pretty_midi.Note(90, p, s * beat, e * beat) for p, s, e in drums)
        pm.instruments.append(kit)
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


# ---- text -----------------------------------------------------------------------------------------
def test_text_note_names_octaves_accidentals_and_values():
    m = melody.from_text("C4/4 C#4/8 Db4/8 B3/2 | E5/16 F♯5/16 bb4/8 G4/4. A4/8 R/4")
    assert m.notes == (
        (60, 0, 4), (61, 4, 6), (61, 6, 8), (59, 8, 16),
        (76, 16, 17), (78, 17, 18), (70, 18, 20), (67, 20, 26), (69, 26, 28),
    )  # fmt: skip
    assert m.bars == 2 and m.steps == 32 and m.tempo is None and m.source == "melody text"
    assert melody.from_text("E4 F4").notes == ((64, 0, 4), (65, 4, 8))  # no value: a quarter


def test_a_short_first_bar_is_a_pickup_placed_before_the_first_bar_line():
    m = melody.from_text("G4/4 | C5/2 C5/2 | B4/1")
    assert m.notes[0] == (67, 12, 16) and m.notes[1] == (72, 16, 24)  # 3 beats of rest, then the pickup
    assert m.bars == 3
    assert melody.from_text("G4/4 C5/4").notes[0] == (67, 0, 4)  # without bar lines: from the downbeat
    line = m.line()
    assert line[:12].tolist() == [-1] * 12 and line[12] == 67 and len(line) == 48


def test_repeated_notes_stay_two_notes_and_a_tie_makes_one():
    assert melody.from_text("E4/4 E4/4").notes == ((64, 0, 4), (64, 4, 8))
    assert melody.from_text("E4/4~ E4/4 F4/2").notes == ((64, 0, 8), (65, 8, 16))
    # across a bar line (the 3-beat first bar is a pickup)
    assert melody.from_text("G4/2 G4/4~ | G4/4 A4/2.").notes == ((67, 4, 12), (67, 12, 20), (69, 20, 32))


@pytest.mark.parametrize(
    "text, words",
    [
        ("", "melody text is empty"),
        ("   |  | ", "melody text is empty"),
        ("H4/4", r"could not read note 1, 'H4/4': write each note as a letter A-G"),
        ("C4/4 D4/3", r"note 2 \('D4/3'\): /3 is no note value"),
        ("C4/16.", "a dotted sixteenth does not fit"),
        ("R/4 R/2", r"has no notes \(only rests\)"),
        ("C4/4 | C4/2 | C4/1", "bar 2 of the melody text holds 2 beats: a bar of 4/4 holds 4"),
        ("C4/1 C4/4 | D4/4", "bar 1 of the melody text holds 5 beats"),
        ("C4/4~ D4/4", "a ~ tie must join two notes of the same pitch"),
        ("C0/4", r"MIDI pitch 12 to 12: a melody must stay within 24..108"),
        (" ".join(["C4/1"] * 17), "17 bars long: at most 16"),
        (" ".join(["C4/16"] * 300), "longer than 16 bars"),
        ("C4/4 " * 3000, "characters long: at most 10,000"),
        (42, "melody text must be text, got 42"),
    ],
)
def test_text_that_is_not_a_melody_is_refused_in_plain_words(text, words):
    with pytest.raises(InvalidInput, match=words):
        melody.from_text(text)


def test_every_example_tune_reads_and_is_a_few_bars_of_4_4():
    for name, (text, tempo) in melody.EXAMPLES.items():
        m, t = melody.example(name)
        assert t == tempo and 30 <= tempo <= 240
        assert 4 <= m.bars <= melody.MAX_BARS and m.source == f"example {name!r}"
        assert m.notes == melody.from_text(text).notes
    old100, _ = melody.example("Old Hundredth (chorale, Genevan Psalter 1551)")
    assert old100.notes[0] == (67, 8, 16) and old100.notes[-1][0] == 67  # a half-note pickup; ends on G
    with pytest.raises(InvalidInput, match="example must be one of"):
        melody.example("Für Elise")


# ---- MIDI -----------------------------------------------------------------------------------------
def test_a_midi_melody_comes_back_on_the_16th_grid_with_its_tempo():
    notes = [(64, 0, 1), (64, 1, 2), (65, 2, 2.5), (67, 2.5, 4), (60, 5, 6)]  # beats; a rest at beat 4
    m = melody.from_midi(midi_file(notes, tempo=72))
    assert m.notes == ((64, 0, 4), (64, 4, 8), (65, 8, 10), (67, 10, 16), (60, 20, 24))
    assert m.tempo == pytest.approx(72) and m.bars == 2 and m.source == "melody file"


def test_the_highest_sounding_note_of_chords_and_tracks_is_the_melody():
    # a chord per beat (C major, then G major) spread over three tracks, the top line E5 D5
    chords = [(60, 0, 1), (64, 0, 1), (76, 0, 1), (55, 1, 2), (59, 1, 2), (74, 1, 2)]
    m = melody.from_midi(midi_file(chords, tracks=3, drums=[(36, 0, 2)]))
    assert m.notes == ((76, 0, 4), (74, 4, 8))
    # a long low note under a short high one: the low note is the melody again once the high one ends
    m = melody.from_midi(midi_file([(60, 0, 2), (72, 0.5, 1)]))
    assert m.notes == ((60, 0, 2), (72, 2, 4), (60, 4, 8))
    # notes off the grid are put on the nearest 16th; a note shorter than a 16th keeps one step
    m = melody.from_midi(midi_file([(62, 0.02, 0.98), (64, 1.0, 1.05)]))
    assert m.notes == ((62, 0, 4), (64, 4, 5))


@pytest.mark.parametrize(
    "data, words",
    [
        (b"", "melody file is empty"),
        (None, "melody file is empty"),
        (b"RIFF....WAVEfmt ", "not a MIDI file"),
        (b"MThd\x00\x00\x00\x06garbage", "could not be read as MIDI"),
        (midi_file([]), "has no notes"),
        (midi_file([], drums=[(36, 0, 1), (38, 1, 2)]), r"only drums \(no pitched notes\)"),
        (midi_file([(60, 0, 1)], time_signature=(3, 4)), "in 3/4: only 4/4"),
        (midi_file([(60, 0, 1)], time_signature=(6, 8)), "in 6/8: only 4/4"),
        (midi_file([(60, 0, 68)]), "17 bars long: at most 16"),
        (midi_file([(20, 0, 1)]), "within 24..108"),
        (b"MThd" + bytes(1_000_001), "bytes: give a Standard MIDI file"),
    ],
)
def test_files_that_are_no_melody_are_refused_in_plain_words(data, words):
    with pytest.raises(InvalidInput, match=words):
        melody.from_midi(data)


def test_cut_time_is_four_quarter_notes_a_bar_and_accepted():
    m = melody.from_midi(midi_file([(60, 0, 4), (62, 4, 8)], time_signature=(2, 2)))
    assert m.bars == 2


# ---- which melody a request means ---------------------------------------------------------------
def test_the_file_wins_then_the_text_then_the_example():
    data = midi_file([(72, 0, 4)], tempo=66)
    name = next(iter(melody.EXAMPLES))
    m, tempo = melody.choose(data, "C4/4", name)
    assert m.notes == ((72, 0, 16),) and tempo == pytest.approx(66)
    m, tempo = melody.choose(None, "C4/4", name)
    assert m.notes == ((60, 0, 4),) and tempo is None
    m, tempo = melody.choose(None, "  ", name)
    assert m.source == f"example {name!r}" and tempo == melody.EXAMPLES[name][1]
    with pytest.raises(InvalidInput, match="no melody given: upload a Standard MIDI file"):
        melody.choose(None, "", None)
    with pytest.raises(InvalidInput, match="melody text must be text"):
        melody.choose(None, ["C4/4"], None)


def test_the_line_is_the_pitch_at_every_step():
    m = melody.from_text("C4/8 R/8 D4/4 E4/2")
    assert m.line().tolist() == [60, 60, -1, -1, 62, 62, 62, 62] + [64] * 8
    assert np.array_equal(melody.from_text("C4/4").line(), [60] * 4 + [-1] * 12)  # the bar is filled out
