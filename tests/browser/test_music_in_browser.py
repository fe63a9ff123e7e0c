"""Compose a piece in the Music tab in headless Chromium and check that the page offers audio the
browser itself can decode and play, a piano roll, the MIDI file and the metrics; then type a melody,
harmonise it and hear it in four parts."""

# The browser fetches the player's WAV and decodes it with the Web Audio API (no sound device
# needed): its length in seconds and its loudest sample.
_DECODE = """async url => {
    const data = await (await fetch(url)).arrayBuffer();
    const ctx = new OfflineAudioContext(1, 44100, 44100);
    const buf = await ctx.decodeAudioData(data);
    const x = buf.getChannelData(0);
    let peak = 0;
    for (let i = 0; i < x.length; i++) peak = Math.max(peak, Math.abs(x[i]));
    return [buf.duration, peak];
}"""


def _open_tab(page, tool: str = "Compose", ready: str = "#music-compose"):
    page.get_by_role("tab", name="Music").click()
    page.get_by_role("tab", name=tool).click()
    page.locator(ready).wait_for(timeout=10_000)


def _wav_url(page, old: str = "", player: str = "#music-audio") -> str:
    page.wait_for_function(
        "([old, sel]) => { const a = document.querySelector(sel + ' a.download-link');"
        " return a && a.href.endsWith('.wav') && a.href !== old; }",
        arg=[old, player],
        timeout=60_000,
    )
    return page.evaluate("sel => document.querySelector(sel + ' a.download-link').href", player)


def test_compose_gives_playable_audio_a_piano_roll_midi_and_metrics(page, screenshot):
    _open_tab(page)
    page.locator("#music-seed input").fill("11")
    page.locator("#music-seed input").press("Tab")
    page.locator("#music-compose").click()
    url = _wav_url(page)
    assert "chorale_seed11_80bpm.wav" in url
    seconds, peak = page.evaluate(_DECODE, url)
    assert abs(seconds - (64 / 4 * 60 / 80 + 1.0)) < 0.01 and peak > 0.5  # 12 s of piece + 1 s tail, not silent
    roll = page.locator("#music-roll img").first
    roll.wait_for(timeout=30_000)
    assert roll.evaluate("i => i.naturalWidth") > 500
    page.wait_for_function(
        "() => document.querySelector('#music-midi').innerText.replace(/\\s/g, '')"
        ".includes('chorale_seed11_80bpm.mid')",
        timeout=30_000,
    )
    page.wait_for_function(
        "() => document.querySelector('#music-metrics').innerText.includes('qualified notes')", timeout=30_000
    )
    assert (
        "FluidSynth" in page.locator("#music-engine").inner_text()
        or "sine" in page.locator("#music-engine").inner_text()
    )
    screenshot("music")


def test_a_bad_seed_shows_a_plain_error_and_the_next_compose_works(page):
    _open_tab(page)
    before = page.evaluate(
        "() => { const a = document.querySelector('#music-audio a.download-link'); return a ? a.href : ''; }"
    )
    page.locator("#music-seed input").fill("-3")
    page.locator("#music-seed input").press("Tab")
    page.locator("#music-compose").click()
    page.get_by_text("seed must be from 0").first.wait_for(timeout=30_000)
    page.locator("#music-seed input").fill("12")
    page.locator("#music-seed input").press("Tab")
    page.locator("#music-compose").click()
    assert "chorale_seed12_80bpm.wav" in _wav_url(page, before)


def test_clicking_an_example_sets_the_inputs_and_composes(page):
    _open_tab(page)
    before = page.evaluate(
        "() => { const a = document.querySelector('#music-audio a.download-link'); return a ? a.href : ''; }"
    )
    page.locator("tr").filter(has_text="Church Organ").first.click()  # the church-organ example: seed 42, 66 bpm
    assert "chorale_seed42_66bpm.wav" in _wav_url(page, before)
    assert page.locator("#music-seed input").input_value() == "42"


def test_a_typed_melody_is_harmonised_and_the_page_plays_it_in_four_parts(page, screenshot):
    _open_tab(page, "Harmonise a melody", "#harmony-go")
    page.locator("#harmony-text textarea").fill("C5/4 D5/4 E5/4 C5/4 | E5/2 D5/8 C5/8 D5/4")
    page.locator("#harmony-go").click()
    url = _wav_url(page, player="#harmony-audio")
    assert "harmonised_seed0_80bpm.wav" in url  # typed text plays at 80 quarter notes a minute
    seconds, peak = page.evaluate(_DECODE, url)
    assert abs(seconds - (32 / 4 * 60 / 80 + 1.0)) < 0.01 and peak > 0.5  # 2 bars (6 s) + 1 s tail, not silent
    roll = page.locator("#harmony-roll img").first
    roll.wait_for(timeout=30_000)
    assert roll.evaluate("i => i.naturalWidth") > 400
    page.wait_for_function(
        "() => document.querySelector('#harmony-midi').innerText.replace(/\\s/g, '')"
        ".includes('harmonised_seed0_80bpm.mid')",
        timeout=30_000,
    )
    page.wait_for_function(
        "() => document.querySelector('#harmony-metrics').innerText.includes('bass consonant with the melody')",
        timeout=30_000,
    )
    assert "2 bars at 80 quarter notes per minute" in page.locator("#harmony-note").inner_text()
    screenshot("music_harmonize")


def test_a_melody_that_does_not_parse_gets_a_plain_error_in_the_page(page):
    _open_tab(page, "Harmonise a melody", "#harmony-go")
    page.locator("#harmony-text textarea").fill("C5/4 X5/4")
    page.locator("#harmony-go").click()
    page.get_by_text("could not read note 2").first.wait_for(timeout=30_000)


def test_choosing_an_example_fills_in_its_melody_and_tempo(page):
    _open_tab(page, "Harmonise a melody", "#harmony-go")
    page.locator("#harmony-example input").click()
    page.get_by_role("option", name="Frère Jacques (traditional)").click()
    page.wait_for_function(
        "() => document.querySelector('#harmony-text textarea').value.startsWith('C4/4 D4/4 E4/4 C4/4')", timeout=30_000
    )
    assert page.locator("#harmony-tempo textarea, #harmony-tempo input").first.input_value() == "104"
