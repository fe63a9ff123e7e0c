"""GAN Studio runtime: networks, checkpoints, registry, per-task inference and the Gradio UI."""

__version__ = "0.1.0"
