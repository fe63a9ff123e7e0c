"""The Music tab, two tools. *Compose*: pick a seed, a tempo and an instrument per voice, and a
MuseGAN-style model writes four (or eight) bars for soprano, alto, tenor and bass; hear it, see it
as a piano roll, download the MIDI, and compare its MuseGAN metrics with the same numbers for
held-out Bach chorales. *Harmonise a melody*: bring a tune (a MIDI file, text or an example) and
a track-conditional MuseGAN writes alto, tenor and bass under it, measured as a harmony teacher
would mark it beside held-out chorales and a mismatched floor.

Two endpoints. `compose_music(seed, tempo, soprano_instrument, ..., mute_bass, bars)`: seed and
tempo first, then per voice a General MIDI program (0-127) and a mute flag, then the length, each
with a default, so an API client may send only the first two. `harmonize_melody(midi_file,
melody_text, example, tempo, soprano_instrument, ..., bass_instrument, seed)`: a melody from the
first of file, text and example that is given. Their inputs reach `gandemo.tasks.music` and
`gandemo.melody` raw (`preprocess=False`), which check every one before any work.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from gandemo import audio, melody, registry
from gandemo.checkpoint import Checkpoint
from gandemo.tasks import TaskSpec, music
from gandemo.ui.common import (
    card_settings,
    endpoint,
    how_it_works,
    image_source,
    output_path,
    result_image,
    settings_markdown,
    task_tab,
)
from gandemo.validation import InvalidInput, shown

INTRO = (
    "MuseGAN-style models this project trained on Bach's four-part chorales. **Compose**: four or eight "
    "bars for soprano, alto, tenor and bass from a seed (the same seed is always the same piece). "
    "**Harmonise a melody**: bring your own tune and hear it set for four voices. Listen, look at the "
    "piano roll, download the MIDI, and see how Bach-like it measures beside held-out chorales."
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

**From probabilities to notes.** $G$ gives each cell a probability. Each voice sings one note at a
time, as a sung line: at each 16th its most probable pitch where that is at least 0.5, and where it is
not, it holds its last note (the paper's hard threshold, every note at 0.5 or more, let a voice sound
two notes at once in 6 % of its steps, and left gaps where none reached 0.5). So the same seed is
always the same piece; drawing each note at random (Bernoulli) would scatter short stray notes
through the voices.

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

**Eight bars** are two phrases of one piece: the second keeps the first's *static* latents (shared
and private: the piece's character, which sets its key) and draws new *temporal* ones (how it moves).
"""
HARMONIZE_HOW = r"""
**Track-conditional generation.** MuseGAN's paper also lets a human write one track and the model
the others. Here the given track is your melody, the soprano: an *encoder* reads it at the bar
generator's resolutions (each 16th, each eighth, each beat, each bar, and the whole phrase, which
tells the key) and hands those features to the layers of the alto, tenor and bass generators that
work at the same resolution:

$$	ext{voice}_i = G_iig(z,\; z_i,\; E(	ext{melody})ig), \qquad i \in \{A, T, B\}$$

The critic is the composer's: it judges whole four-voice pieces, so a real chorale's soprano with
the voices $G$ wrote for it must pass for a chorale (WGAN-GP, trained on every 4-bar phrase of the
training chorales with its real soprano, in all 12 keys).

**One note at a time.** A sung voice holds one pitch. $G$ gives each pitch a probability; in each
voice at each 16th only the most probable pitch sounds (where none reaches 0.5 the voice holds its
last note), instead of every pitch above 0.5, which let the composer sound two notes in a voice in
6 % of its steps.

**Drafts.** Like a composer, the tab writes each phrase several times (8 drafts: the same static
latents, the piece's character, with different temporal ones) and keeps the draft with the fewest
consecutive fifths or octaves, then the most consonant bass. The same seed always gives the same
drafts, so the same harmonisation. The table gives the model's figures both ways: the drafts chosen
so (what you hear) and its first draft alone (the model without the choice).

**Longer melodies** are harmonised phrase by phrase (4 bars each), the phrases sharing the latents
that set the piece's character. A melody outside the sopranos the model learnt (G3 to B5) is moved
by whole octaves for the model and the harmony moved back, so your melody keeps its pitches.

**The figures** are a harmony teacher's: *bass consonant with the melody* (at each 16th, the
interval between soprano and bass is a unison/octave, third, fifth or sixth); *pitch classes
sounding together* (how full the chords are); *consecutive fifths or octaves* (of the moves where
two voices change pitch together, the share that go from a fifth to a fifth or an octave to an
octave, which four-part writing avoids); *notes at once within a voice*. Doubling the melody in
octaves is 100 % consonant, so all of them are needed. The floor is the same held-out sopranos over
the lower voices of *another* chorale.
"""

