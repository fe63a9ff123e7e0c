"""Music: a MuseGAN-style hybrid generator writes four bars for four voices (soprano, alto, tenor,
bass) in the style of Bach's chorales; the piece is heard, drawn as a piano roll, downloaded as
MIDI and measured with the MuseGAN paper's metrics beside the same numbers for held-out chorales.

A piece is a binary piano roll (4 tracks, 64 sixteenth-note steps = 4 bars of 4/4, 48 pitches =
MIDI 36..83, C2..B5), the range of the JSB chorales (36..81) with room to transpose.
`render(G, z)` is the one way pieces are made (the app, training's sample grids and the
evaluation all call it): G gives each note a probability and each voice sings, at each 16th, its
most probable pitch (`decode`). Not Bernoulli sampling: the piece is a fixed function of the seed
(the same seed is the same piece) and no note is switched on by chance, which would scatter short
stray notes through the voices. `compose(...)` is the whole click: checks, render, MIDI, audio,
picture and metrics; `harmonize(...)` the harmoniser's, which writes alto, tenor and bass under a
given melody: each 4-bar phrase in DRAFTS drafts, keeping the one with the best voice leading
(`harmonize_phrases`, which the evaluation calls too).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import nn

from gandemo import audio, metrics
from gandemo.melody import Melody
from gandemo.validation import InvalidInput, as_bool, as_int

TRACKS = ("soprano", "alto", "tenor", "bass")
MIDI_NAMES = tuple(t.capitalize() for t in TRACKS)  # the instruments' names in the MIDI file
TRACK_COLOURS = ((214, 39, 40), (255, 127, 14), (44, 160, 44), (31, 119, 180))  # red, orange, green, blue
N_BARS, STEPS_PER_BAR, STEPS_PER_BEAT = 4, 16, 4
N_STEPS = N_BARS * STEPS_PER_BAR
LOWEST_PITCH, N_PITCHES = 36, 48  # C2..B5
MIN_NOTE_STEPS = 2  # a "qualified" note lasts at least an eighth (see gandemo.metrics.qualified_note_rate)
SEED_MAX = 2**31 - 1
TEMPO_MIN, TEMPO_MAX, DEFAULT_TEMPO = 30, 240, 80
# General MIDI programs (0-based): a string quartet, so the four voices are told apart by ear
DEFAULT_PROGRAMS = (40, 40, 41, 42)  # violin, violin, viola, cello
BAR_CHOICES = (4, 8)  # the composer's lengths: one phrase, or two of one piece (`phrase_latents`)

# the metrics' names in the card (written by `python -m training evaluate music`) and in the app
METRIC_LABELS = {
    "empty_bars": "empty bars",
    "pitch_classes_per_bar": "pitch classes used per bar",
    "qualified_notes": "qualified notes (an eighth or longer)",
    "polyphony": "chords within a voice (polyphony)",
    "tonal_distance": "tonal distance between voices",
}
RATES = {"empty_bars", "qualified_notes", "polyphony"}  # shown as percentages
SURE = 0.5  # a voice sings a new pitch where it is at least this probable (`decode`)
# the harmoniser (variant "harmonize") writes alto, tenor and bass under a given soprano; its figures
# (gandemo.metrics.harmony_metrics), as a harmony teacher would mark a four-part setting
HARMONIZE = "harmonize"
WRITTEN = (1, 2, 3)  # the tracks the harmoniser writes
HARMONY_LABELS = {
    "bass_consonance": "bass consonant with the melody",
    "pitch_classes_together": "pitch classes sounding together",
    "parallel_fifths_octaves": "consecutive fifths or octaves (share of moves together)",
    "notes_at_once": "notes at once within a voice",
}
HARMONY_RATES = {"bass_consonance", "parallel_fifths_octaves"}
NOTE_NAMES = ("C", "C♯", "D", "E♭", "E", "F", "F♯", "G", "A♭", "A", "B♭", "B")


def pitch_name(midi_pitch: int) -> str:
    """MIDI pitch -> scientific pitch name: 60 -> "C4"."""
    return f"{NOTE_NAMES[midi_pitch % 12]}{midi_pitch // 12 - 1}"


# ---- input checks ---------------------------------------------------------------------------------
def check_seed(seed: Any) -> int:
    return as_int(seed, "seed", 0, SEED_MAX)


def check_tempo(tempo: Any) -> int:
    return as_int(tempo, "tempo (beats per minute)", TEMPO_MIN, TEMPO_MAX)


def check_programs(programs: Sequence[Any]) -> list[int]:
    return [as_int(p, f"{t} instrument (General MIDI program)", 0, 127) for t, p in zip(TRACKS, programs, strict=True)]


def check_bars(bars: Any) -> int:
    value = as_int(bars, "bars", min(BAR_CHOICES), max(BAR_CHOICES))
    if value not in BAR_CHOICES:
        raise InvalidInput(f"bars must be {' or '.join(map(str, BAR_CHOICES))}, got {value}")
    return value


def check_mutes(mutes: Sequence[Any]) -> list[bool]:
    out = [as_bool(m, f"mute {track}") for track, m in zip(TRACKS, mutes, strict=True)]
    if all(out):
        raise InvalidInput("every voice is muted: unmute at least one to hear the piece")
    return out


# ---- the model ------------------------------------------------------------------------------------
def latents(seed: int, count: int, latent_dim: int) -> torch.Tensor:
    """(count, latent_dim) standard-normal latents; row i depends only on (seed, i)."""
    rows = [np.random.default_rng([seed, i]).standard_normal(latent_dim) for i in range(count)]
    return torch.from_numpy(np.stack(rows)).float()


def phrase_latents(seed: int, count: int, G: nn.Module) -> torch.Tensor:
    """Latents of `count` consecutive phrases of one piece: row 0 is `latents(seed, 1)` (the
    seed's 4-bar piece), and every later row keeps its static latents (shared and private: the
    piece's character, which sets the key) with temporal latents of its own (how that phrase
    moves), drawn as row i of `latents(seed, count)`."""
    z = latents(seed, count, G.latent_dim)
    static = static_latents(G)
    z[1:, static] = z[0, static]
    return z


def static_latents(G: nn.Module) -> torch.Tensor:
    """bool (G.latent_dim,): where G's latent holds the static parts (shared and private per voice:
    the piece's character), not the temporal ones (how each phrase moves)."""
    d, k = G.z_dim, G.n_tracks
    static = torch.zeros(G.latent_dim, dtype=torch.bool)
    static[:d] = True
    static[2 * d : (2 + k) * d] = True
    return static


