"""GAN Studio: `python app.py` serves the tabbed app on http://127.0.0.1:7860 (GRADIO_SERVER_NAME /
GRADIO_SERVER_PORT change that; Hugging Face Spaces runs this file)."""

from gandemo.ui.serving import bound_allocator

bound_allocator()  # before torch is imported and the server's threads start: see gandemo/ui/serving.py

from gandemo.ui.app import build_app, launch  # noqa: E402

demo = build_app()

if __name__ == "__main__":
    launch(demo)
