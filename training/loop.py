"""The one training loop every task runs.

A task (a `training.task.TrainTask` subclass) supplies its data, models, optimisers and one
`train_step`; the loop owns the rest: the device's fast numeric path (`Amp`), the EMA copy and
its BatchNorm recalibration, tqdm progress, a CSV log, periodic sample grids, in-run evaluations
with the best step kept, atomic run-state saves, `--resume`, a stop with the step number on a
NaN/inf loss, and the export of a checkpoint folder with its card.

Run folder (`--out`, kept out of git):
    state.pt            everything needed to continue exactly (models, optimisers, EMA, RNGs, data order)
    log.csv             step, seconds, losses
    samples/step_NNNNNN.png
    eval.csv            step, metrics of each in-run evaluation (--eval-every)
    best/               the checkpoint of the best evaluated step (the task's eval_key, lower is better)
    checkpoint/         the exported checkpoint (copy it to assets/checkpoints/<task>/<variant>/)
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
import math
import os
import signal
import subprocess
import sys
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn.utils.parametrizations import _SpectralNorm
from tqdm import tqdm

from gandemo.checkpoint import arch_entry, save_checkpoint
from training import distributed, inception
from training.task import TrainTask, portable_card

STATE = "state.pt"
CURVE = "training_curve.png"  # the in-run evaluations, plotted into the exported checkpoint


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the last saved state is kept untouched."""


@dataclass
class RunConfig:
    out: Path
    steps: int
    preset: str
    device: torch.device
    resume: bool = False
    seed: int = 0
    amp: bool = False
    save_every_s: float = 180.0
    sample_every: int = 250
    log_every: int = 10
    # pix2pix's schedule: the base learning rate until this fraction of `steps`, then linearly
    # down to 0 at the last step (None: constant)
    lr_decay_start: float | None = None
    eval_every: int = 0  # steps between the task's in-run evaluations (0: never)
    progress: bool = True
    command: str = ""
    # the run's resolved configuration (training.run.resolved_config): saved with the state, checked on
    # resume, shown in the card; `overrides` may differ from the saved one (--override), `resume_free` always
    config: dict[str, Any] = field(default_factory=dict)
    overrides: tuple[str, ...] = ()
    resume_free: frozenset[str] = frozenset()


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), read from /proc/cpuinfo.

    Elsewhere (e.g. the AVX2-only AMD EPYC these sessions also get) oneDNN emulates bf16 and a
    DCGAN step measured 30-50x slower than fp32, so bf16 must never be switched on blindly."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


