"""The studio (issue 27) in a real browser: Playwright drives Chromium against the page served
on localhost, as a person would — upload a photo and render a still, type a bad value, render a
zoom and watch its progress, reload mid-render, cancel and resume, preview. Screenshots of these
runs go to out/screenshots/ (DREAMREEL_SCREENSHOTS=docs: the README's pictures).

Chromium: $DREAMREEL_CHROMIUM, or chromium / chromium-headless-shell / google-chrome on PATH
(Debian: `apt-get install chromium`; .ci/run installs it). Without one the tests skip and say
why — except in CI (CI set), where a missing browser fails them."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

from pipelines.cli import main
from render.media.image import default_image, write_image

ROOT = Path(__file__).resolve().parent.parent
# where the screenshots go (DREAMREEL_SCREENSHOTS=docs: the README's pictures)
SHOTS = Path(os.environ.get("DREAMREEL_SCREENSHOTS", ROOT / "out" / "screenshots"))
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
TINY = {"model.name": "efficientnet_lite0", "model.weights": "none", "dream.steps": "1",
        "dream.octaves": "1"}
WAIT = 120_000  # ms: a render process loads TensorFlow first
# Gradio's own use of pandas warns about pandas 4; nothing of ours
pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio")


def chromium() -> str | None:
    """The browser to drive: $DREAMREEL_CHROMIUM or the first one on PATH."""
    given = os.environ.get("DREAMREEL_CHROMIUM")
    if given:
        return given
    for name in ("chromium", "chromium-headless-shell", "google-chrome", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser():
    exe = chromium()
    if exe is None:
        why = ("no Chromium found: set DREAMREEL_CHROMIUM or install one (Debian: apt-get "
               "install chromium)")
        if os.environ.get("CI"):
            pytest.fail(f"{why}; CI must run the browser tests (.ci/run installs it)")
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=exe, headless=True, args=FLAGS)
        yield launched
        launched.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """The studio served on a free port over a fresh folder: (url, its folder)."""
    from pipelines.studio.app import serve

    root = tmp_path_factory.mktemp("studio")
    port = free_port()
    page = serve(root, "127.0.0.1", port, block=False)
    yield f"http://127.0.0.1:{port}/", root.resolve()
    page.close()


@pytest.fixture
def page(browser, studio):
    context = browser.new_context(viewport={"width": 1280, "height": 1400})
    tab = context.new_page()
    tab.goto(studio[0], wait_until="load")
    tab.locator("#render").wait_for(state="visible")
    yield tab
    context.close()


def fill(page, pipeline: str, values: dict[str, str]) -> None:
    """Open the pipeline's keys (unless open) and type `values` into their fields."""
    boxes = {key: page.locator(f"#key-{pipeline}-{key.replace('.', '-')}").locator(
        "textarea, input").first for key in values}
    first = next(iter(boxes.values()))
    if not first.is_visible():
        page.get_by_text(f"Keys of the {pipeline} pipeline").click()
        first.wait_for(state="visible")
    for key, value in values.items():
        # the fields mount when the section first opens: typing into one that is still
        # mounting is lost, so type until it holds the value (a person is slower than that)
        for _ in range(20):
            boxes[key].fill(value)
            page.wait_for_timeout(100)
            if boxes[key].input_value() == value:
                break
        assert boxes[key].input_value() == value, key


def choose(page, preset: str) -> None:
    page.locator("#preset input").click()
    page.get_by_role("option", name=preset, exact=True).click()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name))


def queue_text(page) -> str:
    return page.locator("#queue").inner_text()


def test_a_photo_dropped_in_is_dreamed_and_shown_in_the_gallery(page, studio, tmp_path):
    photo = write_image(tmp_path / "photo.png", default_image((80, 56), seed=3))
    page.locator("#upload input[type=file]").set_input_files(str(photo))
    fill(page, "still", {**TINY, "size": "[64, 48]"})
    page.locator("#render").click()
    page.wait_for_function("document.querySelector('#message').innerText.includes('Queued')")
    page.locator("#gallery img").first.wait_for(state="visible", timeout=WAIT)
    page.wait_for_function("document.querySelector('#downloads').innerText"
                           ".includes('.yaml')", timeout=WAIT)
    assert '"still"' in page.locator("#sidecar").inner_text()
    page.locator("#gallery").scroll_into_view_if_needed()
    shot(page, "studio-still.png")
    # the page's render equals the CLI's from the YAML the studio wrote
    job = next((studio[1] / "jobs").iterdir())
    assert main(["render", str(job / "preset.yaml"), f"output={tmp_path / 'cli.png'}",
                 "--quiet"]) == 0
    assert (job / "out.png").read_bytes() == (tmp_path / "cli.png").read_bytes()
    assert list((job / "octaves").glob("octave_*.png"))  # what the page showed while it ran
    uploads = list((studio[1] / "uploads").iterdir())
    assert len(uploads) == 1 and uploads[0].name != "photo.png"  # a name the server chose