# What the harmoniser cannot do: one compact table under the tool (the reasons are in How it works).
HARMONIZE_CAVEATS = """
| | |
|---|---|
| metre | 4/4 only (a MIDI file in 3/4 or 6/8 is refused) |
| length | 1–16 bars, harmonised 4 bars at a time; the phrases are not joined by voice leading |
| melody | one line: the highest note sounding is taken, on the 16th-note grid |
| range | G3–B5 as given; wider melodies are refused, others moved by octaves and back |
| cadences | learnt from phrases cut at every bar line, not at the chorales' cadences |
"""

IMAGE_HEIGHT = 380
SEED_DEFAULT = 7
HARMONY_EXAMPLE = next(iter(melody.EXAMPLES))  # the tab opens with this tune in the text box
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
    bars: Any = music.N_BARS,
) -> tuple[str, Any, str, pd.DataFrame, str]:
    """seed (0..2**31-1), tempo (30..240 beats per minute), a General MIDI program (0..127) per
    voice, a mute flag per voice and the length (4 or 8 bars) -> (WAV, piano-roll PNG, MIDI file,
    metrics table, how the audio was made). The same inputs give the same piece."""
    programs = [soprano_instrument, alto_instrument, tenor_instrument, bass_instrument]
    mutes = [mute_soprano, mute_alto, mute_tenor, mute_bass]
    seed, tempo = music.check_seed(seed), music.check_tempo(tempo)  # every input first, before any work
    programs, mutes, bars = music.check_programs(programs), music.check_mutes(mutes), music.check_bars(bars)
    ckpt = registry.get("music")
    piece = music.compose(ckpt["G"], seed, tempo, programs, mutes, bars=bars)
    length = "" if bars == music.N_BARS else f"_{bars}bars"
    wav = output_path(f"chorale_seed{seed}{length}_{tempo}bpm.wav")
    wav.write_bytes(audio.wav_bytes(piece.audio))
    midi = wav.with_suffix(".mid")
    midi.write_bytes(audio.midi_bytes(piece.midi))
    headers, rows = music.metrics_table(piece.metrics, ckpt.card)
    return str(wav), piece.image, str(midi), pd.DataFrame(rows, columns=headers), piece.audio.note


def midi_upload(value: Any) -> bytes | None:
    """The bytes of an uploaded MIDI file from what a `preprocess=False` handler gets (the upload's
    data with its path) or an in-process caller passes (bytes, a path); None where none was given."""
    value = image_source(value)
    if value is None or value == "":
        return None
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str | Path):
        path = Path(value)
        if not path.is_file():
            raise InvalidInput(f"the melody file {shown(str(value))} was not found: upload {melody.MIDI_HELP}")
        if path.stat().st_size > melody.MAX_MIDI_BYTES:
            raise InvalidInput(f"the melody file is {path.stat().st_size:,} bytes: give {melody.MIDI_HELP}")
        return path.read_bytes()
    raise InvalidInput(f"the melody file must be a MIDI file, got {shown(value)}: upload {melody.MIDI_HELP}")


