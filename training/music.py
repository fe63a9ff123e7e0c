"""Music: a hybrid MuseGAN (gandemo.nets.musegan) on Bach's four-part chorales, trained as a WGAN-GP.

Data: the JSB chorales at 16th-note steps with the voices separated (`--data` is the folder with
`Jsb16thSeparated.json`, or that file): 229 training, 76 validation and 77 test chorales, each
step [soprano, alto, tenor, bass] as MIDI pitches, -1 for a rest. The files carry no bar lines;
most chorales start with a one-beat pickup and end on a full bar, so bar lines are put where the
piece's end says (a piece of T steps has its first bar line at step T mod 16). A training item is
a 4-bar phrase (64 steps) starting at any bar line (hop 1 bar, so phrases overlap), as 4 binary
piano rolls over MIDI 36..83; each time it is drawn it is transposed by a random -6..+5 semitones
that keep it inside the range (every key is as likely). Held and repeated notes look the same in
this data (a quarter note is 4 equal steps), so a note is a run of equal steps.
Held out, never trained on: the validation chorales (non-overlapping phrases) for the in-run
evaluation that picks the best step; the test chorales for the card's reference numbers.

The objective is WGAN-GP (Gulrajani et al. 2017), as the MuseGAN paper: per generator step,
`n_critic` = 5 critic steps, each on its own real batch,
    critic minimises  D(G(z)) - D(x) + lambda * (|grad D(x_hat)|_2 - 1)^2,   lambda = 10,
with x_hat a random point on the line between a real and a generated piece; then G minimises
-D(G(z)). Adam lr 1e-3, betas (0.5, 0.9) (MuseGAN's settings). G sees and is judged on its note
probabilities (sigmoid outputs); at inference each voice sings its most probable pitch
(gandemo.tasks.music.decode).
On top of the paper: an EMA of G (exported in its place) with its BatchNorm statistics
re-estimated on latents, and the transposition augmentation. `--binary ste` shows the critic the
thresholded notes instead, with straight-through gradients (the deterministic binary neurons of
BinaryMuseGAN, Dong & Yang 2018): in 600-step trials on small synthetic chorales it put notes
out earlier and each voice in its register, but no longer run has compared the two, so the
presets keep the paper's probabilities.

In-run evaluation: the five MuseGAN metrics of `--eval-n` generated pieces against the validation
phrases, summed up as `metric_gap` (gandemo.metrics.music_metric_gap, lower is better).
`python -m training evaluate music`: the metrics of N generated pieces (the app's seeds 0..N-1),
of a baseline that draws every (voice, pitch, step) on its own with the training data's frequency,
of training phrases and of the held-out test phrases; and the same five of 8-bar pieces (two
phrases sharing their static latents, `gandemo.tasks.music.phrase_latents`) beside the test
chorales' 8-bar stretches.

`--variant harmonize` is MuseGAN's track-conditional generation: the same loop, critic and data,
but G (`cond_width` > 0) writes alto, tenor and bass *given* the soprano of each training phrase
(encoded by its MelodyEncoder), and the critic judges that real soprano with the written voices
against whole chorales: one more kind of G in the same checkpoint format. Its in-run `metric_gap`
is the mean of the MuseGAN gap and the harmony gap (gandemo.metrics.harmony_gap) of the validation
phrases harmonised from their own sopranos; `evaluate` measures the test phrases so, against
their own lower voices, a mismatched chorale's (the floor) and the melody doubled in octaves.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from gandemo import metrics
from gandemo.checkpoint import Checkpoint
from gandemo.imaging import make_grid
from gandemo.nets.musegan import MuseCritic, MuseGenerator, TrackLinear
from gandemo.tasks.music import (
    DRAFTS,
    HARMONIZE,
    HARMONY_LABELS,
    LOWEST_PITCH,
    METRIC_LABELS,
    MIN_NOTE_STEPS,
    N_BARS,
    N_PITCHES,
    N_STEPS,
    STEPS_PER_BAR,
    TRACKS,
    WRITTEN,
    draft_latents,
    harmonize_phrases,
    latents,
    phrase_latents,
    piano_roll_image,
    piece_harmony,
    piece_metrics,
    render,
)
from training import distributed
from training.data import EpochSampler
from training.evaluation import Evaluation
from training.loop import Amp
from training.task import TrainTask, data_path, write_tiny

DATA_FILE = "Jsb16thSeparated.json"
SAMPLE_SEEDS = (0, 1, 2, 3)  # the sample grid: the app's seeds 0-3
CALIBRATION = (8, 64)  # batches x latents on which the EMA G's BatchNorm statistics are re-estimated
EVAL_SEED = 99_991  # latents of the in-run evaluation (the same every time)
VOICE_LEADING_RAMP = (0.25, 0.5)  # the voice-leading penalty rises from 0 to its weight over these shares of the run
INFERENCE = (
    f"G in eval mode (BatchNorm statistics re-estimated for the EMA weights on {CALIBRATION[0] * CALIBRATION[1]} "
    "latents); one note at a time in each voice: at each 16th its most probable pitch where that is >= 0.5, "
    "else it holds its last such pitch (no rests)"
)
HARMONIZE_INFERENCE = (
    f"{INFERENCE}. The app writes each 4-bar phrase in {DRAFTS} drafts (the first from the seed's latents, the "
    "others with the same static latents and their own temporal ones) and keeps the one with the fewest "
    "consecutive fifths or octaves, then the most consonant bass (gandemo.tasks.music.harmonize_phrases); "
    "`evaluate` measures that and the first draft alone (one_draft)"
)


# ---- data ------------------------------------------------------------------------------------------
def load_chorales(path: str | Path) -> dict[str, list[np.ndarray]]:
    """split ("train", "valid", "test") -> pieces, each int16 (steps, 4 voices) of MIDI pitches,
    -1 = rest. `path` is the JSON file or the folder holding it (the data's PROVENANCE.md)."""
    path = Path(path)
    file = path / DATA_FILE if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"{file} not found: --data must be the JSB chorales folder holding {DATA_FILE}")
    raw = json.loads(file.read_text())
    out = {}
    for split in ("train", "valid", "test"):
        if split not in raw:
            raise ValueError(f"{file} has no {split!r} split (it has {', '.join(raw)})")
        out[split] = [np.asarray(piece, dtype=np.int16).reshape(-1, len(TRACKS)) for piece in raw[split]]
    return out


