"""`python -m training <task> ...`: data, losses, the one resumable loop, export and evaluation."""