def flatten_bars(x: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """(N, tracks, bars, steps per bar, pitches) -> (N, tracks, steps, pitches)."""
    return x.reshape(*x.shape[:2], x.shape[2] * x.shape[3], x.shape[4])


def decode(probs: torch.Tensor) -> torch.Tensor:
    """Note probabilities (..., steps, pitches) -> notes, bool, one at a time in each voice: at a
    step where the voice's most probable pitch is at least SURE (0.5) it sings that pitch; at any
    other step it holds the pitch of its last sure step (before the first one: the first one's; a
    voice never sure at all sings its most probable pitch). Measured on the shipped models: the
    MuseGAN paper's threshold (every pitch at 0.5 or more) let the composer sound two notes within a
    voice in 6 % of its steps; the most probable pitch where it is sure, silence elsewhere, left
    the voices resting in 5-10 % of their steps (the chorales: 0.4 %); the most probable pitch
    everywhere put stray notes at the bottom of the range where the model meant silence."""
    best, idx = probs.max(-1)  # (..., steps)
    sure = best >= SURE
    steps = torch.arange(idx.shape[-1], device=idx.device).expand_as(idx)
    last = torch.cummax(torch.where(sure, steps, -1), -1).values
    following = torch.cummin(torch.where(sure, steps, idx.shape[-1]).flip(-1), -1).values.flip(-1)
    source = torch.where(last >= 0, last, torch.where(following < idx.shape[-1], following, steps))
    pitch = idx.gather(-1, source)
    return torch.zeros_like(probs, dtype=torch.bool).scatter_(-1, pitch.unsqueeze(-1), True)


@torch.inference_mode()
def render(
    G: nn.Module, z: torch.Tensor, melody: np.ndarray | torch.Tensor | None = None, batch: int = 256
) -> np.ndarray:
    """The one way pieces are made: latents (N, G.latent_dim) -> binary piano rolls, bool
    (N, tracks, steps, pitches), decoded by `decode`. G runs in eval mode (BatchNorm's running
    statistics), so a piece depends on its own latent (and melody) only. A track-conditional G
    (the harmoniser) takes `melody` (N, steps, pitches) too: the roll is that melody as the
    soprano above the voices G writes."""
    was_training = G.training
    device = next(G.parameters()).device
    mel = None if melody is None else torch.as_tensor(np.asarray(melody)).bool()
    if mel is not None and mel.shape[0] != len(z):
        raise ValueError(f"{len(z)} latents but {mel.shape[0]} melodies")
    G.eval()
    out = []
    try:
        for i in range(0, len(z), batch):
            if mel is None:
                probs = G(z[i : i + batch].to(device))
            else:
                m = mel[i : i + batch]
                bars = m.reshape(len(m), -1, STEPS_PER_BAR, m.shape[-1]).float().to(device)
                probs = G(z[i : i + batch].to(device), bars)
            notes = decode(flatten_bars(probs.float()).cpu())  # across bar lines: a held note continues
            out.append(notes if mel is None else torch.cat([mel[i : i + batch, None], notes], 1))
    finally:
        G.train(was_training)
    return torch.cat(out).numpy()


def piece_metrics(rolls: np.ndarray) -> dict[str, dict[str, float]]:
    """The MuseGAN metrics (gandemo.metrics.music_metrics) of rolls (N, tracks, steps, pitches)."""
    return metrics.music_metrics(
        rolls, TRACKS, STEPS_PER_BAR, STEPS_PER_BEAT, LOWEST_PITCH, min_note_steps=MIN_NOTE_STEPS
    )


def piece_harmony(rolls: np.ndarray, voices: Sequence[int] | None = WRITTEN) -> dict[str, float]:
    """The harmony figures (gandemo.metrics.harmony_metrics) of rolls (N, 4 voices, steps, pitches),
    pooled over the pieces; notes at once over `voices` (default: the three the harmoniser writes)."""
    return metrics.harmony_metrics(rolls, LOWEST_PITCH, voices)


def to_midi(roll: np.ndarray, tempo: float, programs: Sequence[int]) -> Any:
    """One piece (tracks, steps, pitches) -> pretty_midi.PrettyMIDI, one instrument per voice,
    named Soprano, Alto, Tenor, Bass."""
    return audio.roll_to_midi(roll, tempo, programs, MIDI_NAMES, LOWEST_PITCH, STEPS_PER_BEAT)


def from_midi(pm: Any) -> np.ndarray:
    """The inverse of `to_midi`: the piece (tracks, steps, pitches) of a MIDI file it wrote."""
    return audio.midi_to_roll(pm, N_STEPS, LOWEST_PITCH, N_PITCHES, STEPS_PER_BEAT, names=MIDI_NAMES)


def seconds(tempo: float, steps: int = N_STEPS) -> float:
    """How long `steps` sixteenths last at `tempo` beats (quarter notes) per minute."""
    return steps / STEPS_PER_BEAT * 60.0 / tempo


# ---- the picture ----------------------------------------------------------------------------------
STEP_W, PITCH_H, LEFT, TOP, PAD = 12, 7, 40, 36, 6
KEY_Y = 15  # baseline of the title and the colour key; the bar numbers sit just above the grid
MIN_WIDTH = 560  # a short melody's picture still has room for its title beside the colour key


def _font(size: int = 11) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow built without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def piano_roll_image(
    roll: np.ndarray,
    mute: Sequence[bool] | None = None,
    title: str = "",
    lowest_pitch: int = LOWEST_PITCH,
    onsets: np.ndarray | None = None,
) -> Image.Image:
    """One piece (tracks, steps, pitches) as a picture: time left to right, pitch bottom to top,
    each voice in its own colour (a muted voice hollow), bar lines, beat lines, the C and G of
    every octave named at the left, the bar numbers and a colour key at the top. Pitch row i is
    MIDI pitch `lowest_pitch + i`; `onsets` (tracks, steps), where given, marks steps at which a
    note is struck again on the pitch already sounding (a repeated melody note is two boxes)."""
    roll = np.asarray(roll, dtype=bool)
    k, t, p = roll.shape
    mute = list(mute) if mute is not None else [False] * k
    w, h = max(LEFT + t * STEP_W + PAD, MIN_WIDTH), TOP + p * PITCH_H + PAD
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    font = _font()

    def y_of(i: int) -> int:  # top edge of pitch row i (row 0 = lowest pitch, at the bottom)
        return TOP + (p - 1 - i) * PITCH_H

    for i in range(p):
        pitch = lowest_pitch + i
        if pitch % 12 in (1, 3, 6, 8, 10):  # black keys: shaded rows, as on a keyboard
            d.rectangle([LEFT, y_of(i), LEFT + t * STEP_W - 1, y_of(i) + PITCH_H - 1], fill=(240, 240, 244))
        if pitch % 12 in (0, 7):
            if pitch % 12 == 0:
                d.line([LEFT, y_of(i) + PITCH_H - 1, LEFT + t * STEP_W, y_of(i) + PITCH_H - 1], fill=(190, 190, 200))
            d.text((LEFT - 4, y_of(i) + PITCH_H / 2), pitch_name(pitch), fill=(60, 60, 60), font=font, anchor="rm")
    for s in range(0, t + 1, STEPS_PER_BEAT):
        bar = s % STEPS_PER_BAR == 0
        x = LEFT + s * STEP_W
        d.line([x, TOP, x, TOP + p * PITCH_H], fill=(80, 80, 80) if bar else (215, 215, 222), width=2 if bar else 1)
        if bar and s < t:
            d.text((x + 3, TOP - 4), f"bar {s // STEPS_PER_BAR + 1}", fill=(60, 60, 60), font=font, anchor="ls")
    for track in reversed(range(k)):  # the soprano is drawn last, on top
        colour = TRACK_COLOURS[track % len(TRACK_COLOURS)]
        dark = tuple(c // 2 for c in colour)
        on_p, on_t, off_t = _runs(roll[track], None if onsets is None else onsets[track])
        for i, t0, t1 in zip(on_p, on_t, off_t, strict=True):
            box = [LEFT + t0 * STEP_W + 1, y_of(i) + 1, LEFT + t1 * STEP_W - 2, y_of(i) + PITCH_H - 2]
            if mute[track]:
                d.rectangle(box, outline=colour)
            else:
                d.rectangle(box, fill=colour, outline=dark)
    x = w - PAD
    for track in reversed(range(k)):  # the key, right-aligned: soprano, alto, tenor, bass
        name = TRACKS[track] if track < len(TRACKS) else f"track {track + 1}"
        label = name + (" (muted)" if mute[track] else "")
        x -= int(d.textlength(label, font=font))
        d.text((x, KEY_Y), label, fill=(40, 40, 40), font=font, anchor="ls")
        colour = TRACK_COLOURS[track % len(TRACK_COLOURS)]
        d.rectangle([x - 13, KEY_Y - 9, x - 4, KEY_Y - 1], fill=None if mute[track] else colour, outline=colour)
        x -= 22
    if title:
        d.text((LEFT, KEY_Y), title, fill=(20, 20, 20), font=font, anchor="ls")
    return img


def _runs(track: np.ndarray, onsets: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The notes of one track (steps, pitches) as (pitch index, first step, end step): runs of on
    steps, split where `onsets` (steps,) marks a new note struck on the same pitch."""
    on = track.T.astype(np.int8)  # (pitches, steps)
    starts = np.diff(np.pad(on, ((0, 0), (1, 0))), axis=1) == 1
    if onsets is not None:
        starts |= on.astype(bool) & np.asarray(onsets, bool)[None]
    pitch, t0 = np.nonzero(starts)
    ends = np.empty_like(t0)
    for j, (p, t) in enumerate(zip(pitch, t0, strict=True)):
        t1 = t + 1
        while t1 < on.shape[1] and on[p, t1] and not starts[p, t1]:
            t1 += 1
        ends[j] = t1
    return pitch, t0, ends


# ---- the whole click ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Piece:
    roll: np.ndarray  # bool (tracks, steps, pitches)
    midi: Any  # pretty_midi.PrettyMIDI, every voice with its instrument (mute is for the audio only)
    audio: audio.Audio
    image: Image.Image
    metrics: dict[str, dict[str, float]]


def compose(
    G: nn.Module,
    seed: Any,
    tempo: Any,
    programs: Sequence[Any],
    mutes: Sequence[Any],
    engine: str = "auto",
    bars: Any = N_BARS,
) -> Piece:
    """Check the inputs, make the seed's piece, and give it as MIDI, audio, a picture and its metrics.
    The MIDI holds all four voices; muting silences a voice in the audio (and draws it hollow).
    `bars` 8 is two phrases of one piece (the first is the seed's 4-bar piece)."""
    seed, tempo, bars = check_seed(seed), check_tempo(tempo), check_bars(bars)
    programs, mutes = check_programs(programs), check_mutes(mutes)
    roll = np.concatenate(list(render(G, phrase_latents(seed, bars // N_BARS, G))), axis=1)
    midi = to_midi(roll, tempo, programs)
    sound = audio.render_audio(midi, seconds(tempo, roll.shape[1]), mute=mutes, engine=engine)
    length = "" if bars == N_BARS else f", {bars} bars"
    image = piano_roll_image(roll, mutes, title=f"seed {seed}{length}, {tempo} beats per minute")
    return Piece(roll, midi, sound, image, piece_metrics(roll[None]))


# ---- the harmoniser: a melody in, four voices out -------------------------------------------------
# The sopranos it learnt from: the chorales' (MIDI 60..81) moved by the training's transpositions
# (-6..+5, within the roll). A melody outside moves by whole octaves for the model and back (the
# key stays, so the harmony is the same); one wider than this range is refused.
SOPRANO_RANGE = (55, 83)
# Each phrase is written this many times (drafts differing in their temporal latents) and the one with
# the best voice leading kept (`best_drafts`). G takes about 30 ms for a 2-4 phrase melody's 8 drafts.
DRAFTS = 8


def octave_shift(low: int, high: int) -> int:
    """Semitones (a multiple of 12, nearest 0 first) that put a melody of pitches low..high inside
    SOPRANO_RANGE; InvalidInput when none does."""
    lo, hi = SOPRANO_RANGE
    for k in sorted(range(-4, 5), key=abs):
        if low + 12 * k >= lo and high + 12 * k <= hi:
            return 12 * k
    raise InvalidInput(
        f"the melody spans {high - low} semitones ({pitch_name(low)} to {pitch_name(high)}): the harmoniser learnt "
        f"sopranos within {hi - lo} semitones ({pitch_name(lo)} to {pitch_name(hi)}); give a narrower melody"
    )


@dataclass(frozen=True)
class Harmonized:
    roll: np.ndarray  # bool (4 voices, steps, pitches): the melody as the soprano, in the model's octave
    onsets: np.ndarray  # bool (4, steps): where the soprano strikes a note again on the pitch it holds
    shift: int  # semitones the melody was moved for the model; the piece sounds at roll pitch - shift
    midi: Any  # pretty_midi.PrettyMIDI: Soprano (exactly the melody), Alto, Tenor, Bass
    audio: audio.Audio
    image: Image.Image
    harmony: dict[str, float]  # gandemo.metrics.harmony_metrics of this piece
    tempo: int | float
    chosen: tuple[int, ...] = ()  # the draft kept for each phrase (`best_drafts`; 0 = the model's first)
    drafts: int = 1  # drafts written of each phrase


def melody_rolls(melody: Melody, shift: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(what the model reads: (phrases, 64 steps, pitches), the soprano as it sounds: (steps,
    pitches), its re-struck onsets: (steps,)), all moved by `shift` semitones. The model reads no
    rest: a rest inside the melody holds the note before it, leading rests the first note, and
    the last phrase is filled out by the last note held (as a closing fermata)."""
    line = melody.line()
    sounding = np.where(line >= 0, line + shift - LOWEST_PITCH, -1)
    soprano = np.zeros((len(line), N_PITCHES), bool)
    soprano[np.nonzero(sounding >= 0)[0], sounding[sounding >= 0]] = True
    onsets = np.zeros(len(line), bool)
    for pitch, t0, _ in melody.notes:
        onsets[t0] = t0 > 0 and line[t0 - 1] == pitch
    phrases = -(-len(line) // N_STEPS)
    held = np.full(phrases * N_STEPS, -1)
    held[: len(line)] = sounding
    idx = np.where(held >= 0, np.arange(len(held)), 0)
    held = held[np.maximum.accumulate(idx)]  # forward fill
    held[held < 0] = sounding[sounding >= 0][0]  # leading rests: the first note
    model = np.zeros((len(held), N_PITCHES), bool)
    model[np.arange(len(held)), held] = True
    return model.reshape(phrases, N_STEPS, N_PITCHES), soprano, onsets


def draft_latents(seed: int, count: int, G: nn.Module, drafts: int = DRAFTS) -> torch.Tensor:
    """(drafts, count, G.latent_dim): the latents of `drafts` drafts of each of `count` phrases.
    Draft 0 is `phrase_latents(seed, count, G)`, the piece the model writes in one go; draft j >= 1
    of phrase i keeps those static latents (the piece's character is the same in every draft) and
    draws its temporal ones from (seed, i, j). A fixed function of the seed: one seed, one piece."""
    if drafts < 1:
        raise ValueError(f"drafts must be at least 1, got {drafts}")
    z = phrase_latents(seed, count, G)[None].repeat(drafts, 1, 1)
    temporal = ~static_latents(G)
    for j in range(1, drafts):
        for i in range(count):
            fresh = torch.from_numpy(np.random.default_rng([seed, i, j]).standard_normal(G.latent_dim)).float()
            z[j, i, temporal] = fresh[temporal]
    return z


def voice_leading(rolls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per piece of rolls (N, 4 voices, steps, pitches): (consecutive fifths or octaves between any two
    voices, counted; the share of steps where the bass is consonant with the soprano, 0 where they
    never sound together), as gandemo.metrics counts them (`parallel_moves`, `bass_consonance`)."""
    lines = metrics.voice_lines(rolls, LOWEST_PITCH)
    parallels, _ = metrics.parallel_moves(lines)
    good, both = metrics.bass_consonance(lines)
    return parallels, np.divide(good, both, out=np.zeros(len(good)), where=both > 0)


def best_drafts(drafts: np.ndarray) -> np.ndarray:
    """drafts (D, M, 4 voices, steps, pitches): D drafts of each of M phrases -> (M,) the draft kept for
    each phrase, as a composer picks among drafts: the fewest consecutive fifths or octaves, then the
    most consonant bass (`voice_leading`), then the lowest draft number."""
    d, m = drafts.shape[:2]
    parallels, consonance = voice_leading(drafts.reshape(d * m, *drafts.shape[2:]))
    order = np.lexsort((-consonance.reshape(d, m), parallels.reshape(d, m)), axis=0)  # stable: ties keep order
    return order[0]


def harmonize_phrases(
    G: nn.Module, melodies: np.ndarray | torch.Tensor, z: torch.Tensor
) -> tuple[np.ndarray, np.ndarray]:
    """The harmoniser's one way of writing: melodies (M, 64 steps, pitches) and latents (D drafts, M,
    G.latent_dim) (`draft_latents`) -> (rolls (M, 4, 64, pitches): each phrase's best draft by
    `best_drafts`, the soprano exactly its melody; (M,) the draft kept). The app and
    `python -m training evaluate music` both call this."""
    mel = np.asarray(melodies).astype(bool)
    d, m = z.shape[:2]
    if m != len(mel):
        raise ValueError(f"latents for {m} phrases but {len(mel)} melodies")
    made = render(G, z.reshape(d * m, -1), np.tile(mel, (d, 1, 1)))
    made = made.reshape(d, m, *made.shape[1:])  # draft j of phrase i is row j * m + i
    chosen = best_drafts(made)
    return made[chosen, np.arange(m)], chosen


def harmonize(
    G: nn.Module,
    melody: Melody,
    tempo: int | float,
    programs: Sequence[int],
    seed: int,
    engine: str = "auto",
    drafts: int = DRAFTS,
) -> Harmonized:
    """Alto, tenor and bass for a melody (checked inputs): moved into the sopranos' range if need be,
    harmonised phrase by phrase (4 bars each; the phrases share their static latents, so they keep
    one character; each phrase the best of `drafts` drafts, `harmonize_phrases`), the lower voices
    silent before the melody's first note and after its last. The MIDI's soprano is the melody's
    own notes (pitches, onsets on the 16th grid) at `tempo`."""
    low, high = melody.pitch_range
    shift = octave_shift(low, high)
    model_in, soprano, repeated = melody_rolls(melody, shift)
    phrases, chosen = harmonize_phrases(G, model_in, draft_latents(seed, len(model_in), G, drafts))
    roll = np.concatenate(list(phrases), axis=1)[:, : melody.steps]
    roll[0] = soprano
    first, last = melody.notes[0][1], melody.notes[-1][2]
    roll[1:, :first] = False
    roll[1:, last:] = False
    onsets = np.zeros(roll.shape[:2], bool)
    onsets[0] = repeated
    # pretty_midi writes int(6e7 / tempo) microseconds a quarter note: with this tempo that is the
    # nearest whole number, so a MIDI file's own tempo comes back exactly (not 1 microsecond short)
    midi_tempo = 6e7 / (round(6e7 / tempo) + 0.5)
    midi = audio.roll_to_midi(roll, midi_tempo, programs, MIDI_NAMES, LOWEST_PITCH - shift, STEPS_PER_BEAT)
    ticks = audio.TICKS_PER_BEAT // STEPS_PER_BEAT
    sop = midi.instruments[0]
    template = sop.notes[0]
    sop.notes = [  # the melody's own notes: a repeated note stays two notes
        type(template)(
            velocity=template.velocity, pitch=p, start=midi.tick_to_time(t0 * ticks), end=midi.tick_to_time(t1 * ticks)
        )
        for p, t0, t1 in melody.notes
    ]
    sound = audio.render_audio(midi, seconds(tempo, roll.shape[1]), engine=engine)
    moved = (
        ""
        if not shift
        else f", harmonised {abs(shift) // 12} octave{'s' * (abs(shift) > 12)} {'up' if shift > 0 else 'down'}"
    )
    title = f"seed {seed}, {tempo:g} beats per minute{moved}"
    image = piano_roll_image(roll, title=title, lowest_pitch=LOWEST_PITCH - shift, onsets=onsets)
    harmony = piece_harmony(roll[None])
    return Harmonized(roll, onsets, shift, midi, sound, image, harmony, tempo, tuple(chosen.tolist()), drafts)


# ---- the metrics table ----------------------------------------------------------------------------
def _fmt(key: str, value: Any) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    return f"{100 * value:.0f} %" if key in RATES else f"{value:.2f}"


def reference_values(card: dict[str, Any]) -> tuple[dict[str, float | None], dict[str, float | None], str, str]:
    """From a checkpoint card: (held-out chorales' value per metric, generated pieces' value per
    metric, and the column titles saying how many pieces each was measured on). The held-out
    numbers are written at export by training (`held_out_metrics`); the model's by
    `python -m training evaluate music` (`metrics`, each row with the number it `generated`)."""
    held = card.get("held_out_metrics") or {}
    values = held.get("values") or {}
    measured = card.get("metrics") or {}
    ref = {key: (values.get(key) or {}).get("mean") for key in METRIC_LABELS}
    model, n_model = {}, None
    for key, label in METRIC_LABELS.items():
        row = measured.get(label) or {}
        model[key] = row.get("model")
        n_model = n_model or row.get("generated")
        if ref[key] is None:
            ref[key] = row.get("held_out")
    ref_title = f"held-out chorales ({held['pieces']} phrases)" if held.get("pieces") else "held-out chorales"
    model_title = f"this model ({n_model} pieces)" if n_model else "this model"
    return ref, model, ref_title, model_title


def metrics_table(piece: dict[str, dict[str, float]], card: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """(headers, rows): each metric for this piece (mean over the voices, and per voice; tonal
    distance: mean over the 6 pairs of voices), for this model's generated pieces and for
    held-out chorales, as far as the card has them ('–' where not measured)."""
    ref, model, ref_title, model_title = reference_values(card)
    headers = ["metric", "this piece", "per voice: S / A / T / B", model_title, ref_title]
    rows = []
    for key, label in METRIC_LABELS.items():
        values = piece[key]
        per_voice = " / ".join(_fmt(key, values[t]) for t in TRACKS) if key != "tonal_distance" else "6 pairs"
        rows.append([label, _fmt(key, values["mean"]), per_voice, _fmt(key, model[key]), _fmt(key, ref[key])])
    return headers, rows


# the harmoniser's aims (issue "Music v2"), shown beside each harmonised piece
HARMONY_AIMS = {
    "bass_consonance": "≥ 80 %",
    "pitch_classes_together": "within 10 % of the chorales'",
    "parallel_fifths_octaves": "≤ 3 %",
    "notes_at_once": "≤ 1.05",
}


def _fmt_harmony(key: str, value: Any) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    return f"{100 * value:.1f} %" if key in HARMONY_RATES else f"{value:.2f}"


def harmony_table(piece: dict[str, float], card: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """(headers, rows): each harmony figure for this piece, its aim, and as far as the harmoniser's
    card has them: the model's on held-out chorales (written by `python -m training evaluate music`),
    the chorales' own and the floor of mismatched chorales (`harmony_reference`, at export); where
    the card has the model's first draft alone (`one_draft`: without the choice among drafts), that
    too, as the last column."""
    ref = card.get("harmony_reference") or {}
    measured = card.get("metrics") or {}
    first = measured.get(HARMONY_LABELS["bass_consonance"]) or {}
    n, drafts = first.get("generated"), first.get("drafts")
    pieces = ref.get("pieces")
    model_title = "this model on held-out sopranos"
    if n:
        model_title += f" ({n} pieces{f', best of {drafts} drafts' if drafts and drafts > 1 else ''})"
    headers = [
        "figure",
        "this piece",
        "aim",
        model_title,
        f"held-out chorales ({pieces} phrases)" if pieces else "held-out chorales",
        "mismatched chorales (the floor)",
    ]
    raw = "one_draft" in first
    if raw:
        headers.append("this model's first draft alone (no choice)")
    rows = []
    for key, label in HARMONY_LABELS.items():
        row = measured.get(label) or {}
        chorales = (ref.get("chorales") or {}).get(key, row.get("held_out"))
        floor = (ref.get("mismatched") or {}).get(key, row.get("mismatched"))
        cells = [
            label,
            _fmt_harmony(key, piece.get(key)),
            HARMONY_AIMS[key],
            _fmt_harmony(key, row.get("model")),
            _fmt_harmony(key, chorales),
            _fmt_harmony(key, floor),
        ]
        rows.append(cells + [_fmt_harmony(key, row.get("one_draft"))] * raw)
    return headers, rows
