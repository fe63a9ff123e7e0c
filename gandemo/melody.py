"""A melody in, for the Music tab's harmoniser: from a MIDI file or from text, onto the 16th-note grid.

- `from_midi(data)`: a Standard MIDI File. Every non-drum note counts; where several sound at once
  (chords, or several tracks) the highest is the melody (the "skyline"), so a piano arrangement
  gives its top line. Note times are read in the file's own ticks and put on the nearest 16th
  (bar lines every 4 quarter notes from the file's start), so the tempo plays no part in the grid.
  The file must be in 4/4 (or 2/2, 8/8: four quarter notes a bar); its first tempo is kept.
- `from_text(text)`: note names with durations, e.g. `E4/4 E4/4 F4/4 G4/4 | G4/4 F4/4 E4/4 D4/4`:
  a letter A-G, an optional `#` or `b`, an octave (C4 is middle C) and `/` a note value (1 whole,
  2 half, 4 quarter, 8 eighth, 16 sixteenth; a trailing `.` dots it; without `/` a quarter). `R/2`
  is a half rest, `~` after a note ties it to the next, `|` is a bar line: with bar lines every bar
  but the first (a pickup, placed before the first bar line) and the last must hold 4 beats.
- `EXAMPLES`: public-domain tunes written in that text.

Anything else is refused with `InvalidInput`, saying what is allowed. A `Melody` is its notes as
(pitch, first step, end step) with no overlaps: exactly what the soprano of the harmonised piece
plays (a repeated note stays two notes, which a piano roll alone could not tell from one held note).
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass

import numpy as np

from gandemo.validation import InvalidInput, shown

STEPS_PER_BEAT, STEPS_PER_BAR = 4, 16  # 16th notes; 4/4
MAX_BARS = 16
LOWEST, HIGHEST = 24, 108  # C1..C8: what a melody may use (the harmony is written 3 octaves below at most)
NOTE_HELP = (
    "write each note as a letter A-G, an optional # or b, an octave and /value, e.g. E4/4 (a quarter), "
    "F#4/8. (a dotted eighth), Bb3/2 (a half); R/4 is a quarter rest, ~ ties a note to the next, | is a bar line"
)
MIDI_HELP = "a Standard MIDI file (.mid) in 4/4 with a melody of 1 to 16 bars (the highest note sounding is the melody)"

# Public-domain tunes (melodies only, written here from the tunes themselves): name -> (text, tempo).
EXAMPLES: dict[str, tuple[str, int]] = {
    "Ode to Joy (Beethoven, 1824)": (
        "E4/4 E4/4 F4/4 G4/4 | G4/4 F4/4 E4/4 D4/4 | C4/4 C4/4 D4/4 E4/4 | E4/4. D4/8 D4/2 | "
        "E4/4 E4/4 F4/4 G4/4 | G4/4 F4/4 E4/4 D4/4 | C4/4 C4/4 D4/4 E4/4 | D4/4. C4/8 C4/2",
        100,
    ),
    "Twinkle, Twinkle, Little Star (French tune, 1761)": (
        "C4/4 C4/4 G4/4 G4/4 | A4/4 A4/4 G4/2 | F4/4 F4/4 E4/4 E4/4 | D4/4 D4/4 C4/2 | "
        "G4/4 G4/4 F4/4 F4/4 | E4/4 E4/4 D4/2 | G4/4 G4/4 F4/4 F4/4 | E4/4 E4/4 D4/2 | "
        "C4/4 C4/4 G4/4 G4/4 | A4/4 A4/4 G4/2 | F4/4 F4/4 E4/4 E4/4 | D4/4 D4/4 C4/2",
        96,
    ),
    "Old Hundredth (chorale, Genevan Psalter 1551)": (
        "G4/2 | G4/4 F#4/4 E4/4 D4/4 | G4/2 A4/2 | B4/2 B4/2 | B4/4 B4/4 A4/4 G4/4 | C5/2 B4/2 | A4/2 G4/2 | "
        "A4/4 B4/4 A4/4 G4/4 | E4/2 F#4/2 | G4/2 D5/2 | B4/4 G4/4 A4/4 C5/4 | B4/2 A4/2 | G4/2",
        72,
    ),
    "Frère Jacques (traditional)": (
        "C4/4 D4/4 E4/4 C4/4 | C4/4 D4/4 E4/4 C4/4 | E4/4 F4/4 G4/2 | E4/4 F4/4 G4/2 | "
        "G4/8 A4/8 G4/8 F4/8 E4/4 C4/4 | G4/8 A4/8 G4/8 F4/8 E4/4 C4/4 | C4/4 G3/4 C4/2 | C4/4 G3/4 C4/2",
        104,
    ),
}


@dataclass(frozen=True)
class Melody:
    notes: tuple[tuple[int, int, int], ...]  # (MIDI pitch, first step, end step), sorted, no overlaps
    tempo: float | None  # the MIDI file's tempo in quarter notes per minute; None for text
    source: str  # where it came from, in words

    @property
    def steps(self) -> int:
        """Whole bars of 16ths, up to the bar the last note ends in."""
        return math.ceil(self.notes[-1][2] / STEPS_PER_BAR) * STEPS_PER_BAR

    @property
    def bars(self) -> int:
        return self.steps // STEPS_PER_BAR

    @property
    def pitch_range(self) -> tuple[int, int]:
        pitches = [p for p, _, _ in self.notes]
        return min(pitches), max(pitches)

    def line(self) -> np.ndarray:
        """(steps,) the MIDI pitch sounding at each step, -1 where the melody rests."""
        out = np.full(self.steps, -1, np.int64)
        for pitch, t0, t1 in self.notes:
            out[t0:t1] = pitch
        return out


def _checked(notes: list[tuple[int, int, int]], tempo: float | None, source: str) -> Melody:
    """The checks every melody passes, whatever it came from."""
    if not notes:
        raise InvalidInput(f"the {source} has no notes (only rests): give a melody of 1 to {MAX_BARS} bars")
    melody = Melody(tuple(sorted(notes, key=lambda n: n[1])), tempo, source)
    if melody.bars > MAX_BARS:
        raise InvalidInput(
            f"the {source} is {melody.bars} bars long: at most {MAX_BARS} bars of 4/4 are harmonised; cut it shorter"
        )
    low, high = melody.pitch_range
    if low < LOWEST or high > HIGHEST:
        raise InvalidInput(
            f"the {source} goes from MIDI pitch {low} to {high}: a melody must stay within {LOWEST}..{HIGHEST} (C1..C8)"
        )
    return melody


# ---- text -----------------------------------------------------------------------------------------
_NOTE = re.compile(r"^(?P<name>[A-Ga-g])(?P<acc>#|b|♯|♭)?(?P<octave>-?\d)(?:/(?P<value>\d+)(?P<dot>\.)?)?(?P<tie>~)?$")
_REST = re.compile(r"^[Rr](?:/(?P<value>\d+)(?P<dot>\.)?)?$")
_PITCH_CLASS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_ACCIDENTAL = {None: 0, "#": 1, "♯": 1, "b": -1, "♭": -1}
MAX_TEXT = 10_000  # characters: 16 bars of sixteenths are well under 2,000


def _duration(value: str | None, dot: str | None, token: str, index: int) -> int:
    """A note value (1, 2, 4, 8, 16; dotted) -> steps of a 16th."""
    value = value or "4"
    if value not in ("1", "2", "4", "8", "16"):
        raise InvalidInput(
            f"note {index} ({shown(token)}): /{value} is no note value; use /1, /2, /4, /8 or /16 "
            "(a dot after it dots it)"
        )
    steps = STEPS_PER_BAR // int(value)
    if dot:
        if steps == 1:
            raise InvalidInput(f"note {index} ({shown(token)}): a dotted sixteenth does not fit the 16th-note grid")
        steps += steps // 2
    return steps


def from_text(text: object) -> Melody:
    """A melody written as text (see the module's docstring) -> Melody."""
    if not isinstance(text, str):
        raise InvalidInput(f"the melody text must be text, got {shown(text)}")
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"the melody text is {len(text):,} characters long: at most {MAX_TEXT:,}")
    tokens = text.replace("|", " | ").replace(",", " ").split()
    if not [t for t in tokens if t != "|"]:
        raise InvalidInput(f"the melody text is empty: {NOTE_HELP}")
    bars: list[list[tuple[int, int, bool]]] = [[]]  # per bar: (pitch or -1, steps, tied to the next)
    index = 0
    for token in tokens:
        if token == "|":
            bars.append([])
            continue
        index += 1
        if len(bars) > MAX_BARS + 2 or index > MAX_BARS * STEPS_PER_BAR:
            raise InvalidInput(f"the melody text is longer than {MAX_BARS} bars: cut it shorter")
        rest, note = _REST.match(token), _NOTE.match(token)
        if rest:
            bars[-1].append((-1, _duration(rest["value"], rest["dot"], token, index), False))
        elif note:
            pc = _PITCH_CLASS[note["name"].upper()] + _ACCIDENTAL[note["acc"]]
            pitch = 12 * (int(note["octave"]) + 1) + pc
            bars[-1].append((pitch, _duration(note["value"], note["dot"], token, index), bool(note["tie"])))
        else:
            raise InvalidInput(f"could not read note {index}, {shown(token)}: {NOTE_HELP}")
    bars = [b for b in bars if b] if len(bars) > 1 else bars
    start = 0
    if len(bars) > 1:  # bar lines given: check them; a short first bar is a pickup before the first bar line
        lengths = [sum(d for _, d, _ in b) for b in bars]
        for i, n in enumerate(lengths):
            if n > STEPS_PER_BAR or (0 < i < len(bars) - 1 and n != STEPS_PER_BAR):
                raise InvalidInput(
                    f"bar {i + 1} of the melody text holds {n / STEPS_PER_BEAT:g} beats: a bar of 4/4 holds 4 "
                    "(only the first, a pickup, and the last may hold fewer)"
                )
        start = STEPS_PER_BAR - lengths[0]
    notes: list[tuple[int, int, int]] = []
    tie_open = False
    t = start
    for pitch, steps, tie in (item for b in bars for item in b):
        if tie_open and notes and pitch == notes[-1][0] and notes[-1][2] == t:
            notes[-1] = (pitch, notes[-1][1], t + steps)  # tied: one longer note
        elif tie_open:
            raise InvalidInput(f"a ~ tie must join two notes of the same pitch; the note after it is {pitch}")
        elif pitch >= 0:
            notes.append((pitch, t, t + steps))
        tie_open = tie
        t += steps
    return _checked(notes, None, "melody text")


