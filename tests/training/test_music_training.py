"""The music trainer on a few chorales the test writes (JSB's JSON layout): phrases on bar lines,
transposition, WGAN-GP steps, resume, in-run and offline evaluation, the exported card."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gandemo.checkpoint import load_checkpoint, read_card
from gandemo.nets.musegan import MuseGenerator
from gandemo.tasks import music
from training.cli import main
from training.loop import Amp
from training.music import (
    MusicTask,
    doubled,
    flat_rolls,
    frequency_baseline,
    key_agreement,
    load_chorales,
    mismatched,
    phrases,
    phrases_of,
    shift_range,
    to_rolls,
)
from training.run import parse_train_args

TINY = [
    *("--g-width", "8", "--d-width", "8", "--z-dim", "4", "--batch-size", "2", "--n-critic", "2"),
    *("--eval-n", "4", "--no-progress", "--threads", "1"),
]
# a I-IV-V-I progression in C, one chord a bar, SATB (MIDI pitches)
CHORDS = [(72, 67, 64, 48), (72, 69, 65, 53), (71, 67, 62, 43), (72, 67, 64, 48)]


def chorale(rng: np.random.Generator, bars: int, pickup: int) -> list[list[int]]:
    """`pickup` steps of the tonic, then `bars` bars of the progression (half notes and quarters),
    the whole piece in a random key, an occasional rest in the alto."""
    shift = int(rng.integers(-4, 5))
    steps = [list(CHORDS[0])] * pickup
    for b in range(bars):
        chord = CHORDS[b % len(CHORDS)]
        for s in range(16):
            voices = list(chord)
            if s >= 8 and rng.random() < 0.5:
                voices[0] += 2  # a passing note in the soprano's second half
            steps.append(voices)
    piece = [[p + shift for p in step] for step in steps]
    if rng.random() < 0.5:
        piece[pickup + 4][1] = -1  # a rest
    return piece


def write_chorales(folder: Path, counts=(6, 2, 2), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    data = {
        split: [chorale(rng, bars=int(rng.integers(4, 7)), pickup=int(rng.choice([0, 4]))) for _ in range(n)]
        for split, n in zip(("train", "valid", "test"), counts, strict=True)
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Jsb16thSeparated.json").write_text(json.dumps(data))
    return folder


@pytest.fixture
def chorales(tmp_path: Path) -> Path:
    return write_chorales(tmp_path / "music")


def run(data: Path, out: Path, *extra: str) -> int:
    return main(["music", "--data", str(data), "--out", str(out), *TINY, *extra])


def test_phrases_start_on_bar_lines_counted_back_from_the_end():
    piece = np.arange(4 + 5 * 16, dtype=np.int16)[:, None].repeat(4, 1)  # a pickup of 4, then 5 bars
    got = phrases([piece], hop_bars=1)
    assert got.shape == (2, 4, 64)
    assert got[:, 0, 0].tolist() == [4, 20]  # bar lines at 4, 20, 36, ...
    assert phrases([piece], hop_bars=4).shape[0] == 1
    assert phrases([piece[:60]]).shape[0] == 0  # shorter than 4 bars: no phrase


def test_loader_reads_the_three_splits_and_rests(chorales: Path):
    data = load_chorales(chorales)
    assert {k: len(v) for k, v in data.items()} == {"train": 6, "valid": 2, "test": 2}
    assert all(p.dtype == np.int16 and p.shape[1] == 4 for v in data.values() for p in v)
    assert load_chorales(chorales / "Jsb16thSeparated.json")["test"][0].tolist() == data["test"][0].tolist()
    with pytest.raises(FileNotFoundError, match="Jsb16thSeparated.json"):
        load_chorales(chorales / "nowhere")


def test_rolls_put_each_voice_on_its_pitch_and_rests_nowhere():
    phr = np.full((1, 4, 64), -1, np.int16)
    phr[0, 0, :] = 72
    phr[0, 3, 10:20] = 36
    rolls = to_rolls(phr)
    assert rolls.shape == (1, 4, 4, 16, 48)
    flat = rolls.flatten(2, 3)
    assert flat[0, 0, :, 72 - 36].all() and flat[0, 0].sum() == 64
    assert flat[0, 3, 10:20, 0].all() and flat[0, 3].sum() == 10 and flat[0, 1:3].sum() == 0
    up = to_rolls(phr, torch.tensor([5])).flatten(2, 3)
    assert up[0, 0, :, 77 - 36].all() and up[0, 3, 10:20, 5].all()
    with pytest.raises(ValueError, match="outside MIDI 36..83"):
        to_rolls(phr, torch.tensor([-1]))


def test_transpositions_stay_in_range_and_reach_every_key(chorales: Path, tmp_path: Path):
    phr = np.full((2, 4, 64), 60, np.int16)
    phr[0, 3] = 36  # the bass at the bottom of the range: can only go up
    lo, hi = shift_range(phr, 6)
    assert (lo.tolist(), hi.tolist()) == ([0, -6], [5, 5])
    args = parse_train_args(MusicTask, ["--data", str(chorales), "--out", str(tmp_path / "o"), *TINY])
    task = MusicTask(args, torch.device("cpu"))
    torch.manual_seed(0)
    seen = set()
    for _ in range(60):
        batch = task.next_batch()
        assert batch.shape == (2, 2, 4, 4, 16, 48)
        flat = batch.flatten(3, 4)
        assert set(flat.unique().tolist()) <= {0.0, 1.0} and (flat.sum(-1) <= 1).all()  # one note a voice
        lowest = flat[..., 3, :, :].nonzero()[:, -1].min()
        seen.add(int(lowest))
    assert len(seen) >= 8  # the bass's lowest note moves with the key


def test_gradient_penalty_is_zero_for_a_unit_slope_critic(chorales: Path, tmp_path: Path):
    args = parse_train_args(MusicTask, ["--data", str(chorales), "--out", str(tmp_path / "o"), *TINY])
    task = MusicTask(args, torch.device("cpu"))
    real, fake = torch.rand(3, 4, 4, 16, 48), torch.rand(3, 4, 4, 16, 48)
    n = real[0].numel()
    unit = lambda x: x.flatten(1).sum(1) / n**0.5  # noqa: E731  (gradient norm exactly 1)
    assert task.gradient_penalty(unit, real, fake).item() == pytest.approx(0, abs=1e-8)
    steep = lambda x: 3 * x.flatten(1).sum(1) / n**0.5  # noqa: E731
    assert task.gradient_penalty(steep, real, fake).item() == pytest.approx(4.0, rel=1e-5)


def test_the_critic_sees_probabilities_or_thresholded_notes_with_straight_through_gradients(
    chorales: Path, tmp_path: Path
):
    base = ["--data", str(chorales), "--out", str(tmp_path / "o"), *TINY]
    probs = torch.tensor([0.2, 0.5, 0.7], requires_grad=True)
    plain = MusicTask(parse_train_args(MusicTask, base), torch.device("cpu"))
    assert plain.critic_view(probs) is probs
    ste = MusicTask(parse_train_args(MusicTask, [*base, "--binary", "ste"]), torch.device("cpu"))
    seen = ste.critic_view(probs)
    assert seen.tolist() == [0.0, 1.0, 1.0]  # what the app plays
    (seen * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert probs.grad.tolist() == [1.0, 2.0, 3.0]  # the gradient passes straight through
    assert ste.hparams["critic_sees"].startswith("thresholded")


def test_two_steps_train_both_players_and_export_a_loadable_checkpoint(chorales: Path, tmp_path: Path):
    out = tmp_path / "run"
    assert run(chorales, out, "--steps", "2", "--sample-every", "1") == 0
    state = torch.load(out / "state.pt", weights_only=True)
    assert state["step"] == 2 and set(state["models"]) == {"G", "D"}
    header = (out / "log.csv").read_text().splitlines()[0].split(",")
    assert header == ["step", "seconds", "loss_d", "wasserstein", "gp", "loss_g"]
    ckpt = load_checkpoint(out / "checkpoint")
    G = ckpt["G"]
    assert isinstance(G, MuseGenerator) and not G.training and set(ckpt.modules) == {"G"}
    card = ckpt.card
    assert card["task"] == "music" and card["arch"]["G"]["kwargs"]["width"] == 8
    assert card["hyperparameters"]["n_critic"] == 2 and card["hyperparameters"]["gp_weight"] == 10
    data = load_chorales(chorales)
    assert card["data"]["items"] == len(phrases(data["train"]))
    assert "random transposition by -6..+5 semitones" in card["data"]["augmentation"]
    held = card["held_out_metrics"]
    test_phrases = phrases(data["test"], hop_bars=4)
    assert held["pieces"] == len(test_phrases) and held["split"] == "test"
    assert held["values"] == music.piece_metrics(flat_rolls(test_phrases))
    assert "WGAN-GP" in card["objective"] and "most probable pitch" in card["inference"]
    grid = Image.open(out / "checkpoint" / "samples.png")  # seeds 0-3 as 2 x 2 piano rolls
    one = music.piano_roll_image(np.zeros((4, 64, 48), bool))
    assert grid.size == (2 * one.width + 3 * 2, 2 * one.height + 3 * 2)
    assert (out / "samples" / "step_000002.png").is_file()
    assert music.render(G, music.latents(0, 1, G.latent_dim)).shape == (1, 4, 64, 48)


def test_training_changes_both_players_and_resume_continues_exactly(chorales: Path, tmp_path: Path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert run(chorales, straight, "--steps", "3") == 0
    assert run(chorales, split, "--steps", "1") == 0
    before = torch.load(split / "state.pt", weights_only=True)["models"]
    assert run(chorales, split, "--steps", "3", "--resume") == 0
    after = torch.load(split / "state.pt", weights_only=True)["models"]
    for net in ("G", "D"):
        assert any(not torch.equal(v, after[net][k]) for k, v in before[net].items() if v.is_floating_point())
    a = torch.load(straight / "state.pt", weights_only=True)["models"]
    for net in ("G", "D"):
        for k, v in a[net].items():
            assert torch.equal(v, after[net][k]), f"{net}.{k} differs after resume"


def test_in_run_evaluation_measures_the_metric_gap_and_keeps_the_best(chorales: Path, tmp_path: Path):
    out = tmp_path / "run"
    assert run(chorales, out, "--steps", "2", "--eval-every", "1", "--binary", "ste") == 0
    rows = list(csv.DictReader((out / "eval.csv").open()))
    assert [r["step"] for r in rows] == ["1", "2"]
    assert set(music.METRIC_LABELS) | {"metric_gap"} <= set(rows[0])
    assert all(float(r["metric_gap"]) >= 0 for r in rows)
    assert load_checkpoint(out / "best").card["training"]["steps"] in (1, 2)


def test_frequency_baseline_keeps_each_voices_pitches_and_nothing_else():
    phr = np.full((3, 4, 64), -1, np.int16)
    phr[:, 0, :] = 72
    phr[:, 2, :32] = 55
    base = frequency_baseline(phr, 50)
    assert base.shape == (50, 4, 64, 48)
    assert base[:, 0, :, 72 - 36].all() and base[:, 0].sum() == 50 * 64  # always on: frequency 1
    assert 0.3 < base[:, 2, :, 55 - 36].mean() < 0.7 and base[:, [1, 3]].sum() == 0


def test_evaluate_measures_model_baseline_training_and_held_out_phrases(chorales: Path, tmp_path: Path):
    assert run(chorales, tmp_path / "run", "--steps", "1") == 0
    folder, preview = tmp_path / "run" / "checkpoint", tmp_path / "preview.png"
    args = ["evaluate", "music", "--checkpoint", str(folder), "--data", str(chorales), "--n", "12"]
    assert main([*args, "--preview", str(preview), "--threads", "1"]) == 0
    m = read_card(folder)["metrics"]
    eight = {f"8 bars: {label}" for label in music.METRIC_LABELS.values()} | {"8 bars: key agreement of the two halves"}
    assert set(m) == {*music.METRIC_LABELS.values(), *music.HARMONY_LABELS.values(), "gap to held-out chorales", *eight}
    assert {"model", "held_out", "independent", "generated", "method"} == m["8 bars: empty bars"].keys()
    assert -1 <= m["8 bars: key agreement of the two halves"]["model"] <= 1
    assert m["8 bars: key agreement of the two halves"]["held_out"] is None  # these chorales are under 8 bars
    for label in music.METRIC_LABELS.values():
        assert {"model", "baseline", "real", "held_out", "generated", "method"} == m[label].keys()
        assert m[label]["generated"] == 12
    data = load_chorales(chorales)
    held = music.piece_metrics(flat_rolls(phrases(data["test"], hop_bars=4)))
    assert m["empty bars"]["held_out"] == pytest.approx(held["empty_bars"]["mean"], abs=1e-4)
    assert m["chords within a voice (polyphony)"]["held_out"] == 0  # each voice is one line
    assert m["chords within a voice (polyphony)"]["baseline"] > 0  # independent cells: chords happen
    assert m["gap to held-out chorales"]["held_out"] == 0
    assert m["gap to held-out chorales"]["baseline"] > m["gap to held-out chorales"]["real"]
    G = load_checkpoint(folder)["G"]  # the card still verifies; the model's numbers are its seeds 0..11
    made = music.piece_metrics(music.render(G, torch.cat([music.latents(s, 1, G.latent_dim) for s in range(12)])))
    want = made["qualified_notes"]["mean"]
    got = m["qualified notes (an eighth or longer)"]["model"]
    assert (np.isnan(want) and np.isnan(got)) or got == pytest.approx(want, abs=1e-4)
    img, cols = music.piano_roll_image(np.zeros((4, 64, 48), bool)), min(4, len(phrases(data["test"], hop_bars=4)))
    assert Image.open(preview).size == (cols * img.width + (cols + 1) * 2, 3 * img.height + 4 * 2)


# ---- --variant harmonize: the same loop and critic, G given the real soprano ---------------------
def test_the_harmoniser_trains_on_real_sopranos_and_exports_a_conditional_g(chorales: Path, tmp_path: Path):
    out = tmp_path / "harm"
    assert run(chorales, out, "--variant", "harmonize", "--cond-width", "4", "--steps", "2", "--eval-every", "2") == 0
    ckpt = load_checkpoint(out / "checkpoint")
    G, card = ckpt["G"], ckpt.card
    assert card["variant"] == "harmonize" and G.n_tracks == 3 and G.cond_width == 4
    assert card["hyperparameters"]["cond_width"] == 4 and "track-conditional" in card["objective"]
    assert "most probable pitch" in card["inference"]
    data = load_chorales(chorales)
    test, owner = phrases_of(data["test"], hop_bars=4)
    ref = card["harmony_reference"]
    assert ref["pieces"] == len(test) and set(ref) >= {"chorales", "mismatched", "doubled", "method"}
    assert ref["chorales"]["bass_consonance"] == pytest.approx(
        music.piece_harmony(flat_rolls(test))["bass_consonance"], abs=1e-4
    )
    assert ref["doubled"]["bass_consonance"] == 1.0 and ref["doubled"]["pitch_classes_together"] == 1.0
    rows = list(csv.DictReader((out / "eval.csv").open()))
    assert set(music.HARMONY_LABELS) | {"metric_gap"} <= set(rows[0])
    melody = flat_rolls(test[:2])[:, 0]
    rolls = music.render(G, music.latents(0, 2, G.latent_dim), melody)
    assert rolls.shape == (2, 4, 64, 48) and np.array_equal(rolls[:, 0], melody)  # the soprano as given
    grid = Image.open(out / "checkpoint" / "samples.png")  # validation sopranos harmonised, 2 x 2 (or fewer)
    assert grid.width > music.piano_roll_image(np.zeros((4, 64, 48), bool)).width


def test_the_harmonisers_step_gives_the_critic_real_sopranos_over_g_s_voices(chorales: Path, tmp_path: Path):
    base = ["--data", str(chorales), "--out", str(tmp_path / "o"), *TINY, "--variant", "harmonize", "--cond-width", "4"]
    task = MusicTask(parse_train_args(MusicTask, base), torch.device("cpu"))
    real = task.next_batch()[0]
    G = task.models["G"]
    fake = task.fake(G, torch.randn(len(real), G.latent_dim), real)
    assert fake.shape == real.shape and torch.equal(fake[:, 0], real[:, 0])
    assert not torch.equal(fake[:, 1:], real[:, 1:])
    z, melodies = next(iter(task.calibration_inputs()))  # BatchNorm re-estimated on latents with sopranos
    assert melodies.shape == (64, 4, 16, 48) and z.shape == (64, G.latent_dim)


def test_resuming_the_harmoniser_continues_exactly(chorales: Path, tmp_path: Path):
    args = ("--variant", "harmonize", "--cond-width", "4")
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert run(chorales, straight, *args, "--steps", "2") == 0
    assert run(chorales, split, *args, "--steps", "1") == 0
    assert run(chorales, split, *args, "--steps", "2", "--resume") == 0
    a = torch.load(straight / "state.pt", weights_only=True)["models"]
    b = torch.load(split / "state.pt", weights_only=True)["models"]
    for net in ("G", "D"):
        for k, v in a[net].items():
            assert torch.equal(v, b[net][k]), f"{net}.{k} differs after resume"


def test_evaluate_measures_the_harmoniser_against_the_chorales_the_floor_and_doubling(chorales: Path, tmp_path: Path):
    assert run(chorales, tmp_path / "run", "--variant", "harmonize", "--cond-width", "4", "--steps", "1") == 0
    folder, preview = tmp_path / "run" / "checkpoint", tmp_path / "preview.png"
    args = ["evaluate", "music", "--checkpoint", str(folder), "--data", str(chorales), "--draws", "2"]
    assert main([*args, "--preview", str(preview), "--threads", "1"]) == 0
    m = read_card(folder)["metrics"]
    data = load_chorales(chorales)
    test = phrases(data["test"], hop_bars=4)
    for label in music.HARMONY_LABELS.values():
        assert {"model", "one_draft", "held_out", "mismatched", "doubled", "generated", "drafts", "method"} == m[
            label
        ].keys()
        assert m[label]["generated"] == 2 * len(test) and m[label]["drafts"] == music.DRAFTS
    assert m["bass consonant with the melody"]["doubled"] == 1.0
    assert m["consecutive fifths or octaves (share of moves together)"]["doubled"] == 1.0
    assert m["harmony gap to held-out chorales"]["held_out"] == 0
    assert m["notes at once within a voice"]["model"] == 1.0  # one note at a time, by decoding
    assert Image.open(preview).height > 2 * music.piano_roll_image(np.zeros((4, 64, 48), bool)).height


def test_the_floor_pairs_each_soprano_with_another_chorales_voices_and_doubling_copies_it():
    phr = np.arange(5 * 4 * 64, dtype=np.int16).reshape(5, 4, 64) % 40 + 40
    owner = np.array([0, 0, 1, 1, 2])
    mis = mismatched(phr, owner)
    assert np.array_equal(mis[:, 0], phr[:, 0])
    for i in range(5):
        j = next(j for j in range(5) if np.array_equal(mis[i, 1:], phr[j, 1:]))
        assert owner[j] != owner[i]
    with pytest.raises(ValueError, match="every phrase is of one chorale"):
        mismatched(phr, np.zeros(5, int))
    d = doubled(phr)
    assert np.array_equal(d[:, 1], phr[:, 0] - 12) and np.array_equal(d[:, 3], phr[:, 0] - 24)


def test_key_agreement_is_high_for_one_key_and_low_for_unrelated_ones():
    one_key = np.zeros((1, 4, 128, 48), bool)
    one_key[0, 0, :64, [24, 28, 31]] = True  # C E G, then the same notes an octave up
    one_key[0, 0, 64:, [36, 40, 43]] = True
    assert key_agreement(one_key) == pytest.approx(1.0)
    far = np.zeros((1, 4, 128, 48), bool)
    far[0, 0, :64, [24, 28, 31]] = True  # C major triad, then F# major (no common note)
    far[0, 0, 64:, [30, 34, 37]] = True
    assert key_agreement(far) < 0


def test_the_voice_leading_penalty_counts_consecutive_perfects_exactly_on_real_notes(chorales: Path):
    from gandemo import metrics
    from training.music import consecutive_perfects

    data = load_chorales(chorales)
    phr = phrases(data["train"])[:4].copy()
    steps = np.arange(64) // 4 % 2  # every beat up or down a tone
    phr[1, 0], phr[1, 3] = 67 + 2 * steps, 60 + 2 * steps  # soprano and bass in parallel fifths
    phr[2, 1], phr[2, 2] = 72 + 2 * steps, 60 - 10 * steps  # alto and tenor: octave to octave, contrary motion
    real = to_rolls(phr)
    lines = metrics.voice_lines(real.flatten(2, 3).numpy().astype(bool), music.LOWEST_PITCH)
    bad, _ = metrics.parallel_moves(lines)
    assert bad[1] >= 15 and bad[2] >= 15
    assert consecutive_perfects(real).tolist() == pytest.approx(bad.tolist())  # one note a voice: exact
    # resting (every probability 0.05: each voice counts half, scaled up to a sum of 0.1) does not
    # escape the count: at least a quarter of each pair's faults remains (held notes even count as moves)
    quiet = consecutive_perfects(real * 0.05)
    assert (quiet >= 0.25 * torch.tensor(bad, dtype=torch.float)).all() and quiet.sum() > 0.25 * bad.sum()
    probs = (0.3 * real + 0.35).requires_grad_(True)  # blurred notes: a smooth number with a gradient
    consecutive_perfects(probs).sum().backward()
    assert probs.grad.abs().sum() > 0


def test_the_harmonisers_preset_penalises_voice_leading_and_the_composers_does_not(chorales: Path, tmp_path: Path):
    base = ["--data", str(chorales), "--out", str(tmp_path / "o"), *TINY]
    harm = MusicTask(parse_train_args(MusicTask, [*base, "--variant", "harmonize"]), torch.device("cpu"))
    comp = MusicTask(parse_train_args(MusicTask, base), torch.device("cpu"))
    assert harm.voice_leading == 0.5 and harm.hparams["voice_leading"] == 0.5
    assert comp.voice_leading == 0.0 and "voice_leading" not in comp.hparams
    losses = harm.train_step(harm.next_batch(), Amp(torch.device("cpu"), enabled=False))
    assert set(losses) == {"loss_d", "wasserstein", "gp", "perfects", "loss_g"}
    # the weight: none for the first quarter of the run, then rising to full at half of it
    harm.total_steps = 100
    weights = {}
    for done in (0, 25, 30, 50, 99):
        harm.steps_done = done
        weights[done] = harm.voice_leading_weight()
    assert weights == {0: 0.0, 25: 0.0, 30: pytest.approx(0.1), 50: 0.5, 99: 0.5}
    assert harm.extra_state()["steps_done"] == 99  # resumed runs keep their place on the ramp
    harm.load_extra_state({"sampler": harm.sampler.state_dict()})
    assert harm.steps_done == 0
