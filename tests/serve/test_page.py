"""The web page in a real browser: headless Chromium (Debian's package) driven by Playwright.

Playwright's own browser download is not reachable from the project's machines, so the test
launches the system Chromium (``apt-get install chromium``) through ``executable_path``. It skips,
with the reason printed, only where no Chromium can be found.
"""

from __future__ import annotations

import shutil

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def page(live_url):
    if CHROMIUM is None:  # the reason is printed in pytest's summary (-rs in pyproject.toml)
        pytest.skip("no Chromium found (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (a test dependency) is not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto(live_url)
        page.wait_for_selector("#chat-model option", state="attached")
        yield page
        browser.close()
        assert errors == [], f"JavaScript errors on the page: {errors}"


@pytest.mark.slow
def test_chat_translation_heatmap_and_attention_steps_in_a_browser(page, served_models):
    translator = served_models["tiny"].translator
    sentence = "Maria is tired."

    # Chat: the reply of a translator run is its translation; it arrives by server-sent events.
    page.select_option("#chat-model", "tiny")
    page.fill("#chat-input", sentence)
    page.click("#chat-send")
    page.wait_for_selector(".msg.bot.done")
    assert page.inner_text(".msg.user") == sentence
    assert page.inner_text(".msg.bot.done") == translator.translate(sentence)

    # Translate, then the cross-attention heatmap: one row per decoder position, one column per source token.
    page.click("[data-tab=translate]")
    page.fill("#tr-input", sentence)
    page.fill("#tr-beam", "1")
    page.click("#tr-send")
    page.wait_for_selector("#tr-output.done")
    translation = translator.translate(sentence, beam=1)
    assert page.inner_text("#tr-output") == translation
    page.wait_for_selector("#heatmap table[data-head='0']")
    n_src = len(translator.tokenizers.src.encode(sentence))
    n_tgt = len(translator.tokenizers.tgt.encode(translation)) + 1
    assert page.locator("#heatmap tr").count() == 1 + n_tgt
    assert page.locator("#heatmap tr:nth-child(2) td").count() == n_src
    page.select_option("#hm-head", "1")
    page.wait_for_selector("#heatmap table[data-head='1']")

    # Self-attention step by step: five steps for the picked word, with the model's numbers.
    page.click("[data-tab=steps]")
    page.fill("#sa-input", sentence)
    page.click("#sa-go")
    page.wait_for_selector("[data-step='5']")
    assert page.locator(".step").count() == 5
    page.click("#sa-tokens button[data-index='1']")
    assert "“is”" in page.inner_text("[data-step='1'] h3")
    weights = [float(x) for x in page.locator("[data-step='4'] tr:nth-child(2) td").all_inner_texts()]
    assert len(weights) == n_src and abs(sum(weights) - 1) < 0.01

    # Decoder self-attention masks the words after the picked one.
    page.select_option("#sa-side", "decoder")
    page.wait_for_function("document.querySelector('#sa-steps p').textContent.startsWith('decoder')")
    page.click("#sa-tokens button[data-index='0']")
    scaled = page.locator("[data-step='3'] tr:nth-child(2) td").all_inner_texts()
    assert scaled[0] != "−∞" and set(scaled[1:]) == {"−∞"}
