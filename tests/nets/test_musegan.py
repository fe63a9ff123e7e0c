import pytest
import torch
from torch import nn

from gandemo.nets.musegan import MelodyEncoder, MuseCritic, MuseGenerator, TemporalGenerator, TrackLinear

SMALL = {"z_dim": 8, "width": 16, "temporal_width": 16}


def test_generator_makes_note_probabilities_for_tracks_bars_steps_pitches():
    G = MuseGenerator(**SMALL).eval()
    assert G.latent_dim == 10 * 8  # shared static + temporal, private static + temporal for 4 tracks
    y = G(torch.randn(3, G.latent_dim))
    assert y.shape == (3, 4, 4, 16, 48)
    assert y.min() > 0 and y.max() < 1 and y.std() > 0
    other = MuseGenerator(n_tracks=2, n_bars=2, steps_per_bar=8, n_pitches=24, **SMALL).eval()
    assert other(torch.randn(2, other.latent_dim)).shape == (2, 2, 2, 8, 24)


def _latent_parts(G: MuseGenerator, z: torch.Tensor) -> dict[str, slice]:
    d, k = G.z_dim, G.n_tracks
    return {
        "shared": slice(0, d),
        "shared_temporal": slice(d, 2 * d),
        **{f"private{i}": slice((2 + i) * d, (3 + i) * d) for i in range(k)},
        **{f"private_temporal{i}": slice((2 + k + i) * d, (3 + k + i) * d) for i in range(k)},
    }


@pytest.mark.parametrize("part", ["private1", "private_temporal2"])
def test_a_private_latent_changes_only_its_own_track(part: str):
    """The hybrid model's promise: track i's private latents feed only track i's generators.
    (In train mode: BatchNorm then normalises each layer, as in training; in eval mode an
    untrained G's activations shrink layer by layer below float32's resolution.)"""
    torch.manual_seed(0)
    G = MuseGenerator(**SMALL).train()
    z = torch.randn(8, G.latent_dim)
    z2 = z.clone()
    z2[:, _latent_parts(G, z)[part]] += 1.0
    with torch.no_grad():
        changed = (G(z2) - G(z)).abs().flatten(2).amax(2) > 0  # (N, tracks)
    track = int(part[-1])
    assert changed[:, track].all()
    assert not changed[:, [t for t in range(4) if t != track]].any()


@pytest.mark.parametrize("part", ["shared", "shared_temporal"])
def test_the_shared_latents_change_every_track(part: str):
    torch.manual_seed(0)
    G = MuseGenerator(**SMALL).train()
    z = torch.randn(8, G.latent_dim)
    z2 = z.clone()
    z2[:, _latent_parts(G, z)[part]] += 1.0
    with torch.no_grad():
        assert ((G(z2) - G(z)).abs().flatten(2).amax(2) > 0).all()


def test_temporal_latents_make_bars_differ_and_static_latents_reach_every_bar():
    torch.manual_seed(0)
    T = TemporalGenerator(z_dim=8, n_bars=4, width=16).eval()
    per_bar = T(torch.randn(3, 8))
    assert per_bar.shape == (3, 4, 8)
    assert (per_bar[:, 1:] - per_bar[:, :1]).abs().amax() > 0  # not the same vector in every bar
    G = MuseGenerator(**SMALL).train()
    z = torch.randn(8, G.latent_dim)
    z2 = z.clone()
    z2[:, _latent_parts(G, z)["shared"]] += 1.0
    with torch.no_grad():
        per_bar_change = (G(z2) - G(z)).abs().flatten(3).amax(3)[0]  # (tracks, bars)
    assert (per_bar_change > 0).all()


def test_track_linear_is_one_dense_layer_per_track():
    layer = TrackLinear(3, 5, 2)
    x = torch.randn(4, 7, 3, 5)
    y = layer(x)
    assert y.shape == (4, 7, 3, 2)
    for k in range(3):
        assert torch.allclose(y[..., k, :], x[..., k, :] @ layer.weight[k], atol=1e-6)


def test_generator_rejects_latents_and_shapes_it_cannot_take():
    G = MuseGenerator(**SMALL)
    with pytest.raises(ValueError, match=r"\(N, 80\)"):
        G(torch.randn(2, 79))
    with pytest.raises(ValueError, match="power of 2"):
        MuseGenerator(n_bars=3)
    with pytest.raises(ValueError, match="multiple of 12"):
        MuseGenerator(n_pitches=50)
    with pytest.raises(ValueError, match="multiple of 4"):
        MuseCritic(steps_per_bar=6)


def test_critic_scores_each_piece_and_sees_every_track_and_bar():
    torch.manual_seed(0)
    D = MuseCritic(width=8)
    x = (torch.rand(3, 4, 4, 16, 48) < 0.05).float().requires_grad_(True)
    out = D(x)
    assert out.shape == (3,)
    out[0].backward()
    seen = x.grad[0].abs()
    assert (seen.flatten(1).amax(1) > 0).all() and (seen.transpose(0, 1).flatten(1).amax(1) > 0).all()
    assert x.grad[1:].abs().sum() == 0  # one piece's score depends on that piece alone (no batch statistics)
    with pytest.raises(ValueError, match="piano rolls must have shape"):
        D(torch.rand(3, 4, 64, 48))


