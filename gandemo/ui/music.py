"""The Music tab: pick a seed, a tempo and an instrument per voice, and a MuseGAN-style model
writes four bars for soprano, alto, tenor and bass; hear it, see it as a piano roll, download the
MIDI, and compare its MuseGAN metrics with the same numbers for held-out Bach chorales.

One endpoint, `compose_music(seed, tempo, soprano_instrument, ..., mute_bass)`: seed and tempo
first, then per voice a General MIDI program (0-127) and a mute flag, each with a default, so an
API client may send only the first two. Its inputs reach `gandemo.tasks.music.compose` raw
(`preprocess=False`), which checks every one before any work.
"""

from __future__ import annotations

import random
from typing import Any

import gradio as gr
import pandas as pd

from gandemo import audio, registry
from gandemo.checkpoint import Checkpoint
from gandemo.tasks import TaskSpec, music
from gandemo.ui.common import (
    card_settings,
    endpoint,
    how_it_works,
    output_path,
    result_image,
    settings_markdown,
    task_tab,
)

INTRO = (
    "A MuseGAN-style model this project trained on Bach's four-part chorales writes four bars for "
    "soprano, alto, tenor and bass. Pick a seed (the same seed is always the same piece), a tempo and "
    "an instrument per voice, then listen, look at the piano roll, download the MIDI, and see how "
    "Bach-like it measures beside held-out chorales."
)
HOW_IT_WORKS = r"""
**A piece is four piano rolls.** One per voice (soprano, alto, tenor, bass): 4 bars of 16
sixteenth-note steps by 48 pitches (C2 to B5), a cell being on where the voice sounds that pitch
at that step. The model learnt from Bach's four-part chorales (the JSB chorales, in every key:
each training phrase was transposed at random).

**Jamming, composer or hybrid.** MuseGAN (Dong et al., 2018) asks how several tracks should be
made together and tries three answers. *Jamming*: one generator per track, each with its own
random input $z_i$, like players who never listen to each other: each line may be fine, but the
four do not agree. *Composer*: one generator makes every track from one shared $z$, like one
mind writing the score: the parts fit, but nothing belongs to one voice alone. *Hybrid* (this
model): each voice has its own generator $G_i$, whose input is a latent $z$ **shared by all
voices** next to the voice's **private** $z_i$:

$$\text{voice}_i = G_i\big(z,\; z_i\big), \qquad i \in \{S, A, T, B\}$$

The shared $z$ carries what the four voices must agree on: the key, the chords and when they
change, where the phrase breathes. Because every $G_i$ reads the same $z$, changing it moves all
voices together; the private $z_i$ gives each voice its own line and rhythm.

**Across the bars.** Each latent comes twice: a *static* part, the same in every bar (the piece's
character), and a *temporal* part that a small temporal generator unfolds into one vector per
bar (how the phrase moves on). Bar $t$ of voice $i$ is drawn from
$[z, G_\text{temp}(z_t)^{(t)}, z_i, G_{\text{temp},i}(z_{i,t})^{(t)}]$ by the voice's bar generator,
whose transposed convolutions grow time (one vector → beats → sixteenths) and pitch (→ octaves →
the 12 semitones of each octave).

**WGAN-GP.** The judge is a critic $D$ that scores whole pieces (voices × bars × steps ×
pitches, all voices seen together) and is trained to tell chorales from generated pieces by as
wide a margin as it can, while its gradient is held near 1 (the *gradient penalty*):

$$\min_G \max_D \; \mathbb{E}_{x \sim \text{chorales}}[D(x)] - \mathbb{E}_{z}[D(G(z))]
- \lambda\,\mathbb{E}_{\hat x}\big[(\lVert\nabla_{\hat x} D(\hat x)\rVert_2 - 1)^2\big]$$

with $\hat x$ at random points between a real and a generated piece, $\lambda = 10$, and 5 critic
steps per generator step, as in the paper. The difference of the two expectations estimates the
Wasserstein distance between chorales and generated pieces; unlike the original GAN's
discriminator, which saturates once real and fake are easy to tell apart (and binary rolls are
easy to tell from probabilities), it keeps giving the generator a useful direction.

**From probabilities to notes.** $G$ gives each cell a probability; a note is on where it is at
least 0.5 (the paper's hard threshold at test time). So the same seed is always the same piece;
drawing each note at random (Bernoulli) would scatter short stray notes through the voices.

**The numbers beside the piece** are the MuseGAN paper's: *empty bars* (share of a voice's bars
with no note); *pitch classes used per bar* (how many of the 12, in a non-empty bar); *qualified
notes* (share of notes at least an eighth long: a GAN tends to chop lines into fragments);
*polyphony* (share of a voice's sounding steps with two or more pitches at once: 0 in a chorale,
whose every voice sings one note at a time); *tonal distance* (per beat, how far two voices'
pitch classes lie apart on the circle of fifths and the circles of thirds, averaged over the 6
pairs of voices). Closer to the held-out chorales' column is more Bach-like.

The MIDI file holds all four voices with your instruments; *mute* only silences a voice in the
audio (and draws it hollow in the piano roll). The data has no bar lines; they are counted back
from each chorale's end (most begin with a one-beat pickup).
"""

IMAGE_HEIGHT = 380
SEED_DEFAULT = 7
EXAMPLES = [  # seed, tempo, 4 programs (0-based General MIDI), 4 mutes; what each one shows
    [7, 80, 40, 40, 41, 42, False, False, False, False],  # a string quartet
    [42, 66, 19, 19, 19, 19, False, False, False, False],  # church organ, slowly
    [2024, 96, 73, 68, 71, 70, False, False, False, False],  # flute, oboe, clarinet, bassoon
    [123, 72, 52, 52, 52, 52, False, False, False, True],  # a choir without its basses
]


