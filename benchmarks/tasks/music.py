"""Music: JSB-layout chorales, an untrained composer stand-in with sparse notes, the tab's request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._data import save_stand_in

API = "compose_music"  # the tab's main endpoint
SEED_INPUT = 0
NOTE_BIAS = -3.75  # the stand-in's note bias in the app-wide benchmarks: about a chorale phrase's notes


def chorale_folder(folder: Path, pieces: int = 60, seed: int = 0) -> Path:
    """A JSB-layout chorales folder (`Jsb16thSeparated.json`, train/valid/test) of random pieces:
    4 voices in their ranges moving by small steps, one note a quarter or a half. It costs a
    trainer what the real chorales cost (the same phrase count per piece and the same rolls)."""
    import json

    rng = np.random.default_rng(seed)
    ranges = ((60, 81), (52, 74), (46, 69), (36, 66))  # soprano, alto, tenor, bass (the data's own)

    def piece() -> list[list[int]]:
        steps = 4 * int(rng.integers(40, 70))
        voices = []
        for lo, hi in ranges:
            pitch, line = int(rng.integers(lo + 4, hi - 4)), []
            while len(line) < steps:
                pitch = int(np.clip(pitch + rng.integers(-3, 4), lo, hi))
                line += [pitch] * int(rng.choice([4, 8]))
            voices.append(line[:steps])
        return [list(step) for step in zip(*voices, strict=True)]

    folder.mkdir(parents=True, exist_ok=True)
    data = {split: [piece() for _ in range(n)] for split, n in (("train", pieces), ("valid", 8), ("test", 8))}
    (folder / "Jsb16thSeparated.json").write_text(json.dumps(data))
    return folder


def data(images: Path) -> Path:
    """Chorales in the JSB JSON layout beside `images`."""
    return chorale_folder(images.parent / "chorales")


def stand_in_model(note_bias: float) -> tuple[Any, dict]:
    """An UNTRAINED G of the cpu preset's size, its weights redrawn at unit gain and its note bias set
    to `note_bias` (an untrained G switches every note on or none), and its constructor kwargs."""
    from gandemo.tasks import music
    from training.music import untrained_generator
    from training.task import task_class

    preset = task_class("music").presets["cpu"]
    kwargs = {
        "n_tracks": len(music.TRACKS),
        "n_bars": music.N_BARS,
        "steps_per_bar": music.STEPS_PER_BAR,
        "n_pitches": music.N_PITCHES,
        "z_dim": 32,
        "width": preset["g_width"],
        "temporal_width": 128,
    }
    return untrained_generator(kwargs, 0, note_bias), kwargs


def stand_in(folder: Path, variant: str, note_bias: float = NOTE_BIAS) -> str:
    G, kwargs = stand_in_model(note_bias)
    params = save_stand_in(folder, "music", variant, {"G": G}, {"G": kwargs})
    return (
        f"an UNTRAINED G of the cpu preset's size (width {kwargs['width']}, {params:.2f} M parameters; the same "
        f"cost), weights at unit gain and note bias {note_bias:g} for sparse notes"
    )


def music_root(tmp: Path, note_bias: float) -> tuple[Path | None, str]:
    """(checkpoint root to use, None = the app's own; what the music model is, in words)."""
    from gandemo import registry

    if registry.status("music") is None:
        return None, f"the shipped checkpoint ({registry.checkpoint_dir('music')})"
    return tmp, "NO music checkpoint is shipped yet: " + stand_in(tmp / "music" / "default", "default", note_bias)


def request(root: Path, examples: Path) -> tuple[str, tuple]:
    """A phrase from seed 7 at 80 bpm with the default instruments, no extras."""
    from gandemo.tasks import music

    return API, (7, 80, *music.DEFAULT_PROGRAMS, False, False, False, False)
