"""MuseGAN, the hybrid model (Dong, Hsiao, Yang & Yang, "MuseGAN: Multi-track Sequential Generative
Adversarial Networks for Symbolic Music Generation and Accompaniment", AAAI 2018), sized for a
2-core CPU: a generator of multi-track piano rolls and a WGAN critic over them.

A piece is a tensor (tracks, bars, steps, pitches): here 4 voices (soprano, alto, tenor, bass) x 4
bars x 16 sixteenth-note steps x 48 pitches. The paper's three ways to make several tracks:
- *jamming*: one generator per track, each with its own latent (the players listen to nobody);
- *composer*: one generator makes all tracks from one shared latent (one mind plans every part);
- *hybrid* (this one): one latent shared by all tracks plus one private latent per track, fed to
  one bar generator per track; the shared part coordinates the voices (key, harmony, rhythm),
  the private part gives each voice its own line.
Across bars, each of those latents comes in two kinds: *static* (the same for every bar: the
piece's character) and *temporal* (a small temporal generator turns it into one vector per bar:
how the phrase moves). So the bar generator of track i gets, for bar t,
    [z_shared, G_temp(z_shared_temporal)[t], z_i, G_temp,i(z_i_temporal)[t]].

The paper's layer plan is kept: the bar generator grows time to beats then to steps, and pitch to
octaves then to the 12 semitones of each octave, with BatchNorm + ReLU and a sigmoid output (the
probability that each note is on); the critic collapses the 12 semitones (of all voices at once)
per octave, then the octaves, then time, then looks across neighbouring bars, with LeakyReLU(0.2)
and no normalisation (WGAN-GP's gradient penalty is per sample, so no batch statistics).

How it is computed: every one of MuseGAN's (transposed) convolutions has its kernel equal to its
stride, so it applies one dense layer to each non-overlapping block. Here that is written as it is
computed, a reshape plus a matrix product (`nn.Linear`, or `TrackLinear` for the per-track bar
generators: the four private generators as one batched product). On a 2-core CPU that measured
1.1-2.6x faster than the same layers as nn.Conv2d / grouped nn.ConvTranspose2d, and no weight has
more than 3 dimensions, so the project's channels_last layout leaves them alone.

Track-conditional generation (the paper's "accompaniment"; the Music tab's harmoniser): with
`cond_width` > 0 the generator writes the other tracks *given* one track, here the soprano's
melody. A `MelodyEncoder` mirrors the bar generator backwards (steps -> eighths -> beats -> bar ->
phrase) and its features at each resolution join the bar generator's layer of that resolution
(the phrase and bar features its input, the beat, eighth and step features the layers that grow
those), as MuseGAN's conditional generator adds its encoder's features to the generator's layers.
The critic needs no change: it judges the whole piece, the given melody with the written voices.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

from gandemo.nets import dcgan

__all__ = ["MelodyEncoder", "MuseCritic", "MuseGenerator", "TemporalGenerator", "TrackLinear"]


def _check_shape(n_bars: int, steps_per_bar: int, n_pitches: int) -> None:
    if n_bars < 2 or n_bars & (n_bars - 1):
        raise ValueError(f"n_bars must be a power of 2 from 2 up, got {n_bars}")
    if steps_per_bar < 4 or steps_per_bar % 4:
        raise ValueError(
            f"steps_per_bar must be a multiple of 4 (time grows to beats, then x2 x2), got {steps_per_bar}"
        )
    if n_pitches < 12 or n_pitches % 12:
        raise ValueError(f"n_pitches must be a whole number of octaves (a multiple of 12), got {n_pitches}")


class TrackLinear(nn.Module):
    """One dense layer per track, applied at once: x (..., tracks, in) -> (..., tracks, out),
    track i through its own weight[i] (a batched matrix product). No bias: BatchNorm follows."""

    def __init__(self, tracks: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(tracks, in_features, out_features))
        self.bias = None
        nn.init.normal_(self.weight, 0.0, 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("...ki,kio->...ko", x, self.weight)


# the DCGAN initialisation, which MuseGAN's code uses too, on this family's dense layers and BatchNorm1d
init_weights = functools.partial(dcgan.init_weights, layers=(nn.Linear, TrackLinear), norms=(nn.BatchNorm1d,))


def _bn_relu(bn: nn.BatchNorm1d, x: torch.Tensor) -> torch.Tensor:
    """BatchNorm over the last axis (channels last: every other axis is a sample), then ReLU."""
    return torch.relu(bn(x.reshape(-1, x.shape[-1])).reshape(x.shape))


class TemporalGenerator(nn.Module):
    """z (N, z_dim) -> one vector per bar (N, n_bars, z_dim): a dense layer to one "bar", then
    layers that double the bars (MuseGAN's transposed convolutions over bars, kernel 2 stride 2)."""

    def __init__(self, z_dim: int = 32, n_bars: int = 4, width: int = 128) -> None:
        super().__init__()
        self.z_dim, self.n_bars = z_dim, n_bars
        doublings = int(math.log2(n_bars))
        widths = [width] * doublings + [z_dim]
        self.first = nn.Linear(z_dim, width, bias=False)
        self.ups = nn.ModuleList(nn.Linear(widths[i], 2 * widths[i + 1], bias=False) for i in range(doublings))
        self.bns = nn.ModuleList(nn.BatchNorm1d(c) for c in widths)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = _bn_relu(self.bns[0], self.first(z)[:, None])  # (N, 1, width)
        for up, bn in zip(self.ups, self.bns[1:], strict=True):
            x = up(x)  # (N, bars, 2c): each bar splits into two
            x = _bn_relu(bn, x.reshape(x.shape[0], 2 * x.shape[1], -1))
        return x


class MelodyEncoder(nn.Module):
    """A given track (N, n_bars, steps_per_bar, n_pitches) -> its features at the bar generator's
    resolutions, each `width` wide: per step (N*bars, steps, w), per eighth (N*bars, steps/2, w),
    per beat (N*bars, steps/4, w), and per bar the bar's own features beside the whole phrase's
    (N*bars, 2w; the phrase's say which key the melody is in). Dense layers over non-overlapping
    blocks (MuseGAN's strided convolutions) with LeakyReLU(0.2)."""

    def __init__(self, n_bars: int = 4, steps_per_bar: int = 16, n_pitches: int = 48, width: int = 64) -> None:
        super().__init__()
        self.n_bars, self.steps_per_bar, self.n_pitches = n_bars, steps_per_bar, n_pitches
        w = width
        self.step = nn.Linear(n_pitches, w)
        self.eighth = nn.Linear(2 * w, w)
        self.beat = nn.Linear(2 * w, w)
        self.bar = nn.Linear(steps_per_bar // 4 * w, w)
        self.phrase = nn.Linear(n_bars * w, w)

    def forward(self, melody: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        shape = (self.n_bars, self.steps_per_bar, self.n_pitches)
        if melody.dim() != 4 or tuple(melody.shape[1:]) != shape:
            raise ValueError(f"a melody must have shape (N, {', '.join(map(str, shape))}), got {tuple(melody.shape)}")
        act = nn.functional.leaky_relu
        n, b, t, _ = melody.shape
        steps = act(self.step(melody.reshape(n * b, t, -1)), 0.2)  # (M, steps, w)
        eighths = act(self.eighth(steps.reshape(n * b, t // 2, -1)), 0.2)
        beats = act(self.beat(eighths.reshape(n * b, t // 4, -1)), 0.2)
        bars = act(self.bar(beats.reshape(n * b, -1)), 0.2)  # (M, w)
        phrase = act(self.phrase(bars.reshape(n, -1)), 0.2)  # (N, w)
        per_bar = torch.cat([bars, phrase.repeat_interleave(b, 0)], 1)  # (M, 2w)
        return steps, eighths, beats, per_bar


class MuseGenerator(nn.Module):
    """Latents (N, latent_dim) -> note probabilities (N, n_tracks, n_bars, steps_per_bar, n_pitches) in (0, 1).

    One latent vector per piece holds the hybrid model's four kinds, in this order, each `z_dim`
    wide: shared static | shared temporal | private static x n_tracks | private temporal x
    n_tracks; so latent_dim = (2 + 2 n_tracks) z_dim (320 for 4 tracks, z_dim 32). One vector per
    piece keeps seed -> piece simple and lets the loop recalibrate BatchNorm on plain latents.

    Bar generator of each track (features per track; time x pitch):
        4 z_dim @ 1x1 -> width @ beats x 1 -> width @ beats x octaves -> width/2 @ 2 beats x octaves
        -> width/2 @ steps x octaves -> 1 @ steps x (octaves x 12), sigmoid
    The defaults (z_dim 32, width 128) have 0.86 M parameters (1.7 MB as fp16; width 256: 2.2 M).

    With `cond_width` > 0 it is track-conditional: `forward(z, melody)` takes the given track
    (N, n_bars, steps_per_bar, n_pitches) too, encodes it (`MelodyEncoder`, `cond_width` features)
    and writes the `n_tracks` others (the harmoniser: 3, alto, tenor and bass, under the soprano)."""

    def __init__(
        self,
        n_tracks: int = 4,
        n_bars: int = 4,
        steps_per_bar: int = 16,
        n_pitches: int = 48,
        z_dim: int = 32,
        width: int = 128,
        temporal_width: int = 128,
        cond_width: int = 0,
    ) -> None:
        super().__init__()
        _check_shape(n_bars, steps_per_bar, n_pitches)
        if cond_width < 0:
            raise ValueError(f"cond_width must be >= 0 (0: unconditional), got {cond_width}")
        if width < 2 or width % 2:
            raise ValueError(f"width must be an even number >= 2, got {width}")
        self.n_tracks, self.n_bars, self.steps_per_bar, self.n_pitches = n_tracks, n_bars, steps_per_bar, n_pitches
        self.z_dim, self.width = z_dim, width
        self.latent_dim = (2 + 2 * n_tracks) * z_dim
        self.beats = steps_per_bar // 4
        self.octaves = n_pitches // 12
        self.shared_temporal = TemporalGenerator(z_dim, n_bars, temporal_width)
        self.private_temporal = nn.ModuleList(TemporalGenerator(z_dim, n_bars, temporal_width) for _ in range(n_tracks))
        k, w, half, c = n_tracks, width, width // 2, cond_width
        self.cond_width = c
        self.encoder = MelodyEncoder(n_bars, steps_per_bar, n_pitches, c) if c else None
        # with a melody, each layer also reads the melody's features of its own resolution
        self.to_beats = TrackLinear(k, 4 * z_dim + 2 * c, self.beats * w)  # time 1 -> beats
        self.to_octaves = TrackLinear(k, w + c, self.octaves * w)  # pitch 1 -> octaves
        self.time_x2a = TrackLinear(k, w, 2 * half)  # time x2
        self.time_x2b = TrackLinear(k, half + c, 2 * half)  # time x2 -> steps
        self.to_semitones = TrackLinear(k, half + c, 12)  # each octave -> its 12 semitones
        self.semitone_bias = nn.Parameter(torch.zeros(k, 12))
        self.bns = nn.ModuleList(nn.BatchNorm1d(k * c) for c in (w, w, half, half))
        self.apply(init_weights)

    def split_latent(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, latent_dim) -> shared static (N, d), shared temporal (N, d), private static
        (N, k, d), private temporal (N, k, d)."""
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"latents must have shape (N, {self.latent_dim}), got {tuple(z.shape)}")
        d, k = self.z_dim, self.n_tracks
        private = z[:, 2 * d : (2 + k) * d].unflatten(1, (k, d))
        return z[:, :d], z[:, d : 2 * d], private, z[:, (2 + k) * d :].unflatten(1, (k, d))

    def _bn(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """BatchNorm per (track, feature) channel, x (..., k, c); then ReLU."""
        shape = x.shape
        return _bn_relu(self.bns[i], x.reshape(*shape[:-2], shape[-2] * shape[-1])).reshape(shape)

    @staticmethod
    def _double_time(x: torch.Tensor) -> torch.Tensor:
        """(M, t, o, k, 2c) -> (M, 2t, o, k, c): each step's features split into two steps."""
        m, t, o, k, c2 = x.shape
        return x.reshape(m, t, o, k, 2, c2 // 2).permute(0, 1, 4, 2, 3, 5).reshape(m, 2 * t, o, k, c2 // 2)

    @staticmethod
    def _with(x: torch.Tensor, features: torch.Tensor | None) -> torch.Tensor:
        """x (M, t, o, k, c) with the melody's features (M, t, f) appended to every octave and track."""
        if features is None:
            return x
        m, t, o, k, _ = x.shape
        return torch.cat([x, features[:, :, None, None].expand(m, t, o, k, features.shape[-1])], -1)

    def forward(self, z: torch.Tensor, melody: torch.Tensor | None = None) -> torch.Tensor:
        if (melody is None) != (self.encoder is None):
            need = "a melody (N, bars, steps, pitches)" if self.encoder is not None else "no melody"
            raise ValueError(f"this generator takes {need}")
        shared, shared_t, private, private_t = self.split_latent(z)
        n, k, b, d, w = z.shape[0], self.n_tracks, self.n_bars, self.z_dim, self.width
        steps = eighths = beats = None
        if melody is not None:
            if melody.shape[0] != n:
                raise ValueError(f"{n} latents but {melody.shape[0]} melodies")
            steps, eighths, beats, per_bar = self.encoder(melody.to(z.dtype))
        per_bar_shared = self.shared_temporal(shared_t)  # (N, bars, d)
        per_bar_private = torch.stack([g(private_t[:, i]) for i, g in enumerate(self.private_temporal)], 2)
        # the bar generators' input (N, bars, k, 4d); the static parts repeat in every bar
        x = torch.cat(
            [
                shared[:, None, None].expand(n, b, k, d),
                per_bar_shared[:, :, None].expand(n, b, k, d),
                private[:, None].expand(n, b, k, d),
                per_bar_private,
            ],
            dim=3,
        ).reshape(n * b, k, 4 * d)  # bars folded into the batch
        if melody is not None:
            x = torch.cat([x, per_bar[:, None].expand(n * b, k, per_bar.shape[-1])], -1)
        x = self.to_beats(x).reshape(n * b, k, self.beats, w).transpose(1, 2)  # (M, beats, k, w)
        x = self._bn(0, x)[:, :, None]  # (M, beats, 1, k, w)
        x = self.to_octaves(self._with(x, beats)).reshape(n * b, self.beats, k, self.octaves, w).transpose(2, 3)
        x = self._bn(1, x)  # (M, beats, oct, k, w)
        x = self._bn(2, self._double_time(self.time_x2a(x)))
        x = self._bn(3, self._double_time(self.time_x2b(self._with(x, eighths))))  # (M, steps, oct, k, w/2)
        x = torch.sigmoid(self.to_semitones(self._with(x, steps)) + self.semitone_bias)  # (M, steps, oct, k, 12)
        x = x.permute(0, 3, 1, 2, 4).reshape(n, b, k, self.steps_per_bar, self.n_pitches)
        return x.transpose(1, 2)


class MuseCritic(nn.Module):
    """Piano rolls (N, n_tracks, n_bars, steps_per_bar, n_pitches), binary or probabilities ->
    one unbounded score per piece (N,): a WGAN critic (higher = more like the data).

    Per bar, every layer sees all voices together:
        the 12 semitones of each octave of all tracks -> width (the same weights for every octave
        and step) -> the octaves -> width -> pairs of steps -> 2 width -> pairs -> 2 width -> the
        bar's remaining steps -> one 2 width vector per bar;
    then across bars: neighbouring bars -> 2 width (MuseGAN's kernel-2 convolution over bars) and
    a dense layer to the score. The defaults (width 64) have 0.17 M parameters (width 128: 0.66 M)."""

    def __init__(
        self, n_tracks: int = 4, n_bars: int = 4, steps_per_bar: int = 16, n_pitches: int = 48, width: int = 64
    ) -> None:
        super().__init__()
        _check_shape(n_bars, steps_per_bar, n_pitches)
        self.n_tracks, self.n_bars, self.steps_per_bar, self.n_pitches = n_tracks, n_bars, steps_per_bar, n_pitches
        self.octaves = n_pitches // 12
        w, w2 = width, 2 * width
        self.semitones = nn.Linear(n_tracks * 12, w)
        self.octave = nn.Linear(self.octaves * w, w)
        self.time_a = nn.Linear(2 * w, w2)
        self.time_b = nn.Linear(2 * w2, w2)
        self.bar = nn.Linear(steps_per_bar // 4 * w2, w2)
        self.across = nn.Linear(2 * w2, w2)
        self.out = nn.Linear((n_bars - 1) * w2, 1)
        self.apply(init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (self.n_tracks, self.n_bars, self.steps_per_bar, self.n_pitches)
        if x.dim() != 5 or tuple(x.shape[1:]) != shape:
            raise ValueError(f"piano rolls must have shape (N, {', '.join(map(str, shape))}), got {tuple(x.shape)}")
        act = nn.functional.leaky_relu
        n, k, b, t, _ = x.shape
        h = x.reshape(n, k, b, t, self.octaves, 12).permute(0, 2, 3, 4, 1, 5).reshape(n * b, t, self.octaves, k * 12)
        h = act(self.semitones(h), 0.2)  # (M, steps, oct, w)
        h = act(self.octave(h.flatten(2)), 0.2)  # (M, steps, w)
        h = act(self.time_a(h.reshape(n * b, t // 2, -1)), 0.2)  # (M, steps/2, 2w)
        h = act(self.time_b(h.reshape(n * b, t // 4, -1)), 0.2)  # (M, steps/4, 2w)
        h = act(self.bar(h.reshape(n, b, -1)), 0.2)  # (N, bars, 2w)
        h = act(self.across(torch.cat([h[:, :-1], h[:, 1:]], dim=2)), 0.2)  # (N, bars-1, 2w)
        return self.out(h.flatten(1)).squeeze(1)
