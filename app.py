"""GAN Studio: `python app.py` serves the tabbed app on http://127.0.0.1:7860 (GRADIO_SERVER_NAME /
GRADIO_SERVER_PORT change that; Hugging Face Spaces runs this file)."""

from gandemo.ui.app import build_app, launch
from gandemo.ui.serving import bound_allocator

bound_allocator()  # before any thread of the server starts: see gandemo/ui/serving.py
demo = build_app()

if __name__ == "__main__":
    launch(demo)
