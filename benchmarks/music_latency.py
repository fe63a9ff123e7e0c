"""Music speed: median seconds from a click on Compose to playable audio, on the CPU.

The click is `compose_music(seed, tempo)`: check the inputs, run G, threshold, write the MIDI,
render the audio (FluidSynth with the General MIDI SoundFont where installed), draw the piano roll,
measure the metrics. Measured two ways: via the API (`python app.py` on a free port, cold start
measured, called through gradio_client, which also downloads the WAV, the PNG and the MIDI) and
in-process, part by part (`gandemo.tasks.music` and `gandemo.audio`, no HTTP). Every repeat uses
another seed, so each is a new piece. Prints a table.

The model is the shipped music checkpoint if there is one. Otherwise it is an untrained G of the
cpu preset's size (the same architecture and cost), with its weights redrawn at unit gain and
its note bias at -3.75 (`--note-bias`), so that it writes about as many notes as a chorale phrase
has (61 on average in the test split; the table gives the mean): an untrained G straight from its
initialisation switches every note on or none, and FluidSynth's time grows with the notes.

The training step (5 critic steps + 1 generator step at the cpu preset) is timed with
`benchmarks/_server.py`'s `step_seconds` on chorales written here (`chorale_folder`).

The harmoniser (`harmonize_melody`, the shipped music/harmonize checkpoint; skipped and said so
without one) is timed the same two ways on the example tunes (8 to 13 bars, 2 to 4 phrases): via
the API from the tune's name to the downloaded WAV, PNG and MIDI, and in-process by part (reading
the melody, G over its phrases, MIDI, audio, picture, harmony figures).

    .venv/bin/python benchmarks/music_latency.py [--repeats 7] [--threads 1] [--tempo 80] [--steps 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from benchmarks._server import app_model, print_table, rss_mb, running_app, step_seconds  # noqa: E402
from benchmarks.tasks.music import chorale_folder, music_root  # noqa: E402

TASK = "music"


def harmonize_parts(n: int) -> list[tuple[str, str]]:
    """The harmoniser in-process, part by part, over the example tunes: rows of median times."""
    from gandemo import audio, melody, registry
    from gandemo.tasks import music

    H = registry.get("music", music.HARMONIZE)["G"]
    parts: dict[str, list[float]] = {}
    tunes = list(melody.EXAMPLES)
    for i in range(n + 1):
        name = tunes[i % len(tunes)]
        t0 = time.perf_counter()
        tune, tempo = melody.example(name)
        t1 = time.perf_counter()
        model_in, _, _ = music.melody_rolls(tune, music.octave_shift(*tune.pitch_range))
        music.render(H, music.phrase_latents(i, len(model_in), H), model_in)
        t2 = time.perf_counter()
        piece = music.harmonize(H, tune, tempo, music.DEFAULT_PROGRAMS, i)  # the whole of it, G included
        t3 = time.perf_counter()
        audio.wav_bytes(piece.audio)
        t4 = time.perf_counter()
        if i:  # the first is a warm-up
            parts.setdefault("reading the melody (melody.example)", []).append(t1 - t0)
            parts.setdefault("G over the tune's 2-4 phrases, music.render", []).append(t2 - t1)
            parts.setdefault("**harmonize: G, MIDI, audio, picture, figures**", []).append(t3 - t2)
            parts.setdefault("WAV encoding", []).append(t4 - t3)
    return [
        (f"harmoniser: {k}, in-process (median of {len(v)})", f"{statistics.median(v) * 1000:.0f} ms")
        for k, v in parts.items()
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=1, help="GANDEMO_THREADS for the server and in-process runs")
    p.add_argument("--tempo", type=int, default=80, help="beats per minute (the default; 4 bars last 12 s)")
    p.add_argument("--note-bias", type=float, default=-3.75, help="the untrained stand-in's note bias")
    p.add_argument("--steps", type=int, default=3, help="timed training steps on written chorales (0: none)")
    args = p.parse_args()

    import torch
    from gradio_client import Client

    from gandemo import audio, melody, registry
    from gandemo.tasks import music

    n, tempo = args.repeats, args.tempo
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root, what = music_root(Path(tmp) / "checkpoints", args.note_bias)
        env = {registry.ENV_ROOT: str(root)} if root else {}
        with running_app(args.threads, **env) as (server, url, cold):
            client = Client(url, verbose=False)
            rows.append(("app cold start (process start → page served)", f"{cold:.2f} s"))
            t0 = time.perf_counter()
            client.predict(1000, tempo, api_name="/compose_music")  # the first: loads G and the SoundFont
            rows.append(
                ("first compose_music after start (loads G and the SoundFont)", f"{time.perf_counter() - t0:.2f} s")
            )
            times = []
            for seed in range(n):
                t0 = time.perf_counter()
                client.predict(seed, tempo, api_name="/compose_music")
                times.append(time.perf_counter() - t0)
            rows.append(
                (
                    f"**click → audio: compose_music via the API, WAV + PNG + MIDI downloaded** (median of {n})",
                    f"**{statistics.median(times):.2f} s**",
                )
            )
            harmonizer = registry.status("music", music.HARMONIZE) is None
            if harmonizer:
                tunes = list(melody.EXAMPLES)
                client.predict(None, "", tunes[0], api_name="/harmonize_melody")  # loads the harmoniser
                times = []
                for i in range(n):
                    t0 = time.perf_counter()
                    client.predict(
                        None, "", tunes[i % len(tunes)], None, *music.DEFAULT_PROGRAMS, i, api_name="/harmonize_melody"
                    )
                    times.append(time.perf_counter() - t0)
                rows.append(
                    (
                        f"**melody → four parts: harmonize_melody via the API, an example tune (8-13 bars), WAV, PNG, "
                        f"MIDI downloaded** (median of {n})",
                        f"**{statistics.median(times):.2f} s**",
                    )
                )
            rows.append(("server peak RSS after these calls", f"{rss_mb(server.pid, 'VmHWM'):.0f} MB"))
            client.close()

        G = app_model(TASK, root, args.threads)
        seeds = iter(range(10_000, 20_000))
        parts: dict[str, list[float]] = {}
        notes = []
        engine = ""

        def timed(name: str, fn):
            t0 = time.perf_counter()
            out = fn()
            parts.setdefault(name, []).append(time.perf_counter() - t0)
            return out

        warm = np.eye(64, 48, dtype=bool)[None].repeat(4, 0)
        audio.render_audio(music.to_midi(warm, tempo, [0] * 4), 1.0)  # loads the SoundFont once
        for i in range(n + 1):
            seed = next(seeds)
            t_all = time.perf_counter()
            roll = timed(
                "G + decoding (music.render)", lambda s=seed: music.render(G, music.latents(s, 1, G.latent_dim))[0]
            )
            if not roll.any():
                continue
            midi = timed("MIDI (music.to_midi)", lambda r=roll: music.to_midi(r, tempo, music.DEFAULT_PROGRAMS))
            sound = timed("audio (audio.render_audio)", lambda m=midi: audio.render_audio(m, music.seconds(tempo)))
            timed("WAV encoding", lambda s=sound: audio.wav_bytes(s))
            timed("piano-roll picture", lambda r=roll: music.piano_roll_image(r))
            timed("metrics", lambda r=roll: music.piece_metrics(r[None]))
            total = time.perf_counter() - t_all
            if i:  # the first is a warm-up
                parts.setdefault("**all of it**", []).append(total)
                notes.append(sum(len(inst.notes) for inst in midi.instruments))
                engine = sound.engine
            else:
                for v in parts.values():
                    v.clear()
        for name, values in parts.items():
            rows.append((f"{name}, in-process (median of {len(values)})", f"{statistics.median(values) * 1000:.0f} ms"))
        rows.append(("notes per piece (mean; a chorale phrase has 61)", f"{np.mean(notes):.0f}"))
        rows.append(("audio engine", engine))
        pm = music.to_midi(roll, tempo, music.DEFAULT_PROGRAMS)
        sine = []
        for _ in range(3):
            t0 = time.perf_counter()
            audio.render_audio(pm, music.seconds(tempo), engine="sine")
            sine.append(time.perf_counter() - t0)
        s = statistics.median(sine)
        rows.append(("audio by the sine fallback instead (median of 3)", f"{s * 1000:.0f} ms"))
        if harmonizer:
            rows += harmonize_parts(n)
        else:
            rows.append(("harmoniser", "no music/harmonize checkpoint: not timed"))

        if args.steps:
            from training.loop import cpu_has_fast_bf16

            data = chorale_folder(Path(tmp) / "chorales")
            s, batch = step_seconds(TASK, data, channels_last=True, bf16=cpu_has_fast_bf16(), steps=args.steps)
            rows.append(
                (
                    f"training step, cpu preset, batch {batch} x 5 critic steps + 1 G step (median of {args.steps})",
                    f"{s:.2f} s",
                )
            )

    print_table(
        f"Music benchmark — torch {torch.__version__}, {args.threads} thread(s), {os.cpu_count()} CPU(s), "
        f"tempo {tempo}",
        rows,
        model=what,
    )


if __name__ == "__main__":
    main()
