"""Piano rolls <-> MIDI, and MIDI -> audio (for the Music tab).

- `roll_to_midi` / `midi_to_roll`: a binary piano roll (tracks, steps, pitches) and a MIDI file
  with one instrument per track are exact inverses: every run of consecutive steps on one pitch is
  one note, on a grid of `steps_per_beat` steps per beat (the MIDI's own ticks, so the tempo plays
  no part in the round trip). A roll cannot tell a held note from the same note struck again, so
  MIDI notes that touch on one pitch come back as one note.
- `render_audio`: FluidSynth (through pyfluidsynth and pretty_midi) with a General MIDI SoundFont:
  Debian's FluidR3_GM (`fluid-soundfont-gm`, listed in packages.txt for Spaces), else the small
  TimGM6mb.sf2 that pretty_midi ships. Where FluidSynth's library is missing, pretty_midi's own
  sine-wave synthesiser plays the notes instead and `Audio.note` says so: the player is never
  silent or empty.
"""

from __future__ import annotations

import copy
import io
import os
import threading
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

SAMPLE_RATE = 44100
TAIL_S = 1.0  # after the last step: the notes' release and the reverb
PEAK = 0.89  # audio is normalised to this peak (-1 dBFS)
TICKS_PER_BEAT = 480  # MIDI resolution: 120 ticks per 16th note, so every step is a whole tick count
ENV_SOUNDFONT = "GANDEMO_SOUNDFONT"  # a .sf2 to use instead of the ones found on the system
SYSTEM_SOUNDFONTS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",  # Debian/Ubuntu fluid-soundfont-gm
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",  # Arch, Fedora
    "/usr/share/soundfonts/default.sf2",
)


# ---- roll <-> MIDI -------------------------------------------------------------------------------
def roll_to_midi(
    roll: np.ndarray,
    tempo: float,
    programs: Sequence[int],
    names: Sequence[str],
    lowest_pitch: int,
    steps_per_beat: int = 4,
    velocity: int = 80,
) -> Any:
    """A binary roll (tracks, steps, pitches) -> a `pretty_midi.PrettyMIDI` with one instrument per
    track (General MIDI `programs`, 0-127, in track order), at `tempo` beats per minute. Pitch index
    i is MIDI pitch `lowest_pitch + i`; a run of on-steps is one note of `velocity`."""
    import pretty_midi

    roll = np.asarray(roll, dtype=bool)
    if roll.ndim != 3:
        raise ValueError(f"a piano roll must be (tracks, steps, pitches), got shape {roll.shape}")
    if not len(programs) == len(names) == roll.shape[0]:
        raise ValueError(
            f"{roll.shape[0]} tracks need as many programs and names, got {len(programs)} and {len(names)}"
        )
    if lowest_pitch < 0 or lowest_pitch + roll.shape[2] > 128:
        raise ValueError(f"pitches {lowest_pitch}..{lowest_pitch + roll.shape[2] - 1} are outside MIDI's 0..127")
    if TICKS_PER_BEAT % steps_per_beat:
        raise ValueError(f"{steps_per_beat} steps per beat do not divide {TICKS_PER_BEAT} ticks")
    pm = pretty_midi.PrettyMIDI(resolution=TICKS_PER_BEAT, initial_tempo=float(tempo))
    ticks = TICKS_PER_BEAT // steps_per_beat
    for track, program, name in zip(roll, programs, names, strict=True):
        inst = pretty_midi.Instrument(program=int(program), name=str(name))
        padded = np.pad(track.T.astype(np.int8), ((0, 0), (1, 1)))  # (pitches, steps + 2)
        d = np.diff(padded, axis=1)
        on_p, on_t = np.nonzero(d == 1)
        _, off_t = np.nonzero(d == -1)  # same order as the onsets: row by row, left to right
        for p, t0, t1 in zip(on_p, on_t, off_t, strict=True):
            inst.notes.append(
                pretty_midi.Note(
                    velocity=velocity,
                    pitch=int(lowest_pitch + p),
                    start=pm.tick_to_time(int(t0) * ticks),
                    end=pm.tick_to_time(int(t1) * ticks),
                )
            )
        inst.notes.sort(key=lambda n: (n.start, n.pitch))
        pm.instruments.append(inst)
    return pm