@endpoint
def harmonize_melody(
    midi_file: Any = None,
    melody_text: Any = "",
    example: Any = None,
    tempo: Any = None,
    soprano_instrument: Any = music.DEFAULT_PROGRAMS[0],
    alto_instrument: Any = music.DEFAULT_PROGRAMS[1],
    tenor_instrument: Any = music.DEFAULT_PROGRAMS[2],
    bass_instrument: Any = music.DEFAULT_PROGRAMS[3],
    seed: Any = 0,
) -> tuple[str, Any, str, pd.DataFrame, str]:
    """A melody (a MIDI file, else text such as `E4/4 E4/4 F4/4 G4/4 | ...`, else an example tune's
    name), tempo (30..240, or empty for the file's or example's; text: 80), a General MIDI program
    per voice and a seed -> (WAV, piano-roll PNG, MIDI file whose tracks are Soprano (the melody as
    given), Alto, Tenor, Bass; the harmony table; notes on how it was made)."""
    programs = music.check_programs([soprano_instrument, alto_instrument, tenor_instrument, bass_instrument])
    seed = music.check_seed(seed)
    chosen = None if tempo is None or (isinstance(tempo, str) and not tempo.strip()) else music.check_tempo(tempo)
    tune, own_tempo = melody.choose(midi_upload(midi_file), melody_text, example)
    if chosen is None and own_tempo is not None and not music.TEMPO_MIN <= own_tempo <= music.TEMPO_MAX:
        raise InvalidInput(
            f"the melody file's tempo is {own_tempo:g} quarter notes per minute: choose a tempo from "
            f"{music.TEMPO_MIN} to {music.TEMPO_MAX}"
        )
    tempo = chosen or own_tempo or music.DEFAULT_TEMPO
    ckpt = registry.get("music", music.HARMONIZE)
    piece = music.harmonize(ckpt["G"], tune, tempo, programs, seed)
    wav = output_path(f"harmonised_seed{seed}_{tempo:g}bpm.wav")
    wav.write_bytes(audio.wav_bytes(piece.audio))
    midi = wav.with_suffix(".mid")
    midi.write_bytes(audio.midi_bytes(piece.midi))
    headers, rows = music.harmony_table(piece.harmony, ckpt.card)
    phrases = -(-tune.bars // music.N_BARS)
    notes = [
        f"{tune.source[0].upper()}{tune.source[1:]}: {len(tune.notes)} notes, {tune.bars} bar"
        f"{'s' * (tune.bars > 1)} at {tempo:g} quarter notes per minute, harmonised in {phrases} phrase"
        f"{'s' * (phrases > 1)} of 4 bars, each the best of {piece.drafts} drafts by its consecutive fifths "
        f"and octaves, then its bass consonance (draft{'s' * (phrases > 1)} "
        f"{', '.join(str(c + 1) for c in piece.chosen)} kept).",
        piece.audio.note,
    ]
    if piece.shift:
        notes.insert(
            1,
            f"Moved {abs(piece.shift) // 12} octave(s) {'up' if piece.shift > 0 else 'down'} for the "
            "model and back: the melody sounds as given.",
        )
    return str(wav), piece.image, str(midi), pd.DataFrame(rows, columns=headers), " ".join(notes)


def example_melody(name: Any) -> tuple[str, str]:
    """An example tune's text and tempo, for the text box and the tempo field."""
    text, tempo = melody.EXAMPLES.get(name, ("", ""))
    return text, str(tempo)


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
    return settings_markdown(card, parts + _training_parts(hp))


def build(spec: TaskSpec) -> None:
    task_tab(spec, _body, INTRO)


def _body(ckpt: Checkpoint) -> None:
    """Two tools, each with its own model: the composer (music/default) opens first, as it always
    did; a tool whose model is missing says how to train it and the other still works."""
    with gr.Tabs():
        with gr.Tab("Compose", id="music-compose-tab"):
            reason = registry.status("music")
            if reason:
                gr.Markdown(reason)
            else:
                _compose_body(registry.get("music"))
        with gr.Tab("Harmonise a melody", id="music-harmonize-tab", elem_id="music-harmonize-tab"):
            reason = registry.status("music", music.HARMONIZE)
            if reason:
                gr.Markdown(reason)
            else:
                _harmonize_body(registry.get("music", music.HARMONIZE))


def _compose_body(ckpt: Checkpoint) -> None:
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
    with gr.Row():
        bars = gr.Radio(list(music.BAR_CHOICES), value=music.N_BARS, label="Bars", elem_id="music-bars", scale=1)
        compose = gr.Button("Compose", variant="primary", elem_id="music-compose", scale=4)
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
    inputs = [seed, tempo, *programs, *mutes, bars]
    outputs = [player, roll, midi, table, engine]
    examples = gr.Examples(
        EXAMPLES,
        inputs=inputs[:-1],
        label="Examples: string quartet, church organ, wind quartet, a choir without its basses",
        cache_examples=False,
    )

    how_it_works(HOW_IT_WORKS, ckpt, "The app's seeds 0–3", settings=model_settings(ckpt.card))

    compose.click(compose_music, inputs, outputs, api_name="compose_music", preprocess=False)
    dice.click(random_seed, None, [seed], api_visibility="private").then(
        compose_music, inputs, outputs, preprocess=False, api_visibility="private"
    )
    examples.load_input_event.then(compose_music, inputs, outputs, preprocess=False, api_visibility="private")


def _training_parts(hp: dict[str, Any]) -> list[str]:
    """What both music models' settings say of their WGAN-GP training: critic steps, λ, transposition."""
    parts = []
    if "n_critic" in hp:
        parts.append(f"{hp['n_critic']} critic steps per G step, λ = {hp.get('gp_weight', '?'):g}")
    if "transpose" in hp:
        parts.append(f"transposition {hp['transpose']}")
    return parts


def harmonize_settings(card: dict[str, Any]) -> str:
    """The harmoniser's settings from its card, as one Markdown paragraph ('' if it has none)."""
    hp, g = card_settings(card)
    parts = []
    if g:
        parts.append(
            f"alto, tenor and bass generators of {g.get('width', '?')} features per voice, a melody encoder of "
            f"{g.get('cond_width', '?')} features at each resolution, latents of {g.get('z_dim', '?')} numbers"
        )
    return settings_markdown(card, parts + _training_parts(hp))


def _harmonize_body(ckpt: Checkpoint) -> None:
    choices = program_choices()
    first_text = melody.EXAMPLES[HARMONY_EXAMPLE][0]
    with gr.Row():
        with gr.Column(scale=3):
            text = gr.Textbox(
                value=first_text,
                lines=3,
                label="Your melody as text: note, octave, /value (4 = quarter, 8 = eighth, . dots it), R = rest, | bar",
                elem_id="harmony-text",
            )
            example = gr.Dropdown(
                list(melody.EXAMPLES),
                value=HARMONY_EXAMPLE,
                label="Or an example tune (public domain)",
                elem_id="harmony-example",
            )
        with gr.Column(scale=2):
            upload = gr.File(
                label="Or a MIDI file (used instead of the text while it is here)",
                file_types=[".mid", ".midi"],
                elem_id="harmony-file",
            )
            with gr.Row():
                # text, empty by default, so that a MIDI file plays at its own tempo (an API client that
                # leaves the tempo out gets this default too); an empty number box would send 0
                tempo = gr.Textbox(
                    value="", label="Tempo (empty: the file's or example's; text: 80)", elem_id="harmony-tempo"
                )
                seed = gr.Number(value=0, precision=0, label=f"Seed (0–{music.SEED_MAX:,})", elem_id="harmony-seed")
    with gr.Accordion("Instruments", open=False), gr.Row():
        programs = [
            gr.Dropdown(choices, value=default, label=f"{track.capitalize()} instrument")
            for track, default in zip(music.TRACKS, music.DEFAULT_PROGRAMS, strict=True)
        ]
    go = gr.Button("Harmonise", variant="primary", elem_id="harmony-go")
    with gr.Row():
        with gr.Column(scale=3):
            player = gr.Audio(
                label="Your melody in four parts",
                type="filepath",
                format="wav",
                interactive=False,
                elem_id="harmony-audio",
            )
            note = gr.Markdown(elem_id="harmony-note")
            midi = gr.File(
                label="MIDI file (Soprano = your melody, Alto, Tenor, Bass)", interactive=False, elem_id="harmony-midi"
            )
        with gr.Column(scale=5):
            roll = result_image("Piano roll", "harmony-roll", IMAGE_HEIGHT)
    table = gr.Dataframe(
        label="Harmony, as a teacher would mark it", interactive=False, wrap=True, elem_id="harmony-metrics"
    )
    gr.Markdown("**What it cannot do**\n" + HARMONIZE_CAVEATS)
    how_it_works(HARMONIZE_HOW, ckpt, "Validation sopranos harmonised", settings=harmonize_settings(ckpt.card))

    inputs = [upload, text, example, tempo, *programs, seed]
    outputs = [player, roll, midi, table, note]
    go.click(harmonize_melody, inputs, outputs, api_name="harmonize_melody", preprocess=False)
    # select (a user's choice), not input: the dropdown also reports input when it loses focus
    example.select(example_melody, [example], [text, tempo], api_visibility="private")