def test_no_batchnorm_in_the_critic_and_leaky_relu_between_layers():
    D = MuseCritic()
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in D.modules())
    assert all(isinstance(m, nn.Linear) for m in D.children())


def test_default_sizes_fit_a_cpu():
    G, D = MuseGenerator(), MuseCritic()
    assert 0.5e6 < sum(p.numel() for p in G.parameters()) < 1.5e6
    assert sum(p.numel() for p in D.parameters()) < 0.5e6
    assert max(p.dim() for p in [*G.parameters(), *D.parameters()]) <= 3  # channels_last leaves them alone
    G.to(memory_format=torch.channels_last)  # what the loop and the registry do: must not raise


def test_gradients_reach_every_generator_weight_through_the_critic():
    G, D = MuseGenerator(**SMALL), MuseCritic(width=8)
    D(G(torch.randn(4, G.latent_dim))).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in G.parameters())


# ---- track-conditional: the harmoniser's G writes the other voices given a melody -----------------
COND = {**SMALL, "n_tracks": 3, "cond_width": 8}


def _melodies(n: int, seed: int = 0) -> torch.Tensor:
    """n one-note-a-step melodies (n, bars, steps, pitches) on random pitches."""
    gen = torch.Generator().manual_seed(seed)
    pitch = torch.randint(20, 40, (n, 4, 16), generator=gen)
    return torch.nn.functional.one_hot(pitch, 48).float()


def test_the_conditional_generator_writes_the_other_tracks_from_latents_and_a_melody():
    G = MuseGenerator(**COND).eval()
    assert G.latent_dim == (2 + 2 * 3) * 8 and isinstance(G.encoder, MelodyEncoder)
    y = G(torch.randn(2, G.latent_dim), _melodies(2))
    assert y.shape == (2, 3, 4, 16, 48) and y.min() > 0 and y.max() < 1
    with pytest.raises(ValueError, match="takes a melody"):
        G(torch.randn(2, G.latent_dim))
    with pytest.raises(ValueError, match="2 latents but 3 melodies"):
        G(torch.randn(2, G.latent_dim), _melodies(3))
    with pytest.raises(ValueError, match="takes no melody"):
        MuseGenerator(**SMALL)(torch.randn(1, 80), _melodies(1))
    with pytest.raises(ValueError, match="cond_width must be >= 0"):
        MuseGenerator(cond_width=-1)


def test_the_melody_reaches_every_written_track_bar_and_step():
    """Changing one step of the melody changes the written voices: the encoder feeds every
    resolution, so the step itself and (through the bar and phrase features) the other bars move."""
    torch.manual_seed(0)
    G = MuseGenerator(**COND).train()  # BatchNorm normalises each layer, as in training
    z, m = torch.randn(8, G.latent_dim), _melodies(8)
    m2 = m.clone()
    m2[:, 2, 5] = torch.roll(m2[:, 2, 5], 7, dims=-1)  # bar 3, step 6: another pitch
    with torch.no_grad():
        change = (G(z, m2) - G(z, m)).abs()  # (N, tracks, bars, steps, pitches)
    assert (change.flatten(2).amax(2) > 0).all()  # every track of every piece
    assert (change.amax((0, 1, 3, 4)) > 0).all()  # every bar, not only the one whose step changed
    assert (change[:, :, 2, 5].amax((1, 2)) > 0).all()  # and the step itself, in every piece


def test_the_unconditional_generator_keeps_its_weights_so_shipped_checkpoints_load():
    names = set(MuseGenerator().state_dict())
    assert not any(n.startswith("encoder.") for n in names)
    assert MuseGenerator().to_beats.weight.shape == (4, 4 * 32, 4 * 128)
    cond = MuseGenerator(n_tracks=3, cond_width=64)
    assert {n for n in cond.state_dict() if n.startswith("encoder.")}
    assert 0.8e6 < sum(p.numel() for p in cond.parameters()) < 1.5e6


def test_the_melody_encoder_gives_features_at_every_resolution():
    E = MelodyEncoder(width=8)
    steps, eighths, beats, per_bar = E(_melodies(3))
    assert steps.shape == (12, 16, 8) and eighths.shape == (12, 8, 8) and beats.shape == (12, 4, 8)
    assert per_bar.shape == (12, 16)  # the bar's own features beside the phrase's
    phrase = per_bar[:, 8:].reshape(3, 4, 8)
    assert torch.equal(phrase[:, 0], phrase[:, 3])  # one phrase vector per piece, in every bar
    with pytest.raises(ValueError, match="a melody must have shape"):
        E(torch.zeros(3, 64, 48))


def test_gradients_reach_the_melody_encoder_through_the_critic():
    G, D = MuseGenerator(**COND), MuseCritic(width=8)
    m = _melodies(4)
    D(torch.cat([m[:, None], G(torch.randn(4, G.latent_dim), m)], 1)).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in G.encoder.parameters())