class Amp:
    """The fast numeric path for the device, chosen once so task code is written once.

    - CUDA: bf16 autocast if the GPU computes bf16 natively, else fp16 with gradient scalers
      (one per optimiser, `scaler_for`).
    - CPU with AVX512-BF16/AMX: bf16 autocast (oneDNN runs AMX kernels for the convolutions).
    - other CPUs: fp32 (bf16 is emulated there and far slower).
    Everywhere: channels_last for 4-D tensors (oneDNN/cuDNN's fast layout). Losses are computed
    in fp32 (`amp.fp32(logits)`); BatchNorm keeps fp32 running statistics under autocast, and
    spectral norm's power iteration runs in fp32 (`fp32_spectral_norm`).
    On CUDA also: cuDNN's autotuner (`cudnn.benchmark`: the shapes of a run never change), TF32
    for what stays in fp32 when autocast is on (and off with --amp off, so that fp32 is fp32, as
    the card says), and batches copied from pinned memory without blocking the CPU."""

    def __init__(self, device: torch.device, enabled: bool, channels_last: bool = True) -> None:
        self.device = device
        if not enabled:
            self.dtype = None
        elif device.type == "cuda":
            # not an emulated bf16 (pre-Ampere GPUs): fp16 with a scaler is the fast path there
            native_bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
            self.dtype = torch.bfloat16 if native_bf16 else torch.float16
        else:
            self.dtype = torch.bfloat16 if cpu_has_fast_bf16() else None
        self.enabled = self.dtype is not None
        self.channels_last = channels_last
        self.scale = self.dtype == torch.float16  # bf16 has fp32's range: no scaling
        self._scalers: dict[torch.optim.Optimizer, torch.amp.GradScaler] = {}
        self.tf32 = device.type == "cuda" and self.enabled
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            # set both ways: cuDNN's own default is TF32 on, and an earlier run of `all` may have set it
            torch.backends.cuda.matmul.allow_tf32 = self.tf32
            torch.backends.cudnn.allow_tf32 = self.tf32

    @property
    def description(self) -> str:
        precision = {None: "fp32", torch.bfloat16: "bf16 autocast", torch.float16: "fp16 autocast"}[self.dtype]
        return precision + (" + TF32" if self.tf32 else "") + (" + channels_last" if self.channels_last else "")

    def autocast(self) -> AbstractContextManager:
        return torch.autocast(self.device.type, dtype=self.dtype or torch.float32, enabled=self.enabled)

    def full_precision(self) -> AbstractContextManager:
        """Inside `autocast()`, a part that must run in fp32 (a gradient penalty's double backward)."""
        return torch.autocast(self.device.type, enabled=False)

    def prepare(self, module: nn.Module) -> nn.Module:
        """Move a model to the device in the fast memory layout, its spectral norms in fp32."""
        fp32_spectral_norm(module)
        module = module.to(self.device)
        return module.to(memory_format=torch.channels_last) if self.channels_last else module

    def batch(self, x: torch.Tensor) -> torch.Tensor:
        """Move a batch to the device in the fast memory layout."""
        if self.device.type == "cuda" and x.device.type == "cpu":
            x = x.pin_memory()  # a copy from pinned memory runs alongside the CPU, not before it
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x

    @staticmethod
    def fp32(x: torch.Tensor) -> torch.Tensor:
        return x.float()

    def scaler_for(self, optimizer: torch.optim.Optimizer) -> torch.amp.GradScaler:
        """The gradient scaler of `optimizer` (disabled unless fp16). One per optimiser: a scaler shared
        by a GAN's players was updated after each player's step, twice per step, so one player's
        overflow cut the other's scale and the scale grew at twice the intended pace; and the
        critic's several steps per step (music) each need their own update."""
        if optimizer not in self._scalers:
            self._scalers[optimizer] = torch.amp.GradScaler(self.device.type, enabled=self.scale)
        return self._scalers[optimizer]

    def scaler_states(self, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, dict[str, Any]]:
        return {k: self.scaler_for(o).state_dict() for k, o in optimizers.items()}

    def load_scaler_states(self, optimizers: dict[str, torch.optim.Optimizer], state: dict[str, Any]) -> None:
        """The scalers of a run state. A state saved before one scaler per optimiser holds one
        "scaler", which every optimiser's scaler starts from. An empty one (saved by a bf16 or fp32
        run, resumed where fp16 is used) leaves a fresh scaler: GradScaler refuses to load it."""
        saved = state.get("scalers") or {}
        for k, o in optimizers.items():
            one = saved.get(k, state.get("scaler") or {})
            if one:
                self.scaler_for(o).load_state_dict(one)

    def step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """zero_grad, backward (scaled if needed), optimiser step."""
        scaler = self.scaler_for(optimizer)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()


class _Fp32SpectralNorm(_SpectralNorm):
    """Spectral norm with its power iteration and sigma in fp32 under autocast. CUDA autocast runs
    torch.mv in fp16/bf16: sigma, and the u and v every later step starts from, would be rounded,
    and sigma's torch.vdot would get two dtypes. The layer then casts W / sigma as it casts W."""

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        with torch.autocast(weight.device.type, enabled=False):
            return super().forward(weight.float()).to(weight.dtype)


def fp32_spectral_norm(module: nn.Module) -> int:
    """Make every spectral norm (torch.nn.utils.parametrizations.spectral_norm) in `module` compute
    in fp32 under autocast; its state_dict, hence checkpoints, are unchanged. Returns how many."""
    count = 0
    for m in module.modules():
        if type(m) is _SpectralNorm:
            m.__class__ = _Fp32SpectralNorm
            count += 1
    return count


