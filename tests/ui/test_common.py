from gandemo.ui.common import card_markdown


def test_card_markdown_shows_data_training_notes_and_every_metric_column():
    card = {
        "task": "faces",
        "variant": "default",
        "arch": {"G": {"class": "gandemo.nets.dcgan:Generator", "kwargs": {}}},
        "data": {"name": "faces", "items": 10, "resolution": "64x64", "held_out": "7%"},
        "training": {
            "steps": 5,
            "wall_time_s": 3600,
            "preset": "cpu",
            "device": "cpu",
            "commit": "abc",
            "sessions": [{"threads": 2}, {"threads": 1}],
            "exported": {"date": "2026-01-01"},
        },
        "notes": "does not beat its baseline",
        "metrics": {"FID": {"model": 99.3, "baseline": 90.6, "real": 20.6, "method": "Inception"}},
    }
    md = card_markdown(card)
    assert "`Generator`" in md and "10 training images" in md and "1.00 h" in md
    assert "2, then 1 thread(s)" in md and "**Notes**: does not beat its baseline" in md
    assert "| FID | 99.3 | 90.6 | 20.6 | – | Inception |" in md


def test_card_without_metrics_says_how_to_measure():
    assert "python -m training evaluate" in card_markdown({"task": "faces", "variant": "default"})
