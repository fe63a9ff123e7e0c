"""One resolved configuration per run: saved with the state, shown in the card, checked on --resume (a
changed option stops it, naming the option with its saved and new value, unless --override lets it
through and records it); a state saved before configurations were (only its preset recorded) resumes."""

from pathlib import Path

import pytest
import torch

from gandemo.checkpoint import load_checkpoint
from tests.training.test_faces_training import run, state
from training.faces import FacesTask
from training.run import RESUME_FREE, option_names, parse_train_args, resolved_config


def test_the_resolved_configuration_is_saved_and_shown_in_the_card(image_folder: Path, tmp_path: Path):
    out = tmp_path / "run"
    assert run(image_folder, out, "--steps", "1") == 0
    config = state(out)["config"]
    # preset values, options given and defaults alike, as plain values
    assert config["preset"] == "cpu" and config["ngf"] == 8 and config["batch_size"] == 8
    assert config["lr"] == FacesTask.presets["cpu"]["lr"] and config["seed"] == 0 and config["betas"] == [0.5, 0.999]
    assert str(tmp_path) not in str(config)  # paths as the card writes them, not where this machine keeps them
    assert not {"out", "resume", "export", "export_only", "override"} & set(config)
    assert load_checkpoint(out / "checkpoint").card["training"]["config"] == config


def test_a_resume_with_a_changed_option_stops_naming_it_and_override_lets_it_through(
    image_folder: Path, tmp_path: Path
):
    out = tmp_path / "run"
    assert run(image_folder, out, "--steps", "1") == 0
    with pytest.raises(SystemExit, match=r"--lr: saved 0.0002, now 0.001(.|\n)*--override lr"):
        run(image_folder, out, "--steps", "2", "--resume", "--lr", "1e-3")
    with pytest.raises(SystemExit, match="--preset: saved 'cpu', now 'v3'"):
        run(image_folder, out, "--steps", "2", "--resume", "--preset", "v3")
    assert state(out)["step"] == 1  # nothing trained, nothing saved
    # options free to change on resume: how long, how often, threads, precision, the bar
    assert {"steps", "threads", "amp", "progress"} <= RESUME_FREE
    assert run(image_folder, out, "--steps", "2", "--resume", "--amp", "off", "--save-every", "60") == 0
    assert run(image_folder, out, "--steps", "3", "--resume", "--lr", "1e-3", "--override", "lr") == 0
    s = state(out)
    assert s["step"] == 3 and s["config"]["lr"] == 1e-3
    sessions = load_checkpoint(out / "checkpoint").card["training"]["sessions"]
    assert sessions[1]["changed"] == {"amp": ["auto", "off"], "save_every": [180.0, 60.0], "steps": [1, 2]}
    assert sessions[2]["changed"] == {
        "lr": [2e-4, 1e-3],
        "steps": [2, 3],
        "amp": ["off", "auto"],
        "save_every": [60.0, 180.0],
    }


def test_an_old_state_without_a_configuration_resumes_and_only_its_preset_is_checked(
    image_folder: Path, tmp_path: Path
):
    """A run state written before configurations were saved (runs/faces-v3 and runs/edges2photo-v2 were):
    made here with today's code, less the new key."""
    out = tmp_path / "run"
    assert run(image_folder, out, "--steps", "1") == 0
    old = state(out)
    del old["config"]
    torch.save(old, out / "state.pt")
    with pytest.raises(SystemExit, match="--preset: saved 'cpu', now 'v3'"):
        run(image_folder, out, "--steps", "2", "--resume", "--preset", "v3", "--ngf", "8", "--ndf", "8")
    assert run(image_folder, out, "--steps", "2", "--resume") == 0
    s = state(out)
    assert s["step"] == 2 and s["config"]["preset"] == "cpu" and s["config"]["ngf"] == 8  # recorded from now on
    # --export-only of an old state, into a folder of its own: the run folder's state is left as it was
    old = state(out)
    del old["config"]
    torch.save(old, out / "state.pt")
    before = (out / "state.pt").read_bytes()
    assert run(image_folder, out, "--export-only", "--export", str(tmp_path / "exported")) == 0
    assert load_checkpoint(tmp_path / "exported").card["training"]["steps"] == 2
    assert (out / "state.pt").read_bytes() == before


def test_the_configuration_of_a_command_line():
    args = parse_train_args(FacesTask, ["--data", "d", "--out", "o", "--preset", "v3", "--override", "lr,batch-size"])
    assert args.override == ["lr", "batch_size"] and option_names("--ema-decay") == ["ema_decay"]
    config = resolved_config(args)
    assert config["preset"] == "v3" and config["steps"] == FacesTask.presets["v3"]["steps"]
    assert config["data"] == "d" and "override" not in config