def example(name: object) -> tuple[Melody, int]:
    """An example tune by its name in EXAMPLES -> (its melody, its tempo)."""
    if not isinstance(name, str) or name not in EXAMPLES:
        raise InvalidInput(f"example must be one of {', '.join(repr(n) for n in EXAMPLES)}; got {shown(name)}")
    text, tempo = EXAMPLES[name]
    melody = from_text(text)
    return Melody(melody.notes, None, f"example {name!r}"), tempo


# ---- MIDI -----------------------------------------------------------------------------------------
MAX_MIDI_BYTES = 1_000_000  # a 16-bar melody is a few kB; a MIDI file this large is not one


def from_midi(data: object) -> Melody:
    """A Standard MIDI File (bytes) -> its melody: the highest non-drum note sounding at each 16th."""
    import pretty_midi

    if not isinstance(data, bytes | bytearray) or not data:
        raise InvalidInput(f"the melody file is empty: give {MIDI_HELP}")
    if len(data) > MAX_MIDI_BYTES:
        raise InvalidInput(
            f"the melody file is {len(data):,} bytes: give {MIDI_HELP} (at most {MAX_MIDI_BYTES:,} bytes)"
        )
    if not bytes(data[:4]) == b"MThd":
        raise InvalidInput(f"the melody file is not a MIDI file (it does not start with MThd): give {MIDI_HELP}")
    try:
        pm = pretty_midi.PrettyMIDI(io.BytesIO(bytes(data)))
    except Exception as exc:  # mido/pretty_midi raise many kinds on a broken file
        raise InvalidInput(
            f"the melody file could not be read as MIDI ({type(exc).__name__}): give {MIDI_HELP}"
        ) from None
    for ts in pm.time_signature_changes:
        if ts.numerator * 4 / ts.denominator != 4 or ts.numerator == 1:
            raise InvalidInput(
                f"the melody file is in {ts.numerator}/{ts.denominator}: only 4/4 (four quarter notes a bar) "
                "is harmonised"
            )
    pitched = [n for inst in pm.instruments if not inst.is_drum for n in inst.notes]
    if not pitched:
        drums = any(inst.notes for inst in pm.instruments if inst.is_drum)
        what = "only drums (no pitched notes)" if drums else "no notes"
        raise InvalidInput(f"the melody file has {what}: give {MIDI_HELP}")
    ticks = pm.resolution / STEPS_PER_BEAT
    spans = []
    for n in pitched:
        t0 = round(pm.time_to_tick(n.start) / ticks)
        t1 = max(round(pm.time_to_tick(n.end) / ticks), t0 + 1)  # a note shorter than a 16th keeps one step
        spans.append((n.pitch, t0, t1))
    end = max(t1 for _, _, t1 in spans)
    if end > MAX_BARS * STEPS_PER_BAR:
        raise InvalidInput(
            f"the melody file is {math.ceil(end / STEPS_PER_BAR)} bars long: at most {MAX_BARS} bars of 4/4 are "
            "harmonised; cut it shorter"
        )
    # the skyline: at each step the highest note sounding (of equal pitches, the later-struck one)
    owner = np.full(end, -1)
    top = np.full(end, -1)
    for i, (pitch, t0, t1) in sorted(enumerate(spans), key=lambda s: (s[1][1], s[0])):
        better = pitch >= top[t0:t1]
        owner[t0:t1][better] = i
        top[t0:t1][better] = pitch
    notes = []
    for t in range(end):
        if owner[t] < 0:
            continue
        if t and owner[t - 1] == owner[t] and notes and notes[-1][2] == t:
            notes[-1] = (notes[-1][0], notes[-1][1], t + 1)
        else:
            notes.append((int(top[t]), t, t + 1))
    tempo = float(pm.get_tempo_changes()[1][0]) if len(pm.get_tempo_changes()[1]) else 120.0
    return _checked(notes, round(tempo, 3), "melody file")


def choose(midi: bytes | None, text: object, example_name: object) -> tuple[Melody, float | None]:
    """The melody of a request: the MIDI file if one is given, else the text if it is not blank,
    else the example tune; with its own tempo (the file's or the example's; None for text)."""
    if midi is not None:
        melody = from_midi(midi)
        return melody, melody.tempo
    if isinstance(text, str) and text.strip():
        return from_text(text), None
    if text is not None and not isinstance(text, str):
        raise InvalidInput(f"the melody text must be text, got {shown(text)}")
    if example_name not in (None, ""):
        return example(example_name)
    raise InvalidInput(
        f"no melody given: upload {MIDI_HELP}, or write one as text (e.g. E4/4 E4/4 F4/4 G4/4 | G4/2 E4/2), "
        "or choose an example tune"
    )