def program_choices() -> list[tuple[str, int]]:
    """The 128 General MIDI instruments as (label, program 0-127)."""
    import pretty_midi

    return [(f"{p}: {pretty_midi.program_to_instrument_name(p)}", p) for p in range(128)]


@endpoint
def compose_music(
    seed: Any,
    tempo: Any,
    soprano_instrument: Any = music.DEFAULT_PROGRAMS[0],
    alto_instrument: Any = music.DEFAULT_PROGRAMS[1],
    tenor_instrument: Any = music.DEFAULT_PROGRAMS[2],
    bass_instrument: Any = music.DEFAULT_PROGRAMS[3],
    mute_soprano: Any = False,
    mute_alto: Any = False,
    mute_tenor: Any = False,
    mute_bass: Any = False,
) -> tuple[str, Any, str, pd.DataFrame, str]:
    """seed (0..2**31-1), tempo (30..240 beats per minute), a General MIDI program (0..127) per
    voice and a mute flag per voice -> (WAV, piano-roll PNG, MIDI file, metrics table, how the
    audio was made). The same inputs give the same piece."""
    programs = [soprano_instrument, alto_instrument, tenor_instrument, bass_instrument]
    mutes = [mute_soprano, mute_alto, mute_tenor, mute_bass]
    seed, tempo = music.check_seed(seed), music.check_tempo(tempo)  # every input first, before any work
    programs, mutes = music.check_programs(programs), music.check_mutes(mutes)
    ckpt = registry.get("music")
    piece = music.compose(ckpt["G"], seed, tempo, programs, mutes)
    wav = output_path(f"chorale_seed{seed}_{tempo}bpm.wav")
    wav.write_bytes(audio.wav_bytes(piece.audio))
    midi = wav.with_suffix(".mid")
    midi.write_bytes(audio.midi_bytes(piece.midi))
    headers, rows = music.metrics_table(piece.metrics, ckpt.card)
    return str(wav), piece.image, str(midi), pd.DataFrame(rows, columns=headers), piece.audio.note


def random_seed() -> int:
    return random.randint(0, music.SEED_MAX)


def model_settings(card: dict[str, Any]) -> str:
    """The shipped model's settings from its card, as one Markdown paragraph ('' if it has none)."""
    hp, g = card_settings(card)
    parts = []
    if g:
        n_latents = 2 + 2 * int(g.get("n_tracks", 4))
        parts.append(
            f"bar generators {g.get('width', '?')} features per voice, {n_latents} latents of {g.get('z_dim', '?')} "
            "numbers (shared and private, static and temporal)"
        )
    if "d_width" in hp:
        parts.append(f"critic width {hp['d_width']}")
    if "n_critic" in hp:
        parts.append(f"{hp['n_critic']} critic steps per G step, λ = {hp.get('gp_weight', '?'):g}")
    if "transpose" in hp:
        parts.append(f"transposition {hp['transpose']}")
    return settings_markdown(card, parts)


def build(spec: TaskSpec) -> None:
    task_tab(spec, _body, INTRO)


def _body(ckpt: Checkpoint) -> None:
    choices = program_choices()
    with gr.Row():
        seed = gr.Number(
            value=SEED_DEFAULT, precision=0, label=f"Seed (0–{music.SEED_MAX:,})", scale=3, elem_id="music-seed"
        )
        dice = gr.Button("🎲", scale=0, min_width=60)
        tempo = gr.Slider(
            music.TEMPO_MIN,
            music.TEMPO_MAX,
            value=music.DEFAULT_TEMPO,
            step=1,
            label="Tempo (quarter notes per minute)",
            scale=4,
        )
    programs, mutes = [], []
    with gr.Row():
        for track, default in zip(music.TRACKS, music.DEFAULT_PROGRAMS, strict=True):
            with gr.Column(min_width=160):
                programs.append(gr.Dropdown(choices, value=default, label=f"{track.capitalize()} instrument"))
                mutes.append(gr.Checkbox(value=False, label=f"Mute {track}"))
    compose = gr.Button("Compose", variant="primary", elem_id="music-compose")
    with gr.Row():
        with gr.Column(scale=3):
            player = gr.Audio(
                label="The piece", type="filepath", format="wav", interactive=False, elem_id="music-audio"
            )
            engine = gr.Markdown(elem_id="music-engine")
            midi = gr.File(label="MIDI file (all four voices)", interactive=False, elem_id="music-midi")
        with gr.Column(scale=5):
            roll = result_image("Piano roll", "music-roll", IMAGE_HEIGHT)
    table = gr.Dataframe(label="MuseGAN metrics", interactive=False, wrap=True, elem_id="music-metrics")
    inputs = [seed, tempo, *programs, *mutes]
    outputs = [player, roll, midi, table, engine]
    examples = gr.Examples(
        EXAMPLES,
        inputs=inputs,
        label="Examples: string quartet, church organ, wind quartet, a choir without its basses",
        cache_examples=False,
    )

    how_it_works(HOW_IT_WORKS, ckpt, "The app's seeds 0–3", settings=model_settings(ckpt.card))

    compose.click(compose_music, inputs, outputs, api_name="compose_music", preprocess=False)
    dice.click(random_seed, None, [seed], api_visibility="private").then(
        compose_music, inputs, outputs, preprocess=False, api_visibility="private"
    )
    examples.load_input_event.then(compose_music, inputs, outputs, preprocess=False, api_visibility="private")
