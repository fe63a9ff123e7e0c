"""Inference per task: plain functions over models, numpy and PIL (no Gradio)."""