class EMA:
    """Exponential moving average of a model's parameters (buffers are copied as they are).

    `decay` is the per-step decay once warmed up. Early on the averaging window is shorter
    (StyleGAN2-ADA's ramp): the half-life in steps is min(half-life of `decay`, `rampup` x steps
    so far), so the average is never dominated by the random initialisation."""

    def __init__(self, model: nn.Module, decay: float, rampup: float = 0.05) -> None:
        self.decay = decay
        self.rampup = rampup
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.updates = 0

    def current_decay(self) -> float:
        halflife = math.log(0.5) / math.log(self.decay)
        if self.rampup:
            halflife = min(halflife, self.rampup * self.updates)
        return 0.5 ** (1 / halflife) if halflife > 0 else 0.0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = self.current_decay()
        for ema_p, p in zip(self.model.parameters(), model.parameters(), strict=True):
            ema_p.lerp_(p.detach(), 1 - d)
        for ema_b, b in zip(self.model.buffers(), model.buffers(), strict=True):
            ema_b.copy_(b)

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "updates": self.updates, "decay": self.decay}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.updates = int(state["updates"])


def git_commit() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


class Trainer:
    """Runs a `TrainTask` under a `RunConfig`: `train()` then `export()`."""

    def __init__(self, task: TrainTask, cfg: RunConfig) -> None:
        self.task, self.cfg = task, cfg
        self.amp = Amp(cfg.device, cfg.amp)
        for m in task.models.values():
            self.amp.prepare(m)  # in place: the optimisers keep their parameters
        # several processes (torchrun): DDP, global BatchNorm, rank 0 alone writes
        self.replica = distributed.Replica(task, cfg.device) if distributed.is_distributed() else None
        self.main = distributed.is_main()
        self.ema = EMA(task.models[task.ema_of], task.ema_decay, task.ema_rampup) if task.ema_of else None
        self.step = 0
        self.elapsed = 0.0  # training seconds over all sessions of this run
        # one entry per process that trained this run (a resume starts a new one): steps, threads
        self.sessions: list[dict[str, Any]] = []
        self.evaluations: list[dict[str, Any]] = []  # {"step": n, <metric>: value, ...}
        self.out = Path(cfg.out)
        self.state_path = self.out / STATE
        self._stop_signal: int | None = None
        self._requested: int | None = None  # a signal not yet agreed on by every process (DDP)
        # the run's configuration: this command's, checked against a saved one (a Trainer built without one,
        # as tests build it, has its preset)
        self.config = dict(cfg.config) or {"preset": cfg.preset}
        self.changes: dict[str, list[Any]] = {}  # option -> [saved, now] where a resume changed it

    # ---- state -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "task": self.task.name,
            "step": self.step,
            "elapsed": self.elapsed,
            "preset": self.cfg.preset,
            "config": self.config,
            "models": {k: m.state_dict() for k, m in self.task.models.items()},
            "optimizers": {k: o.state_dict() for k, o in self.task.optimizers.items()},
            "ema": self.ema.state_dict() if self.ema else None,
            "scalers": self.amp.scaler_states(self.task.optimizers),
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "task_state": self.task.extra_state(),
            "sessions": self.sessions,
            "evaluations": self.evaluations,
        } | (
            # the generator of the GPU this process trains on (each DDP process has its own GPU,
            # whose generator rank 0's get_rng_state_all does not see move)
            {"rng_device": torch.cuda.get_rng_state(self.cfg.device)} if self.cfg.device.type == "cuda" else {}
        )

    def save_state(self) -> None:
        """Write state.pt atomically: a kill mid-write leaves the previous state intact. Rank 0
        alone writes (every process holds the same state)."""
        if not self.main:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".pt.tmp")
        torch.save(self.state_dict(), tmp)
        os.replace(tmp, self.state_path)

    def load_state(self) -> None:
        # onto the CPU: a state holds CPU tensors (the sampler's generator, the RNG states) that must
        # come back there, whatever device the run trained on; load_state_dict puts weights and
        # optimiser states on the device of the parameters they belong to
        state = torch.load(self.state_path, map_location="cpu", weights_only=True)
        if state["task"] != self.task.name:
            raise SystemExit(f"{self.state_path} belongs to task {state['task']!r}, not {self.task.name!r}")
        self.check_config(state)
        for k, m in self.task.models.items():
            m.load_state_dict(state["models"][k])
        for k, o in self.task.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        if self.ema and state["ema"]:
            self.ema.load_state_dict(state["ema"])
        self.amp.load_scaler_states(self.task.optimizers, state)
        torch.set_rng_state(state["rng_cpu"].cpu())
        if state["rng_cuda"] and torch.cuda.is_available():
            # as many as there are GPUs now: a run saved where more were visible (another machine,
            # CUDA_VISIBLE_DEVICES) continues on fewer, and set_rng_state_all fails past the last one
            torch.cuda.set_rng_state_all([s.cpu() for s in state["rng_cuda"][: torch.cuda.device_count()]])
        if self.replica and "rng_device" in state and self.cfg.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng_device"].cpu(), self.cfg.device)
        self.task.load_extra_state(state["task_state"])
        self.step, self.elapsed = int(state["step"]), float(state["elapsed"])
        self.sessions = list(state.get("sessions", []))
        self.evaluations = list(state.get("evaluations", []))

    def check_config(self, state: dict[str, Any]) -> None:
        """Stop a resume whose command changes the run's saved configuration, naming each option with its
        saved and new value, unless the option is free to change (`cfg.resume_free`) or was let through
        with --override; what did change is kept in `self.changes` (recorded in the session). A state
        written before configurations were saved recorded only its preset: that alone is checked, and this
        command's configuration is saved from now on."""
        saved = state.get("config") or {"preset": state.get("preset", self.cfg.preset)}
        changes = config_changes(saved, self.config)
        refused = {k: v for k, v in changes.items() if k not in self.cfg.resume_free and k not in self.cfg.overrides}
        if refused:
            lines = "\n".join(
                f"  --{k.replace('_', '-')}: saved {old!r}, now {new!r}" for k, (old, new) in refused.items()
            )
            raise SystemExit(
                f"{self.state_path} was trained with another configuration:\n{lines}\n"
                f"give the run's own values to continue it, or --override {','.join(refused)} to change them "
                "(recorded in the run's sessions and card)"
            )
        self.changes = {k: [old, new] for k, (old, new) in changes.items()}

    def prepare(self) -> None:
        """Resume if asked; refuse to silently overwrite an existing run."""
        if self.state_path.exists():
            if not self.cfg.resume:
                raise SystemExit(
                    f"{self.out} already holds a run ({STATE}); pass --resume to continue it, or choose another --out"
                )
            self.load_state()
            self._print(f"resumed {self.task.name} from step {self.step} ({self.elapsed / 60:.1f} min trained)")
        elif self.cfg.resume:
            self._print(f"nothing to resume in {self.out}; starting at step 0")
        distributed.same_everywhere(self.step, f"the step {self.out} resumes from")

    # ---- the loop ----------------------------------------------------------------------------
    def train(self) -> None:
        self.prepare()
        if self.main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "samples").mkdir(exist_ok=True)
        old_handler = signal.signal(signal.SIGTERM, self._on_signal)
        # several processes must stop at the same step: Ctrl-C (which reaches every process) then
        # finishes the step like SIGTERM, and `Replica.average` spreads the request
        old_int = signal.signal(signal.SIGINT, self._on_signal) if self.replica else None
        session = {
            "from_step": self.step,
            "to_step": self.step,
            "seconds": 0.0,
            "threads": torch.get_num_threads(),
            "commit": git_commit(),
            "command": self.cfg.command,
            "device": str(self.cfg.device),
            "precision": self.amp.description,
        } | ({"processes": self.replica.world, "parallel": self.replica.description} if self.replica else {})
        if self.changes:  # what this resume changed of the saved configuration: [saved, now]
            session["changed"] = self.changes
        self.sessions.append(session)
        session_start = self.elapsed
        last_save = time.monotonic()
        log = open(self.out / "log.csv", "a", newline="") if self.main else None  # noqa: SIM115 - closed in finally
        writer: csv.writer | None = None
        bar = tqdm(
            total=self.cfg.steps,
            initial=self.step,
            desc=self.task.name,
            disable=not self.cfg.progress or not self.main,
            dynamic_ncols=True,
        )
        try:
            for m in self.task.models.values():
                m.train()
            while self.step < self.cfg.steps and self._stop_signal is None:
                t0 = time.perf_counter()
                values = self.train_step()
                bad = {k: v for k, v in values.items() if not math.isfinite(v)}
                if bad:
                    raise TrainingDiverged(
                        f"{self.task.name}: {', '.join(f'{k}={v}' for k, v in bad.items())} at step "
                        f"{self.step + 1}; stopped without saving. The last good state "
                        f"({self.state_path}) is untouched: lower the learning rate or resume from it."
                    )
                if self.ema:
                    self.ema.update(self.task.models[self.task.ema_of])
                self.step += 1
                self.elapsed += time.perf_counter() - t0
                session.update(to_step=self.step, seconds=round(self.elapsed - session_start, 1))
                bar.update(1)
                if self.main and (self.step % self.cfg.log_every == 0 or self.step == self.cfg.steps):
                    bar.set_postfix({k: f"{v:.3f}" for k, v in values.items()}, refresh=False)
                    if writer is None:
                        writer = csv.writer(log)
                        if log.tell() == 0:
                            writer.writerow(["step", "seconds", *values])
                    writer.writerow([self.step, f"{self.elapsed:.1f}", *(f"{v:.5f}" for v in values.values())])
                    log.flush()
                if not self.main:
                    continue  # rank 0 alone samples, evaluates and saves; the others wait at the next step
                if self.step % self.cfg.sample_every == 0:
                    self.write_samples()
                if self.cfg.eval_every and self.step % self.cfg.eval_every == 0:
                    t_eval = time.perf_counter()
                    self.evaluate()
                    bar.write(f"step {self.step}: {self.evaluations[-1]} ({time.perf_counter() - t_eval:.0f} s)")
                    self.save_state()
                    last_save = time.monotonic()
                if time.monotonic() - last_save >= self.cfg.save_every_s:
                    self.save_state()
                    last_save = time.monotonic()
        except KeyboardInterrupt:
            self._stop_signal = signal.SIGINT
        finally:
            bar.close()
            if log is not None:
                log.close()
            signal.signal(signal.SIGTERM, old_handler)
            if old_int is not None:
                signal.signal(signal.SIGINT, old_int)
        self.save_state()
        if self._stop_signal is not None:
            self._print(f"stopped at step {self.step}; state saved, continue with --resume")

    def train_step(self) -> dict[str, float]:
        """One step: the task's next batch (this process's slice of it under DDP) on the device,
        the task's step, and its losses as numbers (under DDP the means over every process, and a
        stop requested of any process stops them all)."""
        if self.cfg.lr_decay_start is not None:
            factor = lr_factor(self.step, self.cfg.steps, self.cfg.lr_decay_start)
            set_lr_factor(self.task.optimizers.values(), factor)
        batch = self.task.next_batch()
        if self.replica:
            batch = self.replica.shard(batch)
        if isinstance(batch, torch.Tensor):
            batch = self.amp.batch(batch)
        if not self.replica:
            losses = self.task.train_step(batch, self.amp)
            return {k: float(v) for k, v in losses.items()}
        with self.replica.step():
            losses = self.task.train_step(batch, self.amp)
        means, stop = self.replica.average([float(v) for v in losses.values()], self._requested is not None)
        if stop:  # every process leaves after this same step
            self._stop_signal = self._requested or signal.SIGTERM
        return dict(zip(losses, means, strict=True))

    def _on_signal(self, signum: int, frame: Any) -> None:
        # finish the current step, save, then leave the loop; with several processes, after the
        # step at which they all learn of it (a signal reaches them at slightly different times)
        if self.replica:
            self._requested = signum
        else:
            self._stop_signal = signum

    @property
    def finished(self) -> bool:
        return self.step >= self.cfg.steps and self._stop_signal is None

    def inference_models(self) -> dict[str, nn.Module]:
        """The models as the app will use them: the EMA copy in place of its model, with BatchNorm
        statistics re-estimated for the averaged weights. Called once per sample grid, evaluation
        or export, whose parts then share the result."""
        models = dict(self.task.models)
        if self.ema:
            ema = self.ema.model
            if has_batchnorm(ema):
                ema = recalibrate_batchnorm(ema, self.task.calibration_inputs(), self.cfg.device)
            models[self.task.ema_of] = ema
        return models

    def evaluate(self) -> dict[str, Any]:
        """Measure the current models (the task's `evaluate`), log it to eval.csv, and export
        this step to <out>/best when it beats every earlier evaluation on `eval_key`."""
        models = self.inference_models()
        for m in models.values():
            m.eval()
        try:
            # the FID network on this run's device: on a GPU run, not on one CPU thread of rank 0
            with inception.running_on(self.cfg.device):
                result = {"step": self.step, **self.task.evaluate(models)}
        finally:
            for m in self.task.models.values():
                m.train()
        result["seconds"] = round(self.elapsed, 1)
        key = self.task.eval_key
        earlier = [e[key] for e in self.evaluations if key in e]
        self.evaluations.append(result)
        path = self.out / "eval.csv"
        new = not path.exists()
        with open(path, "a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(list(result))
            w.writerow(list(result.values()))
        if key and key in result and (not earlier or result[key] < min(earlier)):
            self.export(self.out / "best", models)
        return result

    def write_samples(self) -> Path:
        path = self.out / "samples" / f"step_{self.step:06d}.png"
        self.task.sample_grid(self.inference_models()).save(path)
        return path

    # ---- export ------------------------------------------------------------------------------
    def export(self, folder: Path | None = None, models: dict[str, nn.Module] | None = None) -> Path:
        """Write the checkpoint folder (default: <out>/checkpoint) with its card."""
        folder = folder or self.out / "checkpoint"
        models = models or self.inference_models()
        samples = self.task.sample_grid(models)
        # copies: a task's export_modules moves what it gets to the CPU (.cpu() is in place), which took
        # the live models, and the EMA model the next step updates, off the GPU in the middle of a run
        exported = self.task.export_modules({k: copy.deepcopy(distributed.unwrap(m)) for k, m in models.items()})
        card = {
            "task": self.task.name,
            "variant": self.task.variant,
            "arch": {k: arch_entry(m, kw) for k, (m, kw) in exported.items()},
            **self.task.card_fields(),
            "training": {
                "steps": self.step,
                "wall_time_s": round(self.elapsed, 1),
                "preset": self.cfg.preset,
                "device": str(self.cfg.device),
                "sessions": self.sessions,
                "amp": self.amp.enabled,
                "precision": self.amp.description,
                "evaluations": self.evaluations,
                "ema_decay": self.ema.decay if self.ema else None,
                "lr_decay_start": self.cfg.lr_decay_start,
                "seed": self.cfg.seed,
                # every option's value (preset + options + defaults); a resume's changes are in "sessions"
                "config": self.config,
                # the code and command that started the run (each resume is in "sessions")
                "commit": self.sessions[0]["commit"] if self.sessions else git_commit(),
                "command": self.sessions[0]["command"] if self.sessions else self.cfg.command,
                "torch": torch.__version__,
                "exported": {
                    "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "commit": git_commit(),
                    "command": self.cfg.command,
                },
            },
            "metrics": {},
        }
        # where the data and the run were, relative to the data root and the repository: a card says
        # where things came from, not where one machine kept them (a state saved by older code may
        # still hold absolute paths in its commands)
        card = portable_card(card)
        pictures = {}
        key = self.task.eval_key
        if key and sum(key in e for e in self.evaluations) >= 2:
            pictures[CURVE] = plot_evaluations(self.evaluations, key, self.task.name)
        save_checkpoint(folder, {k: m for k, (m, _) in exported.items()}, card, samples=samples, pictures=pictures)
        self._print(f"exported {self.task.name} at step {self.step} to {folder}")
        return folder

    def _print(self, msg: str) -> None:
        if self.main:
            print(msg, file=sys.stderr, flush=True)


def plot_evaluations(
    evaluations: list[dict[str, Any]], key: str, title: str, references: dict[str, float] | None = None
) -> Image.Image:
    """`key` against training steps (and hours on the top axis), as a small PNG for the card;
    `references` (label -> value, e.g. a baseline and the real-data floor) are dashed lines."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [e for e in evaluations if key in e]
    steps = [e["step"] for e in rows]
    values = [e[key] for e in rows]
    fig = Figure(figsize=(6, 3.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(steps, values, "o-", color="tab:blue", label="this run")
    for (label, value), color in zip((references or {}).items(), ("tab:red", "tab:green", "tab:gray"), strict=False):
        ax.axhline(value, ls="--", lw=1, color=color, label=f"{label}: {value:g}")
    best = min(range(len(values)), key=values.__getitem__)
    ha = "right" if best == len(values) - 1 and len(values) > 1 else "center"
    ax.annotate(
        f"best {values[best]:g} at step {steps[best]:,}",
        (steps[best], values[best]),
        textcoords="offset points",
        xytext=(0, -16),  # below the point: the best is the lowest, so the curve never crosses the label
        ha=ha,
        fontsize=9,
    )
    ax.margins(y=0.2)  # room below the lowest point for its label
    ax.set_xlabel("training step")
    ax.set_ylabel(f"{key} (lower is better)")
    ax.set_title(f"{title}: {key} measured during training", fontsize=10)
    ax.grid(alpha=0.3)
    if references:
        ax.legend(fontsize=8, loc="upper right")
    secs = [e.get("seconds") for e in rows]
    if None not in secs and all(a < b for a, b in zip(secs, secs[1:], strict=False)):
        # Step 0 is hour 0 (seconds count from the run's start); beyond the last row the last rate goes
        # on. np.interp alone would clamp at the ends and pile several hour ticks onto one place.
        at_steps, hours = list(steps), [e["seconds"] / 3600 for e in rows]
        if at_steps[0] > 0 and hours[0] > 0:
            at_steps, hours = [0, *at_steps], [0.0, *hours]
        top = ax.secondary_xaxis(
            "top",
            functions=(lambda s: _interp(s, at_steps, hours), lambda h: _interp(h, hours, at_steps)),
        )
        top.set_xlabel("hours of training", fontsize=8)
    fig.tight_layout()
    fig.canvas.draw()
    return Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())


def _interp(x: Any, xp: list[float], fp: list[float]) -> np.ndarray:
    """np.interp, but continued linearly past both ends with the end segments' slopes."""
    x = np.asarray(x, dtype=float)
    y = np.interp(x, xp, fp)
    if len(xp) > 1:
        lo, hi = (fp[1] - fp[0]) / (xp[1] - xp[0]), (fp[-1] - fp[-2]) / (xp[-1] - xp[-2])
        y = np.where(x < xp[0], fp[0] + (x - xp[0]) * lo, y)
        y = np.where(x > xp[-1], fp[-1] + (x - xp[-1]) * hi, y)
    return y


def config_changes(saved: dict[str, Any], now: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """option -> (saved, now) for every option whose value differs between two configurations. An option
    only one of them has is not a change: a state saved before an option existed, or by a command that
    did not know it, says nothing about it."""
    return {k: (saved[k], now[k]) for k in saved if k in now and saved[k] != now[k]}


def has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def lr_factor(step: int, steps: int, decay_start: float | None) -> float:
    """The learning rate of step `step` (0-based) as a fraction of the base rate: 1 until
    `decay_start` x `steps`, then falling linearly to 0 at the end (pix2pix's "linear" policy:
    constant for the first half of training, decayed for the second). None: always 1."""
    if decay_start is None:
        return 1.0
    start = int(decay_start * steps)
    if step < start:
        return 1.0
    return max(0.0, (steps - step) / (steps - start))


def set_lr_factor(optimizers: Any, factor: float) -> None:
    """Scale every parameter group's learning rate to `factor` x its base rate. The base rate is
    kept in the group as "initial_lr" (torch's schedulers use the same key), so it survives in the
    optimiser's state_dict and a resumed run continues the same schedule."""
    for opt in optimizers:
        for group in opt.param_groups:
            group["lr"] = group.setdefault("initial_lr", group["lr"]) * factor


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: Any, device: torch.device) -> nn.Module:
    """A copy of `model` whose BatchNorm running statistics are re-estimated on `batches`
    (a cumulative average over all of them), in eval mode without gradients. Inference runs in
    eval mode, so an output does not depend on the rest of its batch; the statistics must then
    match the weights in use, which for an EMA model are not the live model's."""
    model = copy.deepcopy(distributed.unwrap(model)).to(device)
    for bn in (m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)):
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the calibration batches
    model.train()
    with distributed.local():  # the same inputs on every process (anomaly recalibrates inside a step)
        for x in batches:  # a batch, or a tuple of a model's inputs (the harmoniser: latents and melodies)
            model(*(t.to(device) for t in (x if isinstance(x, tuple) else (x,))))
    return model.eval().requires_grad_(False)
