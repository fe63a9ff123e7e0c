"""GAN Studio: `python app.py` serves the tabbed app on http://127.0.0.1:7860 (GRADIO_SERVER_NAME /
GRADIO_SERVER_PORT change that; Hugging Face Spaces runs this file)."""

from gandemo.ui.app import bound_allocator, build_app, launch

bound_allocator()  # before any thread of the server starts: see gandemo/ui/app.py
demo = build_app()

if __name__ == "__main__":
    launch(demo)