def phrases(pieces: list[np.ndarray], hop_bars: int = 1, bars: int = N_BARS) -> np.ndarray:
    """`bars`-bar phrases (n, voices, 16 bars steps) of MIDI pitches (-1 = rest), starting on bar
    lines (the first at step T mod 16: bars end where the piece ends), every `hop_bars` bars."""
    return phrases_of(pieces, hop_bars, bars)[0]


def phrases_of(pieces: list[np.ndarray], hop_bars: int = 1, bars: int = N_BARS) -> tuple[np.ndarray, np.ndarray]:
    """`phrases` and, for each, the index of the piece it comes from."""
    out, owner, steps = [], [], bars * STEPS_PER_BAR
    for i, piece in enumerate(pieces):
        first = len(piece) % STEPS_PER_BAR
        for start in range(first, len(piece) - steps + 1, hop_bars * STEPS_PER_BAR):
            out.append(piece[start : start + steps].T)
            owner.append(i)
    if not out:
        return np.zeros((0, len(TRACKS), steps), np.int16), np.zeros(0, np.int64)
    return np.stack(out), np.asarray(owner)


def mismatched(phr: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Each phrase's soprano over the lower voices of a phrase of another chorale (half the set
    further on, or the next one that is of another chorale): the floor a harmoniser must beat."""
    n = len(phr)
    out = phr.copy()
    for i in range(n):
        j = (i + n // 2) % n
        while owner[j] == owner[i]:
            j = (j + 1) % n
            if j == i:
                raise ValueError("every phrase is of one chorale: nothing to mismatch")
        out[i, 1:] = phr[j, 1:]
    return out


def doubled(phr: np.ndarray) -> np.ndarray:
    """Each phrase's soprano doubled in octaves below it (alto and tenor an octave, bass two): the
    degenerate harmony that is always consonant, which only the other figures catch."""
    s = phr[:, 0]
    out = phr.copy()
    for voice, octaves in ((1, 1), (2, 1), (3, 2)):
        out[:, voice] = np.where(s >= 0, s - 12 * octaves, -1)
    return out


def key_agreement(rolls: np.ndarray) -> float:
    """Pieces (N, voices, steps, pitches) of two halves: the mean correlation of the two halves'
    pitch-class histograms (all voices' sounding steps). Two phrases in one key correlate highly;
    two pieces of random keys about 0."""
    half = rolls.shape[2] // 2
    classes = (LOWEST_PITCH + np.arange(rolls.shape[3])) % 12
    out = []
    for r in rolls:
        a, b = r[:, :half].sum((0, 1)), r[:, half:].sum((0, 1))
        ha, hb = np.bincount(classes, a, 12), np.bincount(classes, b, 12)
        if ha.std() > 0 and hb.std() > 0:
            out.append(np.corrcoef(ha, hb)[0, 1])
    return float(np.mean(out)) if out else float("nan")


def shift_range(phr: np.ndarray, max_shift: int) -> tuple[np.ndarray, np.ndarray]:
    """Per phrase, the lowest and highest transposition (semitones) that keep every note inside
    the roll's pitches, within -max_shift..max_shift-1 (12 keys for max_shift 6)."""
    notes = np.where(phr >= 0, phr, np.iinfo(np.int16).max)
    low = notes.reshape(len(phr), -1).min(1).astype(np.int64)
    high = np.where(phr >= 0, phr, -1).reshape(len(phr), -1).max(1).astype(np.int64)
    lo = np.maximum(LOWEST_PITCH - low, -max_shift)
    hi = np.minimum(LOWEST_PITCH + N_PITCHES - 1 - high, max(max_shift - 1, 0))
    return lo, hi


def to_rolls(phr: np.ndarray | torch.Tensor, shifts: torch.Tensor | None = None) -> torch.Tensor:
    """Phrases (n, voices, steps) of MIDI pitches (-1 = rest), transposed by `shifts` (n,) ->
    binary piano rolls float32 (n, voices, bars, steps per bar, pitches)."""
    p = torch.as_tensor(np.asarray(phr), dtype=torch.long)
    n, k, t = p.shape
    if shifts is not None:
        p = torch.where(p >= 0, p + shifts.view(n, 1, 1), p)
    idx = p - LOWEST_PITCH
    on = p >= 0
    if ((idx < 0) | (idx >= N_PITCHES))[on].any():
        raise ValueError(f"a note lies outside MIDI {LOWEST_PITCH}..{LOWEST_PITCH + N_PITCHES - 1}")
    rolls = torch.zeros(n, k, t, N_PITCHES + 1)  # the extra column takes the rests, then is dropped
    rolls.scatter_(3, torch.where(on, idx, N_PITCHES).unsqueeze(3), 1.0)
    return rolls[..., :N_PITCHES].reshape(n, k, t // STEPS_PER_BAR, STEPS_PER_BAR, N_PITCHES)


def flat_rolls(phr: np.ndarray) -> np.ndarray:
    """Phrases -> bool rolls (n, voices, steps, pitches), untransposed: what the metrics take
    (pitches outside the roll's range, as an octave-doubled bass may be, are left out)."""
    p = np.asarray(phr)
    p = np.where((p >= LOWEST_PITCH) & (p < LOWEST_PITCH + N_PITCHES), p, -1)
    return to_rolls(p).flatten(2, 3).numpy().astype(bool)


def frequency_baseline(train_phr: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """`n` pieces whose every (voice, pitch, step) is on with its frequency in the training phrases,
    each on its own: the right notes in the right amounts, with no time or harmony."""
    freq = flat_rolls(train_phr).mean((0, 2))  # (voices, pitches)
    rng = np.random.default_rng(seed)
    return rng.random((n, len(TRACKS), N_STEPS, N_PITCHES)) < freq[None, :, None, :]


def sample_phrases(n: int, count: int = 4) -> list[int]:
    """`count` phrase indices spread evenly over n phrases (the harmoniser's sample grid)."""
    return sorted({i * n // count for i in range(min(count, n))})


def harmony_reference(test: np.ndarray, owner: np.ndarray, chorales: int) -> dict[str, Any]:
    """The harmony figures of the held-out test phrases, of the same sopranos over a mismatched
    chorale's lower voices (the floor) and of the sopranos doubled in octaves: what the tab shows
    beside each harmonised piece (the card's `harmony_reference`)."""
    return {
        "split": "test",
        "pieces": len(test),
        "chorales": {k: _number(v) for k, v in piece_harmony(flat_rolls(test)).items()},
        "mismatched": {k: _number(v) for k, v in piece_harmony(flat_rolls(mismatched(test, owner))).items()},
        "doubled": {k: _number(v) for k, v in piece_harmony(flat_rolls(doubled(test))).items()},
        "method": f"gandemo.metrics.harmony_metrics on the {len(test)} non-overlapping 4-bar phrases of the {chorales} "
        "test chorales, untransposed: as they are (chorales), each soprano over the alto, tenor and bass of a phrase "
        "of another chorale (mismatched: the floor), and each soprano doubled an octave (alto, tenor) and two "
        "octaves (bass) below (doubled); notes at once over alto, tenor and bass",
    }


def harmonized_samples(G: nn.Module, valid: np.ndarray) -> Image.Image:
    """The harmoniser's sample grid, 2 x 2: four validation phrases' sopranos harmonised as the app
    does (`harmonize_phrases`, the best of DRAFTS drafts) with the app's seeds 0-3."""
    idx = sample_phrases(len(valid))
    melodies = flat_rolls(valid[idx])[:, 0]
    pictures = []
    for k, (i, s) in enumerate(zip(idx, SAMPLE_SEEDS, strict=False)):
        roll, chosen = harmonize_phrases(G, melodies[k : k + 1], draft_latents(s, 1, G))
        title = f"validation phrase {i}, seed {s}, draft {int(chosen[0]) + 1} of {DRAFTS}"
        pictures.append(piano_roll_image(roll[0], title=title))
    return make_grid(pictures, 2)


def consecutive_perfects(pieces: torch.Tensor) -> torch.Tensor:
    """A differentiable stand-in for gandemo.metrics.parallel_moves on note probabilities (N, voices,
    bars, steps, pitches): per piece, the expected number of consecutive fifths or octaves summed
    over every pair of voices and step. Each voice's probabilities at a step, scaled to sum to at
    most 1, are its pitch distribution; a pair's interval class is c at a step with probability
    sum_k chroma_a[k + c] chroma_b[k], and both voices move with probability (1 - P(a stays)) (1 -
    P(b stays)), everything taken as independent. Pitch index i is pitch class i mod 12 (the roll
    starts on a C)."""
    p = pieces.flatten(2, 3)  # (N, k, steps, pitches)
    # each step's probabilities scaled to sum to 1 (by a constant: no gradient through the sum), also
    # where the voice would rest: resting must not pay (a first penalty, scaled only down to a sum
    # of 1, taught the tenor to chop its line into 16ths between rests)
    p = p / p.sum(-1, keepdim=True).detach().clamp_min(0.1)
    chroma = p.unflatten(-1, (p.shape[-1] // 12, 12)).sum(-2)  # (N, k, steps, 12)
    move = 1 - (p[:, :, 1:] * p[:, :, :-1]).sum(-1)  # (N, k, steps - 1)
    a, b = torch.triu_indices(p.shape[1], p.shape[1], 1)
    ca, cb = chroma[:, a], chroma[:, b]  # (N, pairs, steps, 12)
    same = sum(
        q[..., :-1] * q[..., 1:] for q in ((torch.roll(ca, -c, -1) * cb).sum(-1) for c in metrics.PERFECT_INTERVALS)
    )
    return (same * move[:, a] * move[:, b]).sum((1, 2))


def _number(x: float) -> float | None:
    """Rounded for the card; None where a metric is undefined (e.g. no note at all): JSON has no NaN."""
    return round(float(x), 4) if np.isfinite(x) else None


class MusicTask(TrainTask):
    name = "music"

    @classmethod
    def tiny_checkpoints(cls, root: Path, seed: int = 0) -> list[Path]:
        return [write_tiny_music_checkpoint(root, seed), write_tiny_harmony_checkpoint(root, seed)]

    ema_of = "G"
    eval_key = "metric_gap"
    # Sized on these 2-core machines (AVX2-only EPYC: fp32; no weight has 4 dimensions, so
    # channels_last changes nothing). One step = 5 critic steps + 1 generator step at batch 32,
    # G width 128 + critic width 64 (0.86 M + 0.17 M parameters). Measured on the real data with
    # 1 thread while another training run used the CPU: 0.53 s a step (load ~2) to 0.9 s (load ~5);
    # with 2 threads on those busy cores it crawled (4-12 s a step: the threads wait on each
    # other), so on a shared machine pass --threads 1. The cpu preset's 8,000 steps take ~70 min at
    # 0.53 s (2 threads on idle cores should be faster; not measured), plus 16 in-run evaluations
    # of a few seconds. They draw 1.28 M phrases for the critic (~470 passes over the 2,718
    # training phrases, each time in a random key). The gpu preset doubles both widths and the
    # batch and trains 3x longer; it has not been timed.
    # The harmoniser (--variant harmonize) is the same G with 3 voices and a melody encoder (1.0 M
    # parameters) beside the same critic; its step costs about the composer's. Its cpu preset is
    # sized to finish well within an hour on one core that is not shared (a conditional G has the
    # melody to lean on and needs fewer steps); timings on this machine are in the card.
    variant_presets = {
        "cpu": {HARMONIZE: {"steps": 4000, "eval_every": 250, "sample_every": 250, "voice_leading": 0.5}},
        "gpu": {HARMONIZE: {"steps": 12000, "eval_every": 1000, "voice_leading": 0.5}},
    }
    presets = {
        "cpu": {
            "steps": 8000,
            "batch_size": 32,
            "lr": 1e-3,
            "ema_decay": 0.999,
            "g_width": 128,
            "d_width": 64,
            "eval_every": 500,
            "sample_every": 500,
            "voice_leading": 0.0,
        },
        "gpu": {
            "steps": 24000,
            "batch_size": 64,
            "lr": 1e-3,
            "ema_decay": 0.9995,
            "g_width": 256,
            "d_width": 128,
            "eval_every": 2000,
            "sample_every": 1000,
            "voice_leading": 0.0,
        },
    }

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--g-width", type=int, help="features per voice in the bar generators")
        parser.add_argument("--d-width", type=int, help="critic width")
        parser.add_argument("--z-dim", type=int, default=32, help="size of each of the hybrid model's latents")
        parser.add_argument("--n-critic", type=int, default=5, help="critic steps per generator step (paper: 5)")
        parser.add_argument("--gp-weight", type=float, default=10.0, help="gradient penalty lambda (paper: 10)")
        parser.add_argument(
            "--transpose", type=int, default=6, help="random transposition by -N..N-1 semitones (0: none)"
        )
        parser.add_argument("--eval-n", type=int, default=256, help="generated pieces per in-run evaluation")
        parser.add_argument(
            "--cond-width", type=int, default=64, help="--variant harmonize: features of the melody encoder"
        )
        parser.add_argument(
            "--voice-leading",
            type=float,
            help="weight of G's penalty on the expected consecutive fifths and octaves per piece (0: none)",
        )
        parser.add_argument(
            "--binary",
            choices=["none", "ste"],
            default="none",
            help="what the critic sees of G: its note probabilities (none, MuseGAN) or the thresholded notes "
            "with straight-through gradients (ste, BinaryMuseGAN's deterministic binary neurons)",
        )

    def __init__(self, args: argparse.Namespace, device: torch.device) -> None:
        super().__init__(args, device)
        self.harmonize = self.variant == HARMONIZE
        self.n_critic, self.gp_weight = int(args.n_critic), float(args.gp_weight)
        self.transpose, self.eval_n = int(args.transpose), int(args.eval_n)
        self.binary = args.binary
        self.voice_leading = float(args.voice_leading or 0.0)
        self.total_steps, self.steps_done = max(int(args.steps), 1), 0
        self.batch_size = int(args.batch_size)
        self.data_path = Path(args.data)
        data = load_chorales(args.data)
        self.pieces = {split: len(v) for split, v in data.items()}
        train = phrases(data["train"], hop_bars=1)
        lo, hi = shift_range(train, 0)
        train = train[(lo <= 0) & (hi >= 0)]  # phrases that fit the pitch range as they are (all of JSB's do)
        if args.limit:
            train = train[: args.limit]
        if len(train) == 0:
            raise SystemExit(f"{args.data}: no 4-bar phrase in the training chorales")
        self.train = train
        self.shift_lo, self.shift_hi = (torch.from_numpy(a) for a in shift_range(train, self.transpose))
        self.valid = phrases(data["valid"], hop_bars=N_BARS)
        self.test, self.test_owner = phrases_of(data["test"], hop_bars=N_BARS)
        self.sampler = EpochSampler(len(train), self.batch_size * self.n_critic, seed=args.seed)
        shape = {"n_tracks": len(TRACKS), "n_bars": N_BARS, "steps_per_bar": STEPS_PER_BAR, "n_pitches": N_PITCHES}
        self.g_kwargs = {**shape, "z_dim": int(args.z_dim), "width": int(args.g_width), "temporal_width": 128}
        if self.harmonize:  # G writes alto, tenor and bass given the soprano
            self.g_kwargs |= {"n_tracks": len(WRITTEN), "cond_width": int(args.cond_width)}
        self.d_kwargs = {**shape, "width": int(args.d_width)}
        betas = (0.5, 0.9)  # MuseGAN's (and WGAN-GP's beta2)
        self.hparams = {
            "batch_size": self.batch_size,
            "lr": args.lr,
            "betas": list(betas),
            "n_critic": self.n_critic,
            "gp_weight": self.gp_weight,
            "transpose": f"-{self.transpose}..+{self.transpose - 1} semitones" if self.transpose else "none",
            "critic_sees": "thresholded notes, straight-through gradients" if self.binary == "ste" else "probabilities",
            "g_width": self.g_kwargs["width"],
            "d_width": self.d_kwargs["width"],
            "z_dim": self.g_kwargs["z_dim"],
            "ema_rampup": 0.05,
        }
        if self.harmonize:
            self.hparams["cond_width"] = self.g_kwargs["cond_width"]
        if self.voice_leading:
            self.hparams["voice_leading"] = self.voice_leading
            self.hparams["voice_leading_ramp"] = list(VOICE_LEADING_RAMP)
        torch.manual_seed(args.seed)
        G, D = MuseGenerator(**self.g_kwargs).to(device), MuseCritic(**self.d_kwargs).to(device)
        self.models = {"G": G, "D": D}
        self.optimizers = {
            "G": torch.optim.Adam(G.parameters(), lr=args.lr, betas=betas),
            "D": torch.optim.Adam(D.parameters(), lr=args.lr, betas=betas),
        }
        self._valid_metrics: dict[str, dict[str, float]] | None = None
        self._valid_harmony: dict[str, float] | None = None

    # ---- the run --------------------------------------------------------------------------------
    def next_batch(self) -> torch.Tensor:
        """n_critic real batches (n_critic, batch, voices, bars, steps, pitches), each phrase in a
        random key that fits the range."""
        idx = self.sampler.next()
        lo, hi = self.shift_lo[idx], self.shift_hi[idx]
        shifts = lo + (torch.rand(len(idx)) * (hi - lo + 1)).long().clamp(max=hi - lo)
        rolls = to_rolls(self.train[idx.numpy()], shifts)
        return rolls.view(self.n_critic, self.batch_size, *rolls.shape[1:])

    def shard_batch(self, batch: torch.Tensor, rank: int, world: int) -> torch.Tensor:
        """Under DDP, this process's slice of each of the n_critic batches (the items are on dim 1)."""
        return distributed.shard(batch, rank, world, dim=1)

    def critic_view(self, probs: torch.Tensor) -> torch.Tensor:
        """What the critic sees of G's note probabilities: themselves (MuseGAN), or with
        --binary ste the notes as the app plays them (on where >= 0.5), with the gradient passed
        straight through to the probabilities (BinaryMuseGAN's deterministic binary neurons)."""
        if self.binary != "ste":
            return probs
        hard = (probs >= 0.5).to(probs.dtype)
        return probs + (hard - probs).detach()

    def fake(self, G: nn.Module, z: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """G's pieces as the critic sees them: all four voices (the composer), or with --variant
        harmonize the real soprano of `real` above the voices G writes for it."""
        if not self.harmonize:
            return self.critic_view(G(z))
        melody = real[:, 0]
        return torch.cat([melody[:, None], self.critic_view(G(z, melody))], 1)

    def gradient_penalty(self, D: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """(|grad D(x_hat)|_2 - 1)^2 at random points x_hat between real and fake pieces, in fp32."""
        alpha = distributed.rand(len(real), 1, 1, 1, 1, device=real.device)
        x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
        return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()

    def train_step(self, batch: torch.Tensor, amp: Amp) -> dict[str, torch.Tensor]:
        G, D = self.models["G"], self.models["D"]
        D.requires_grad_(True)
        for real in batch:
            z = distributed.randn(len(real), G.latent_dim, device=real.device)  # under DDP: this slice's
            with torch.no_grad(), amp.autocast():
                fake = self.fake(G, z, real).float()
            with amp.autocast():
                d_real, d_fake = amp.fp32(D(real)).mean(), amp.fp32(D(fake)).mean()
            gp = self.gradient_penalty(D, real, fake)  # outside autocast: a double backward in fp32
            loss_d = d_fake - d_real + self.gp_weight * gp
            amp.step(loss_d, self.optimizers["D"])
        D.requires_grad_(False)  # G's step needs gradients through D, not of D's weights
        z = distributed.randn(batch.shape[1], G.latent_dim, device=batch.device)
        with amp.autocast():
            fake = self.fake(G, z, batch[0])
            loss_g = -amp.fp32(D(fake)).mean()
        out = {
            "loss_d": loss_d.detach(),
            "wasserstein": (d_real - d_fake).detach(),  # the critic's estimate (last critic step)
            "gp": gp.detach(),
        }
        if self.voice_leading:
            # the critic alone let the bass follow the melody in fifths and octaves (7 % of moves
            # together, the chorales 0.3 %): G also pays for the ones it expects to write
            perfects = consecutive_perfects(amp.fp32(fake)).mean()
            loss_g = loss_g + self.voice_leading_weight() * perfects
            out["perfects"] = perfects.detach()
        amp.step(loss_g, self.optimizers["G"])
        self.steps_done += 1
        return out | {"loss_g": loss_g.detach()}

    def voice_leading_weight(self) -> float:
        """The penalty's weight now: 0 for the first quarter of the run (the critic teaches harmony
        first), rising linearly to `--voice-leading` at half of it. At full weight from the start the
        penalty won before harmony was learnt (bass consonance 60 % at step 1,500, against 88 % without)."""
        start, full = VOICE_LEADING_RAMP
        ramp = (self.steps_done / self.total_steps - start) / (full - start)
        return self.voice_leading * float(min(max(ramp, 0.0), 1.0))

    def calibration_inputs(self) -> Iterator[torch.Tensor | tuple[torch.Tensor, torch.Tensor]]:
        """Latent batches, the same ones every time (a reproducible export); for the harmoniser
        with training sopranos in random keys beside them."""
        batches, size = CALIBRATION
        gen = torch.Generator().manual_seed(1234)
        for _ in range(batches):
            z = torch.randn(size, self.models["G"].latent_dim, generator=gen)
            if not self.harmonize:
                yield z
                continue
            idx = torch.randint(len(self.train), (size,), generator=gen)
            lo, hi = self.shift_lo[idx], self.shift_hi[idx]
            shifts = lo + (torch.rand(size, generator=gen) * (hi - lo + 1)).long().clamp(max=hi - lo)
            yield z, to_rolls(self.train[idx.numpy()], shifts)[:, 0]

    def sample_grid(self, models: dict[str, nn.Module]) -> Image.Image:
        """The pieces of the app's seeds 0-3 as piano rolls, 2 x 2; the harmoniser's: four
        validation phrases' sopranos harmonised with those seeds."""
        G = models["G"]
        if self.harmonize:
            return harmonized_samples(G, self.valid)
        z = torch.cat([latents(s, 1, G.latent_dim) for s in SAMPLE_SEEDS])
        rolls = render(G, z)
        return make_grid([piano_roll_image(r, title=f"seed {s}") for s, r in zip(SAMPLE_SEEDS, rolls, strict=True)], 2)

    def evaluate(self, models: dict[str, nn.Module]) -> dict[str, float]:
        """The MuseGAN metrics of `eval_n` generated pieces (fixed latents) and their gap to the
        validation phrases'."""
        if self._valid_metrics is None:
            self._valid_metrics = piece_metrics(flat_rolls(self.valid))
        G = models["G"]
        if not self.harmonize:
            made = piece_metrics(render(G, latents(EVAL_SEED, self.eval_n, G.latent_dim)))
            out = {"metric_gap": round(metrics.music_metric_gap(made, self._valid_metrics), 4)}
            out.update({key: _number(made[key]["mean"]) for key in METRIC_LABELS})
            return out
        # the harmoniser: every validation phrase's soprano, harmonised; the gap to those phrases' own
        real = flat_rolls(self.valid)
        rolls = render(G, latents(EVAL_SEED, len(real), G.latent_dim), real[:, 0])
        made, harmony = piece_metrics(rolls), piece_harmony(rolls)
        if self._valid_harmony is None:
            self._valid_harmony = piece_harmony(real)
        gap = metrics.music_metric_gap(made, self._valid_metrics) + metrics.harmony_gap(harmony, self._valid_harmony)
        gap /= 2
        out = {"metric_gap": round(gap, 4)}
        out.update({key: _number(made[key]["mean"]) for key in METRIC_LABELS})
        out.update({key: _number(v) for key, v in harmony.items()})
        return out

    def export_modules(self, models: dict[str, nn.Module]) -> dict[str, tuple[nn.Module, dict]]:
        return {"G": (models["G"].cpu(), self.g_kwargs)}

    def card_fields(self) -> dict[str, Any]:
        held = piece_metrics(flat_rolls(self.test))
        extra: dict[str, Any] = {}
        if self.harmonize:
            extra["harmony_reference"] = harmony_reference(self.test, self.test_owner, self.pieces["test"])
        objective = (
            f"WGAN-GP: {self.n_critic} critic steps per G step, gradient penalty lambda {self.gp_weight:g}, critic "
            "on G's note probabilities"
        )
        if self.harmonize:
            objective += (
                "; track-conditional: G writes alto, tenor and bass given each training phrase's real soprano "
                "(encoded), and the critic sees that soprano with them"
            )
        return extra | {
            "data": {
                "name": "JSB chorales (Jsb16thSeparated)",
                "path": data_path(self.data_path),
                "items": len(self.train),
                "pieces": self.pieces,
                "resolution": f"{len(TRACKS)} voices x {N_BARS} bars x {STEPS_PER_BAR} sixteenths x {N_PITCHES} "
                f"pitches (MIDI {LOWEST_PITCH}..{LOWEST_PITCH + N_PITCHES - 1})",
                "layout": "4-bar phrases starting on every bar line of the training chorales (bar lines counted "
                "back from each piece's end); a note is a run of equal steps (held = repeated)",
                "augmentation": f"random transposition by -{self.transpose}..+{self.transpose - 1} semitones, "
                "within the pitch range"
                if self.transpose
                else "none",
                "held_out": f"the validation split ({self.pieces['valid']} chorales, {len(self.valid)} phrases) for "
                f"the in-run evaluation; the test split ({self.pieces['test']} chorales, {len(self.test)} "
                "phrases) for the reference numbers; never trained on",
            },
            "hyperparameters": self.hparams,
            "objective": objective,
            "inference": HARMONIZE_INFERENCE if self.harmonize else INFERENCE,
            "tracks": list(TRACKS),
            "held_out_metrics": {
                "split": "test",
                "pieces": len(self.test),
                "values": held,
                "method": f"gandemo.metrics.music_metrics on the {len(self.test)} non-overlapping 4-bar phrases "
                f"of the {self.pieces['test']} test chorales, untransposed; qualified notes last >= "
                f"{MIN_NOTE_STEPS} sixteenths",
            },
        }

    def extra_state(self) -> dict[str, Any]:
        return {"sampler": self.sampler.state_dict(), "steps_done": self.steps_done}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state["sampler"])
        self.steps_done = int(state.get("steps_done", 0))  # runs saved before the count: from 0

    # ---- python -m training evaluate music -----------------------------------------------------------
    @classmethod
    def add_evaluate_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--n", type=int, default=1000, help="generated pieces (the app's seeds 0..N-1)")
        parser.add_argument(
            "--draws", type=int, default=4, help="harmoniser: each test soprano harmonised with the app's seeds 0..N-1"
        )
        parser.add_argument(
            "--drafts",
            type=int,
            default=DRAFTS,
            help=f"harmoniser: drafts of each phrase, the best kept, as the app does (default {DRAFTS}, the app's); "
            "the first draft alone is measured beside it (one_draft)",
        )
        parser.add_argument("--preview", type=Path, help="write a PNG: generated | baseline | held-out pieces")

    @classmethod
    def measure(cls, ckpt: Checkpoint, args: argparse.Namespace) -> Evaluation:
        """The five MuseGAN metrics (means over the voices; tonal distance over the 6 pairs of
        voices) of N generated pieces, of the frequency baseline, of training phrases and of the
        held-out test phrases, plus the gap of each set to the held-out one."""
        if ckpt.card.get("variant") == HARMONIZE:
            return cls.measure_harmonizer(args, ckpt["G"])
        G = ckpt["G"]
        data = load_chorales(args.data)
        train, test = phrases(data["train"], hop_bars=1), phrases(data["test"], hop_bars=N_BARS)
        n = int(args.n)
        z = torch.cat([latents(s, 1, G.latent_dim) for s in range(n)])
        rng = np.random.default_rng(0)
        real_train = phrases(data["train"], hop_bars=N_BARS)
        real_train = real_train[rng.permutation(len(real_train))[: min(n, len(real_train))]]
        sets = {
            "model": render(G, z),
            "baseline": frequency_baseline(train, n),
            "real": flat_rolls(real_train),
            "held_out": flat_rolls(test),
        }
        cols = min(4, *(len(v) for v in sets.values()))
        preview = (
            make_grid(
                [
                    piano_roll_image(sets[k][i], title=f"{k} {i}")
                    for k in ("model", "baseline", "held_out")
                    for i in range(cols)
                ],
                ncol=cols,
            )
            if args.preview
            else None
        )
        measured = {k: piece_metrics(v) for k, v in sets.items()}
        sizes = {k: len(v) for k, v in sets.items()}
        how = (
            f"model: the app's seeds 0..{n - 1}; baseline: {n} pieces with every (voice, pitch, step) on at its "
            f"frequency in the training phrases; real: {sizes['real']} non-overlapping training phrases; held_out: "
            f"the {sizes['held_out']} non-overlapping phrases of the test chorales. Mean over the 4 voices"
        )
        methods = {
            "empty_bars": "share of a voice's bars with no note (EB)",
            "pitch_classes_per_bar": "pitch classes a voice uses in a non-empty bar (UPC)",
            "qualified_notes": f"share of notes lasting >= {MIN_NOTE_STEPS} sixteenths (QN; the paper: >= a 32nd "
            "at 96 steps per bar)",
            "polyphony": "share of a voice's sounding steps with 2+ pitches at once (PP)",
            "tonal_distance": "per beat, distance of two voices' tonal centroids (Harte et al. 2006), mean over "
            "beats where both sound and over the 6 pairs of voices (TD)",
        }
        result: dict[str, dict[str, Any]] = {}
        for key, label in METRIC_LABELS.items():
            result[label] = {k: _number(m[key]["mean"]) for k, m in measured.items()}
            result[label]["generated"] = n
            result[label]["method"] = f"{methods[key]}. {how}"
        result["gap to held-out chorales"] = {
            k: round(metrics.music_metric_gap(m, measured["held_out"]), 4) for k, m in measured.items()
        } | {
            "generated": n,
            "method": "gandemo.metrics.music_metric_gap: mean over the five metrics of |set - held-out| (relative "
            "for pitch classes and tonal distance), lower is better",
        }
        for key, label in HARMONY_LABELS.items():
            result[label] = {k: _number(piece_harmony(v, voices=None)[key]) for k, v in sets.items()}
            result[label]["generated"] = n
            result[label]["method"] = f"{HARMONY_METHODS[key]}. {how} (notes at once: all four voices)"
        result.update(eight_bars(G, data["test"], n))
        return Evaluation(result, preview, f"rows: model (seeds 0-{cols - 1}) | baseline | held-out")

    @classmethod
    def measure_harmonizer(cls, args: argparse.Namespace, G: nn.Module) -> Evaluation:
        """The harmoniser on the held-out test phrases: each one's real soprano harmonised as the app
        does (`harmonize_phrases`: the best of `drafts` drafts) with the app's seeds 0..draws-1, beside
        the first draft alone (one_draft: the model without the choice), the phrase's own lower voices
        (held_out), a mismatched chorale's (the floor) and the soprano doubled in octaves; the
        harmony figures, the five MuseGAN metrics and the gap of each set to the chorales."""
        data = load_chorales(args.data)
        test, owner = phrases_of(data["test"], hop_bars=N_BARS)
        real = flat_rolls(test)
        draws, drafts = int(args.draws), int(getattr(args, "drafts", DRAFTS))
        made, first = [], []
        for s in range(draws):
            z = draft_latents(s, 1, G, drafts).expand(drafts, len(test), G.latent_dim)
            made.append(harmonize_phrases(G, real[:, 0], z)[0])
            first.append(render(G, z[0], real[:, 0]))
        made, first = np.concatenate(made), np.concatenate(first)
        sets = {
            "model": made,
            "one_draft": first,
            "held_out": real,
            "mismatched": flat_rolls(mismatched(test, owner)),
            "doubled": flat_rolls(doubled(test)),
        }
        idx = sample_phrases(len(test))
        preview = (
            make_grid(
                [
                    piano_roll_image(sets[k][i], title=f"{k}: test phrase {i}")
                    for k in ("model", "one_draft", "held_out", "mismatched")
                    for i in idx
                ],
                ncol=len(idx),
            )
            if args.preview
            else None
        )
        how = (
            f"model: each of the {len(test)} non-overlapping phrases of the {len(data['test'])} test chorales "
            f"harmonised from its own soprano with the app's seeds 0..{draws - 1} ({len(made)} pieces) as the app "
            f"does: {drafts} drafts of each, the one with the fewest consecutive fifths or octaves kept, then the "
            "most consonant bass (gandemo.tasks.music.harmonize_phrases); one_draft: the first draft of each alone "
            "(the model without the choice); held_out: those phrases as Bach wrote them; mismatched: each soprano "
            "over another chorale's alto, tenor and bass (the floor); doubled: each soprano doubled an octave "
            "(alto, tenor) and two octaves (bass) below"
        )
        harmony = {k: piece_harmony(v) for k, v in sets.items()}
        result: dict[str, dict[str, Any]] = {}
        for key, label in HARMONY_LABELS.items():
            result[label] = {k: _number(h[key]) for k, h in harmony.items()}
            result[label] |= {"generated": len(made), "drafts": drafts, "method": f"{HARMONY_METHODS[key]}. {how}"}
        measured = {k: piece_metrics(v) for k, v in sets.items()}
        for key, label in METRIC_LABELS.items():
            result[label] = {k: _number(m[key]["mean"]) for k, m in measured.items()}
            result[label] |= {"generated": len(made), "method": f"as the composer's (mean over the 4 voices). {how}"}
        result["harmony gap to held-out chorales"] = {
            k: round(metrics.harmony_gap(h, harmony["held_out"]), 4) for k, h in harmony.items()
        } | {
            "generated": len(made),
            "method": "gandemo.metrics.harmony_gap: mean over the four harmony figures of |set - held-out| "
            "(relative for the two counts), lower is better",
        }
        note = f"rows: model (seed 0, best of {drafts} drafts) | its first draft | held-out chorale | mismatched"
        return Evaluation(result, preview, note)


HARMONY_METHODS = {
    "bass_consonance": "share of the 16th steps where soprano and bass both sound at which their interval class "
    f"is one of {', '.join(map(str, metrics.CONSONANT_INTERVALS))} semitones (gandemo.metrics.bass_consonance)",
    "pitch_classes_together": "distinct pitch classes of all voices' notes, mean over the steps where any sounds",
    "parallel_fifths_octaves": "share of the moves of two voices together (both change pitch at one step; 6 pairs) "
    "that go from a fifth to a fifth or an octave/unison to an octave/unison (interval classes 7 or 0; similar or "
    "contrary motion)",
    "notes_at_once": "notes a voice sounds at once, mean over the steps where it sounds",
}


def eight_bars(G: nn.Module, test_pieces: list[np.ndarray], n: int) -> dict[str, dict[str, Any]]:
    """The composer's 8-bar pieces (two phrases of one piece: `phrase_latents` of the app's seeds
    0..n-1) beside the test chorales' non-overlapping 8-bar stretches and beside two independent
    4-bar pieces glued (seeds s and s + n): the five MuseGAN metrics and how well the two halves agree on
    their key (`key_agreement`)."""
    made = np.stack([np.concatenate(list(render(G, phrase_latents(s, 2, G))), axis=1) for s in range(n)])
    glued = np.stack(
        [
            np.concatenate(
                [render(G, latents(s, 1, G.latent_dim))[0], render(G, latents(s + n, 1, G.latent_dim))[0]], 1
            )
            for s in range(n)
        ]
    )
    real = flat_rolls(phrases(test_pieces, hop_bars=2 * N_BARS, bars=2 * N_BARS))
    sets = {"model": made, "held_out": real, "independent": glued}
    how = (
        f"model: the 8-bar pieces of the app's seeds 0..{n - 1} (two phrases sharing their static latents); "
        f"held_out: the {len(real)} non-overlapping 8-bar stretches of the test chorales; independent: the 4-bar "
        f"pieces of seeds s and s + {n} one after the other"
    )
    measured = {k: piece_metrics(v) for k, v in sets.items()}
    out: dict[str, dict[str, Any]] = {}
    for key, label in METRIC_LABELS.items():
        out[f"8 bars: {label}"] = {k: _number(m[key]["mean"]) for k, m in measured.items()}
        out[f"8 bars: {label}"] |= {"generated": n, "method": f"as for 4 bars. {how}"}
    out["8 bars: key agreement of the two halves"] = {k: _number(key_agreement(v)) for k, v in sets.items()} | {
        "generated": n,
        "method": "correlation of the two 4-bar halves' pitch-class histograms (all voices), mean over the pieces: "
        f"1 = the same notes in the same proportions, about 0 = unrelated keys. {how}",
    }
    return out


# ---- the tests' tiny checkpoints (TrainTask.tiny_checkpoints) --------------------------------------------
TINY_MUSE = {
    "n_tracks": 4,
    "n_bars": 4,
    "steps_per_bar": 16,
    "n_pitches": 48,
    "z_dim": 4,
    "width": 8,
    "temporal_width": 8,
}


MUSIC_RESOLUTION = "4 voices x 64 steps x 48 pitches"
MUSIC_HYPERPARAMETERS = {"d_width": 4, "n_critic": 5, "gp_weight": 10.0, "batch_size": 2, "lr": 1e-3}


def write_tiny_music_checkpoint(root: Path, seed: int = 0) -> Path:
    """An untrained but valid music checkpoint (MuseGAN G of width 8) under `root/music/default`. Its
    weights are redrawn at unit gain and its note bias set to -4 so that, untrained, it writes a few
    seed-dependent notes (~1 % of the cells on, 40-120 notes: fast to play) rather than silence or
    noise; its card has held-out reference numbers measured on two hand-made chords."""
    G, chords = untrained_generator(TINY_MUSE, seed, -4.0), _tiny_chords()
    return write_tiny(
        root,
        "music",
        "default",
        {"G": (G, TINY_MUSE)},
        MUSIC_RESOLUTION,
        hyperparameters=MUSIC_HYPERPARAMETERS,
        held_out_metrics={"split": "test", "pieces": 2, "values": piece_metrics(chords)},
    )


TINY_HARMONY = {**TINY_MUSE, "n_tracks": 3, "cond_width": 4}


def write_tiny_harmony_checkpoint(root: Path, seed: int = 0) -> Path:
    """An untrained but valid harmoniser checkpoint (the conditional MuseGAN G of width 8 with a
    melody encoder of 4) under `root/music/harmonize`, its weights redrawn at unit gain and its note
    bias at -2.5 so that, untrained, its voices sound a few seed-dependent notes; its card has harmony
    reference numbers measured on two hand-made chords and their mismatch."""
    G, chords = untrained_generator(TINY_HARMONY, seed, -2.5), _tiny_chords()
    swapped = np.concatenate([chords[:, :1], chords[::-1, 1:]], 1)
    reference = {"split": "test", "pieces": 2, "chorales": piece_harmony(chords)}
    reference["mismatched"] = piece_harmony(swapped)
    return write_tiny(
        root,
        "music",
        "harmonize",
        {"G": (G, TINY_HARMONY)},
        MUSIC_RESOLUTION,
        hyperparameters=MUSIC_HYPERPARAMETERS,
        harmony_reference=reference,
    )


def untrained_generator(kwargs: dict[str, Any], seed: int, note_bias: float) -> MuseGenerator:
    """An untrained G with its weights redrawn at unit gain and its note bias at `note_bias` (the tests'
    tiny checkpoints, the benchmarks' stand-in for a model not trained yet)."""
    torch.manual_seed(seed)
    G = MuseGenerator(**kwargs).eval()
    with torch.no_grad():
        for m in G.modules():
            if isinstance(m, TrackLinear | torch.nn.Linear):
                fan_in = m.weight.shape[-2] if isinstance(m, TrackLinear) else m.weight.shape[-1]
                m.weight.normal_(0, (2 / fan_in) ** 0.5)
        G.semitone_bias.fill_(note_bias)
    return G


def _tiny_chords() -> np.ndarray:
    """Two held chords, C major and G major, one note a voice: the tiny cards' reference pieces."""
    chords = np.zeros((2, 4, N_STEPS, N_PITCHES), bool)
    for i, pitches in enumerate(((72, 67, 64, 48), (71, 67, 62, 43))):
        for track, pitch in enumerate(pitches):
            chords[i, track, :, pitch - LOWEST_PITCH] = True
    return chords