def midi_to_roll(
    pm: Any,
    n_steps: int,
    lowest_pitch: int,
    n_pitches: int,
    steps_per_beat: int = 4,
    names: Sequence[str] | None = None,
) -> np.ndarray:
    """A `pretty_midi.PrettyMIDI` -> binary roll (tracks, n_steps, n_pitches), the inverse of
    `roll_to_midi`: note times are read in the file's ticks and put on the nearest step. With
    `names`, track i is the instrument of that name (a MIDI file keeps no track without notes, so
    a silent voice is simply absent: its track stays empty); without, the instruments in order. A
    note outside the pitch range or past `n_steps`, or an instrument of another name, raises
    ValueError (nothing is silently dropped)."""
    ticks = pm.resolution / steps_per_beat
    if names is None:
        order = list(range(len(pm.instruments)))
        roll = np.zeros((len(pm.instruments), n_steps, n_pitches), dtype=bool)
    else:
        wanted = [n.lower() for n in names]
        unknown = [inst.name for inst in pm.instruments if inst.name.lower() not in wanted]
        if unknown:
            raise ValueError(f"instruments {unknown} are none of the tracks {list(names)}")
        order = [wanted.index(inst.name.lower()) for inst in pm.instruments]
        roll = np.zeros((len(names), n_steps, n_pitches), dtype=bool)
    for i, inst in zip(order, pm.instruments, strict=True):
        for note in inst.notes:
            p = note.pitch - lowest_pitch
            t0 = round(pm.time_to_tick(note.start) / ticks)
            t1 = round(pm.time_to_tick(note.end) / ticks)
            if not 0 <= p < n_pitches:
                raise ValueError(
                    f"{inst.name or i}: pitch {note.pitch} is outside {lowest_pitch}..{lowest_pitch + n_pitches - 1}"
                )
            if t1 > n_steps:
                raise ValueError(f"{inst.name or i}: a note ends at step {t1}, after the roll's {n_steps} steps")
            roll[i, t0 : max(t1, t0 + 1), p] = True
    return roll


def midi_bytes(pm: Any) -> bytes:
    """The Standard MIDI File of `pm`."""
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


def read_midi(data: bytes | str | Path) -> Any:
    """A Standard MIDI File (bytes or path) -> `pretty_midi.PrettyMIDI`."""
    import pretty_midi

    return pretty_midi.PrettyMIDI(io.BytesIO(data) if isinstance(data, bytes) else str(data))


# ---- MIDI -> audio -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Audio:
    samples: np.ndarray  # float32 mono in [-1, 1]
    sample_rate: int
    engine: str  # "fluidsynth" or "sine"
    note: str  # how it was rendered, in words (says so when it is not the SoundFont's instruments)

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate


def soundfont_path() -> Path | None:
    """The General MIDI SoundFont to play with: $GANDEMO_SOUNDFONT, else a system one
    (`SYSTEM_SOUNDFONTS`), else pretty_midi's own small TimGM6mb.sf2; None if none exists."""
    candidates = [os.environ.get(ENV_SOUNDFONT, ""), *SYSTEM_SOUNDFONTS]
    try:
        import pretty_midi

        candidates.append(str(Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"))
    except ImportError:
        pass
    for path in candidates:
        if path and Path(path).is_file():
            return Path(path)
    return None


class _Synth:
    """One FluidSynth instance with its SoundFont loaded (loading FluidR3_GM takes ~0.6 s), shared
    by the requests of this process one at a time."""

    def __init__(self, soundfont: Path, sample_rate: int) -> None:
        import fluidsynth  # pyfluidsynth; raises ImportError/OSError without libfluidsynth

        self.soundfont, self.sample_rate = soundfont, sample_rate
        # dynamic sample loading: only the samples of the instruments played are read into memory
        # (FluidSynth >= 2.0). The same audio; measured +41 MB of resident memory for a string quartet
        # instead of +162 MB for all of FluidR3_GM, and 0.02 s instead of 0.15 s to load it.
        self.synth = fluidsynth.Synth(samplerate=float(sample_rate), **{"synth.dynamic-sample-loading": 1})
        self.sfid = self.synth.sfload(str(soundfont))
        if self.sfid < 0:
            raise OSError(f"FluidSynth could not load the SoundFont {soundfont}")
        self.lock = threading.Lock()

    def render(self, pm: Any) -> np.ndarray:
        with self.lock:
            self.synth.system_reset()  # all notes off, effects (reverb, chorus) cleared: nothing carries over
            return pm.fluidsynth(synthesizer=self.synth, sfid=self.sfid)


@lru_cache(maxsize=2)
def _synth(soundfont: Path, sample_rate: int) -> _Synth | None:
    try:
        return _Synth(soundfont, sample_rate)
    except (ImportError, OSError):
        return None


def fluidsynth_synth(sample_rate: int = SAMPLE_RATE) -> _Synth | None:
    """The process's FluidSynth with its SoundFont, or None where the library or a SoundFont is missing."""
    soundfont = soundfont_path()
    return _synth(soundfont, sample_rate) if soundfont else None


def render_audio(
    pm: Any,
    seconds: float,
    mute: Sequence[bool] | None = None,
    sample_rate: int = SAMPLE_RATE,
    engine: str = "auto",
) -> Audio:
    """Play the instruments of `pm` not muted (`mute`, one flag per instrument) -> mono audio exactly
    `seconds` + `TAIL_S` long, normalised to a -1 dBFS peak. `engine`: "auto" (FluidSynth if it
    works here, else sine), "fluidsynth" or "sine". Raises ValueError when nothing would sound."""
    import pretty_midi

    mute = list(mute) if mute is not None else [False] * len(pm.instruments)
    if len(mute) != len(pm.instruments):
        raise ValueError(f"{len(pm.instruments)} instruments but {len(mute)} mute flags")
    playing = copy.copy(pm)  # the same tempo map; only the instrument list differs
    playing.instruments = [inst for inst, m in zip(pm.instruments, mute, strict=True) if not m and inst.notes]
    if not playing.instruments:
        raise ValueError("nothing to play: every instrument is muted or has no notes")
    synth = fluidsynth_synth(sample_rate) if engine in ("auto", "fluidsynth") else None
    if engine == "fluidsynth" and synth is None:
        raise RuntimeError("FluidSynth is not available here (pyfluidsynth, libfluidsynth or a SoundFont is missing)")
    if synth is not None:
        wav = synth.render(playing)
        names = ", ".join(pretty_midi.program_to_instrument_name(i.program) for i in playing.instruments)
        used, note = "fluidsynth", f"Played by FluidSynth with the {synth.soundfont.name} SoundFont ({names})."
    else:
        wav = playing.synthesize(fs=sample_rate)
        used = "sine"
        note = (
            "FluidSynth is not installed on this server, so this is pretty_midi's built-in synthesiser: "
            "every voice is a plain sine tone, whatever instrument you chose (the MIDI file has your instruments)."
        )
    n = int(round((seconds + TAIL_S) * sample_rate))
    wav = np.nan_to_num(np.asarray(wav, dtype=np.float64))[:n]
    wav = np.pad(wav, (0, n - len(wav)))
    peak = float(np.abs(wav).max())
    if peak == 0:
        raise RuntimeError(f"{used} rendered silence for {sum(len(i.notes) for i in playing.instruments)} notes")
    return Audio((wav * (PEAK / peak)).astype(np.float32), sample_rate, used, note)


def wav_bytes(audio: Audio) -> bytes:
    """16-bit PCM mono WAV of `audio`."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(audio.sample_rate)
        w.writeframes((np.clip(audio.samples, -1, 1) * 32767).round().astype("<i2").tobytes())
    return buf.getvalue()


def read_wav(data: bytes | str | Path) -> tuple[np.ndarray, int]:
    """A 16-bit PCM WAV -> (float32 samples in [-1, 1], mono: channels averaged; sample rate)."""
    with wave.open(io.BytesIO(data) if isinstance(data, bytes) else str(data), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"expected 16-bit PCM, got {8 * w.getsampwidth()}-bit")
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768
        return x.reshape(-1, w.getnchannels()).mean(1), w.getframerate()
