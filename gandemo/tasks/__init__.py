"""The task catalogue: the one place a task is named. Everything else finds its parts by that name.

A task called `<name>` is, in every layer:
    gandemo/nets/<family>.py     its networks (pure nn.Modules; the card names the class)
    gandemo/tasks/<name>.py      its inference: plain functions over models, numpy and PIL (no Gradio)
    gandemo/ui/<name>.py         its tab: `build(spec)`; a missing module shows "arrives with its issue"
    training/<name>.py           its trainer: the `TrainTask` subclass whose `name` is `<name>`
                                 (presets, options, data, steps and evaluation live on that class)
    assets/checkpoints/<name>/<variant>/   its shipped checkpoints
So a new task is its own files plus one `TaskSpec` line below.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskSpec:
    name: str  # module name in every layer, checkpoint folder, `python -m training <name>`
    title: str  # the tab's label
    variants: tuple[str, ...] = ("default",)  # checkpoint variants; () = the task has no checkpoint
    data_hint: str = ""  # what `--data` of its trainer expects, in words (paths are training's business)

    @property
    def default_variant(self) -> str:
        return self.variants[0]

    @property
    def has_checkpoint(self) -> bool:
        return bool(self.variants)

    def train_command(self, variant: str | None = None) -> str:
        """How to make this task's checkpoint, for "not trained yet" messages."""
        variant = variant or self.default_variant
        option = "" if variant == "default" else f" --variant {variant}"
        return (
            f"python -m training {self.name} --data <{self.data_hint}>{option} --out runs/{self.name}-{variant}"
            f" --export assets/checkpoints/{self.name}/{variant}"
        )


# The tabs, in the app's order.
TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec("basics", "GAN Basics", variants=()),  # toy GANs trained live in the browser
        TaskSpec("faces", "Faces", data_hint="folder of face photos"),
        TaskSpec("edges2photo", "Edges → Photo", data_hint="folder of edges|photo pairs"),
        TaskSpec("superres", "4× Upscale", ("gan", "psnr"), data_hint="folder of high-resolution photos"),
        # default: the seed-based composer; harmonize: alto, tenor and bass under a given soprano
        TaskSpec("music", "Music", ("default", "harmonize"), data_hint="folder of four-part chorales"),
        TaskSpec(
            "anomaly",
            "Anomaly",
            ("magnetic_tile", "metal_plate", "transistor"),
            data_hint="MVTec-style category folder",
        ),
    )
}


def spec(name: str) -> TaskSpec:
    """The spec of task `name`; KeyError names the known tasks."""
    try:
        return TASKS[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r}; known: {', '.join(TASKS)}") from None