def test_a_bad_value_shows_the_clis_message_and_nothing_starts(page, studio):
    before = set((studio[1] / "jobs").iterdir())
    fill(page, "still", {"dream.steps": "-3"})
    page.locator("#render").click()
    message = page.locator("#message")
    message.get_by_text("dream.steps: must be >= 1, got -3").wait_for(timeout=30_000)
    assert "Not started" in message.inner_text()
    page.locator("#key-still-dream-steps").get_by_text("must be >= 1, got -3").wait_for(
        timeout=10_000)  # beside the field too
    assert set((studio[1] / "jobs").iterdir()) == before


def test_a_zoom_shows_progress_survives_a_reload_cancels_and_resumes(page, studio):
    choose(page, "zoom")
    fill(page, "zoom", {**TINY, "size": "[128, 96]", "frames": "300",
                        "dream.first_frame.steps": "1", "dream.first_frame.octaves": "1"})
    page.locator("#render").click()
    page.wait_for_function(
        "/running\\s+\\S*\\s*([1-9][0-9]*)\\/300/.test(document.querySelector('#queue')"
        ".innerText)", timeout=WAIT)
    page.locator("#live img").wait_for(state="visible", timeout=WAIT)
    page.locator("#queue").scroll_into_view_if_needed()
    shot(page, "studio-zoom.png")
    page.reload(wait_until="load")  # a closed or reloaded tab: the render goes on
    page.locator("#queue").wait_for()
    page.wait_for_function("document.querySelector('#queue').innerText.includes('running')",
                           timeout=10_000)
    page.locator("#cancel").click()
    page.wait_for_function("document.querySelector('#queue').innerText.includes('cancelled')",
                           timeout=WAIT)
    assert "finished frames are kept" in queue_text(page)
    page.locator("#resume").click()
    page.wait_for_function("document.querySelector('#queue').innerText.includes('done')",
                           timeout=WAIT)
    page.locator("#video video").wait_for(state="attached", timeout=WAIT)
    assert "resuming after" in queue_text(page) or "wrote" in queue_text(page)


def test_a_preview_shows_the_camera_path_and_the_plot(page, studio):
    choose(page, "zoom")
    fill(page, "zoom", {"size": "[96, 64]", "frames": "24"})
    page.locator("#preview").click()
    page.wait_for_function("document.querySelector('#message').innerText.includes('preview')")
    job = max((studio[1] / "jobs").iterdir(), key=lambda p: p.name)
    page.wait_for_function(
        f"/{job.name}\\s+zoom\\s+done/.test(document.querySelector('#queue').innerText)",
        timeout=WAIT)
    page.locator("#gallery img").first.wait_for(state="visible", timeout=10_000)
    assert (job / "out.preview.png").is_file() and (job / "out.preview.mp4").is_file()


def test_a_schedule_typed_in_is_plotted_and_a_bad_one_is_refused(page, studio):
    choose(page, "zoom")
    page.locator("#plot img").wait_for(state="visible", timeout=30_000)  # the preset's own
    before = page.locator("#plot img").get_attribute("src")
    fill(page, "zoom", {"motion.angle": "2 * sin(t / 6)"})
    page.locator("#key-zoom-motion-angle").locator("textarea, input").first.press("Tab")
    page.wait_for_function(f"document.querySelector('#plot img').src != {before!r}",
                           timeout=30_000)
    fill(page, "zoom", {"motion.angle": "2 * sin(t / 6) + nope"})
    page.locator("#key-zoom-motion-angle").locator("textarea, input").first.press("Enter")
    page.locator("#message").get_by_text("motion.angle").wait_for(timeout=30_000)
    assert "Plot:" in page.locator("#message").inner_text()


def test_the_layer_gallery_of_the_forms_model_is_shown_beside_its_keys(page, studio):
    fill(page, "still", TINY)
    page.get_by_text("What each layer of the model sees").click()
    page.locator("#layers-render").click()
    page.locator("#message").get_by_text("layer gallery of efficientnet_lite0").wait_for(
        timeout=30_000)
    page.locator("#layers img").wait_for(state="visible", timeout=WAIT)
    job = max((studio[1] / "jobs").iterdir(), key=lambda p: p.name)
    overrides = (job / "job.json").read_text()
    assert "model.name=efficientnet_lite0" in overrides and "dream.steps=1" in overrides
