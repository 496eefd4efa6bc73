"""End-to-end: the review page in a real browser (Debian's chromium driven by Playwright).

A reviewer opens the page for a real photo and a real video, deletes detections, draws
regions (and follows one across frames with the tracker), keeps a consenting person
visible, undoes and redoes, and exports; the tests then read the output pixels and the
audit report. Screenshots go to test-artifacts/. With VEIL_UPDATE_DOCS=1 the views of
the CC BY 4.0 Intel clips are also copied to docs/ for the README.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from veil.detect import FAST
from veil.pipeline import Analysis
from veil.names import MANIFEST_NAME
from veil.plan import Plan, RenderSettings
from veil.review.cli import ReviewServer, launch_page, open_session
from veil.review.session import ReviewSession

import speech_support

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PHOTO = DATA / "face_recognition_examples" / "examples" / "two_people.jpg"
INTEL = DATA / "videos" / "intel_walking_and_headpose"
VIDEO = INTEL / "face-demographics-walking.mp4"
ARTIFACTS = ROOT / "test-artifacts" / "review"
CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_MS = int(os.environ.get("VEIL_BROWSER_TIMEOUT_MS", "120000"))  # generous: CI machines have two cores; nothing here measures time

pytestmark = [
    pytest.mark.skipif(not DATA.is_dir(), reason=f"test data not found at {DATA} (../shared/data)"),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def detected_plan(tmp_path_factory) -> Path:
    """Detect once for the module; each test reviews its own copy through `--plan`."""
    folder = tmp_path_factory.mktemp("detected")
    session = open_session([PHOTO, VIDEO], None, folder / "plan.json", folder, None, RenderSettings(), Analysis(FAST))
    return session.plan_path


@pytest.fixture
def reviewed(detected_plan: Path, tmp_path: Path) -> ReviewSession:
    plan = tmp_path / "review.veil-plan.json"
    shutil.copy(detected_plan, plan)
    return open_session([], plan, None, tmp_path / "out", None, RenderSettings(), Analysis(FAST))


@pytest.fixture
def served(reviewed: ReviewSession, tmp_path: Path) -> Iterator[tuple[ReviewServer, Path]]:
    server = ReviewServer(reviewed)
    server.start()
    try:
        yield server, tmp_path
    finally:
        server.stop()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def regions_on_screen(page) -> list[str]:
    return page.eval_on_selector_all("#overlay .region", "els => els.map(e => e.dataset.region)")


def screen_point(page, media: dict, x: float, y: float) -> tuple[float, float]:
    """Image pixel coordinates -> page coordinates over the overlay."""
    box = page.locator("#overlay").bounding_box()
    return box["x"] + x * box["width"] / media["width"], box["y"] + y * box["height"] / media["height"]


def drag(page, media: dict, start: tuple[float, float], end: tuple[float, float]) -> None:
    page.mouse.move(*screen_point(page, media, *start))
    page.mouse.down()
    page.mouse.move(*screen_point(page, media, *end), steps=5)
    page.mouse.up()


def api_media(page, index: int) -> dict:
    return page.evaluate(f"fetch('api/media/{index}').then(r => r.json())")


def open_file(page, server: ReviewServer, index: int) -> dict:
    page.goto(server.url)
    page.locator(f".card[data-index='{index}']").click()
    page.wait_for_selector("#viewer:not([hidden])")
    return api_media(page, index)


def export(page) -> None:
    page.click("#export")
    page.wait_for_selector("#export-status[data-state=done]", timeout=TIMEOUT_MS)


def box_mask(width: int, height: int, box: list[float], shrink: float = 0.3) -> tuple[slice, slice]:
    """The central part of a box (inside the ellipse too), in pixel slices."""
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) * shrink / 2, (y1 - y0) * shrink / 2
    return (slice(max(0, int(y0 + dy)), min(height, int(y1 - dy))), slice(max(0, int(x0 + dx)), min(width, int(x1 - dx))))


def test_address_without_token_is_refused(browser, served):
    server, _ = served
    page = browser.new_page()
    response = page.goto(server.base + "/")
    assert response.status == 401
    assert page.goto(server.base + server.root).status == 401
    assert "one-time address" in page.content()
    page.close()


def test_launch_address_works_once(browser, served):
    server, _ = served
    used = server.url
    first = browser.new_page()
    assert first.goto(used).status == 200
    first.wait_for_selector(".card[data-index='1']")
    assert first.url == server.base + server.root  # the dead code out of the address bar
    assert first.goto(used).status == 200  # the browser with the cookie may reopen it
    first.close()
    other = browser.new_context().new_page()  # another browser profile: no cookie
    if server.own_user_only:  # the reviewer's own program: led on to the root, where it has no cookie
        other.goto(used)
        other.wait_for_url(server.base + server.root)
        assert "open the one-time address" in other.content()
    else:
        assert other.goto(used).status == 401 and "someone else may have opened the review" in other.content()
    assert other.goto(server.url).status == 200 and server.url != used  # the address the terminal shows now
    other.wait_for_selector(".card[data-index='1']")
    other.context.close()


def test_the_launch_page_opens_the_review(browser, served):
    """The browser is started on a file:// page that leads to the address with the code (never on the
    address: a command line is there for every local user to read). Chromium follows it, and the
    cookie it is given there is sent on: the server's 303 to the clean address was followed without
    the SameSite=Strict cookie (a redirect begun on another site, file://), and the page was refused."""
    server, folder = served
    context = browser.new_context()
    page = context.new_page()
    page.goto(launch_page(folder, server.url).as_uri())
    page.wait_for_selector(".card[data-index='1']")
    assert page.url == server.base + server.root
    context.close()


# A page of another local server (127.0.0.1, another port: same-site, so even a SameSite=Strict
# cookie goes along) that tries to change the plan and start an export behind the reviewer's back.
ATTACK = """<!doctype html><form id=f method=post enctype=text/plain action="{base}/api/export">
<input name='{{"a":"' value='"}}'></form><script>
const o = {{method: "POST", mode: "no-cors", credentials: "include", body: "{{}}", headers: {{"Content-Type": "text/plain"}}}};
Promise.allSettled([fetch("{base}/api/media/0/regions/f1/delete", o), fetch("{base}/api/export", o),
  fetch("{base}/api/undo", {{...o, headers: {{"Content-Type": "application/json"}}}})])
  .then(() => {{ document.title = "sent"; document.getElementById("f").submit(); }});
</script>"""


# The same server's page that shows the original photo (the Strict cookie goes along to same-site images).
EMBED = """<!doctype html><img src="{base}/media/0/frame/0.jpg?view=original"
onload="document.title = 'shown ' + this.naturalWidth" onerror="document.title = 'blocked'">"""


@pytest.fixture
def attacker(served) -> Iterator[tuple[str, list[str]]]:
    server, _ = served
    # The attacker is given the session's root here (the review's own address names it).
    base = server.base + server.root.rstrip("/")
    pages = {"/": ATTACK.format(base=base).encode(), "/embed": EMBED.format(base=base).encode()}
    cookies = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            cookies.append(self.headers.get("Cookie") or "")
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(pages.get(self.path, b""))

        def log_message(self, *args) -> None:  # quiet: the test reads the plan file, not the log
            pass

    host = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=host.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{host.server_address[1]}/", cookies
    finally:
        host.shutdown()
        host.server_close()


def test_another_local_server_is_never_sent_the_reviews_cookie(page, served, attacker):
    """A browser sends a host's cookies to every port of it: the token's cookie, set for "/", went to
    any server on 127.0.0.1 the reviewer's browser visited (another local user's), which then had
    the review, original photos and videos. It is set for the session's root alone."""
    server, _ = served
    page.goto(server.url)
    page.wait_for_selector(".card[data-index='1']")
    page.goto(attacker[0] + "embed")
    assert attacker[1] and not any("veil_token" in sent for sent in attacker[1]), attacker[1]


def test_another_local_page_cannot_change_anything(page, served, attacker):
    server, folder = served
    plan = folder / "review.veil-plan.json"
    page.goto(server.url)  # the reviewer's browser has the cookie
    page.wait_for_selector(".card[data-index='1']")
    before = plan.read_bytes()
    page.goto(attacker[0])
    page.wait_for_url(server.base + server.root + "api/export")  # the form's post, after the three fetches have had their answers
    assert "only from the review page" in page.content()
    assert plan.read_bytes() == before and not (folder / "out").exists()
    assert Plan.load(plan).edits == []


def test_another_local_page_cannot_show_the_original_frames(page, served, attacker):
    server, _ = served
    page.goto(server.url)  # the reviewer's browser has the cookie
    page.wait_for_selector(".card[data-index='1']")
    page.goto(attacker[0] + "embed")
    page.wait_for_function("() => document.title !== ''")
    assert page.title() == "blocked"


def test_photo_review_delete_draw_keep_undo_export(page, served):
    server, folder = served
    page.goto(server.url)
    page.wait_for_selector(".card[data-index='1']")
    assert "token" not in page.url  # moved into a cookie, out of the address bar
    shot(page, "gallery")

    media = open_file(page, server, 0)
    page.wait_for_function("() => document.querySelectorAll('#overlay .region').length === 2")
    detected = {r["id"]: r["boxes"][0][1:5] for r in media["regions"]}
    assert set(regions_on_screen(page)) == set(detected) == {"f1", "f2"}
    shot(page, "photo-planned")

    # Original view, then back to redacted (the O key).
    page.keyboard.press("o")
    page.wait_for_function("() => document.getElementById('frame').src.includes('view=original')")
    shot(page, "photo-original")
    page.keyboard.press("o")
    page.wait_for_function("() => document.getElementById('frame').src.includes('view=redacted')")

    # Delete a detection: click it, press Delete.
    page.click("#overlay .region[data-region='f1']")
    page.keyboard.press("Delete")
    page.wait_for_function("() => document.querySelectorAll('#overlay .region').length === 1")
    assert regions_on_screen(page) == ["f2"]
    assert page.text_content("#status").startswith("deleted f1: it will not be hidden")

    # Draw a box where nothing was detected (bottom left corner of the photo).
    page.check("input[name=shape][value=box]")
    drawn = [40.0, media["height"] - 200.0, 200.0, media["height"] - 40.0]
    drag(page, media, (drawn[0], drawn[1]), (drawn[2], drawn[3]))
    page.wait_for_function("() => document.querySelectorAll('#overlay .region').length === 2")
    new = [r for r in api_media(page, 0)["regions"] if r["source"] == "reviewer"]
    assert len(new) == 1 and new[0]["shape"] == "box"
    assert new[0]["boxes"][0][1:5] == pytest.approx(drawn, abs=3)

    # Undo the drawing, redo it.
    page.click("#undo")
    page.wait_for_function("() => document.querySelectorAll('#overlay .region').length === 1")
    page.keyboard.press("Control+Shift+Z")
    page.wait_for_function("() => document.querySelectorAll('#overlay .region').length === 2")

    # Keep f2 visible: refused without a reason, accepted with one.
    page.click("#overlay .region[data-region='f2']")
    page.click("#keep-visible")
    page.wait_for_selector("#status.error")
    page.fill("#reason", "consented <on camera> & in writing")
    page.click("#keep-visible")
    page.wait_for_selector("#overlay .region.kept[data-region='f2']")
    assert page.text_content("#status").startswith("f2 kept visible")
    shot(page, "photo-edited")

    # Every edit was saved to the plan file as it was made.
    saved = Plan.load(folder / "review.veil-plan.json")
    assert {r.id for r in saved.media[0].regions} == {"f2", new[0]["id"]}
    assert saved.media[0].region("f2").keep_visible

    export(page)
    shot(page, "photo-exported")
    # The run's advice before publishing: the manifest the export left in the output folder.
    assert f"Before you publish: the manifest {folder / 'out' / MANIFEST_NAME}" in page.inner_text("#export-status")
    out = np.asarray(Image.open(folder / "out" / PHOTO.name).convert("RGB")).astype(int)
    original = np.asarray(Image.open(PHOTO).convert("RGB")).astype(int)
    h, w = out.shape[:2]
    assert out[box_mask(w, h, drawn)].max() < 40  # the drawn box is filled (JPEG noise aside)
    for kept in ("f1", "f2"):  # deleted, and kept visible: the pixels are the original's
        rows, cols = box_mask(w, h, detected[kept])
        assert abs(out[rows, cols].mean() - original[rows, cols].mean()) < 4

    report = json.loads((folder / "review.veil-report.json").read_text())
    photo = report["files"][0]
    assert photo["output_sha256"] and photo["input_sha256"] == photo["plan_input_sha256"]
    assert photo["deleted_regions"] == ["f1"]
    kept = next(r for r in photo["regions"] if r["id"] == "f2")
    assert kept["keep_visible"] and kept["reason"] == "consented <on camera> & in writing"
    actions = [e["action"] for e in report["edits"]]
    assert actions[:5] == ["delete_region", "add_region", "undo", "redo", "keep_visible"]
    assert actions[-1] == "export"
    page_html = (folder / "review.veil-report.html").read_text()
    assert "consented &lt;on camera&gt; &amp; in writing" in page_html and "<on camera>" not in page_html


def test_a_drag_begun_inside_a_region_draws_and_only_a_selected_region_moves(page, served):
    """The page says "drag to draw a missed one": a drag begun inside a neighbour's ellipse moved the
    neighbour off its own face, unsaid, and the export left that face visible. Such a drag draws; a
    region moves once selected, and the page says so; an undo names and shows what it changed."""
    server, _ = served
    media = open_file(page, server, 0)
    page.wait_for_function("() => document.querySelectorAll('#overlay .region').length === 2")
    f1 = next(r for r in media["regions"] if r["id"] == "f1")["boxes"][0][1:5]
    centre = ((f1[0] + f1[2]) / 2, (f1[1] + f1[3]) / 2)
    drag(page, media, centre, (centre[0] + 150, centre[1] + 150))
    page.wait_for_function("() => document.querySelectorAll('#overlay .region').length === 3")
    assert next(r for r in api_media(page, 0)["regions"] if r["id"] == "f1")["boxes"][0][1:5] == f1
    assert page.text_content("#status").startswith("added ")
    top, bottom = max(f1[1], 0), min(f1[3], media["height"])
    upper = (centre[0], top + 0.2 * (bottom - top))  # inside f1 on the picture, away from the box drawn
    page.mouse.click(*screen_point(page, media, *upper))
    page.wait_for_function("() => S.selected === 'f1'")
    drag(page, media, upper, (upper[0] + 40, upper[1]))
    page.wait_for_function("() => document.getElementById('status').textContent.startsWith('moved f1')")
    moved = next(r for r in api_media(page, 0)["regions"] if r["id"] == "f1")["boxes"][0][1:5]
    assert moved[0] == pytest.approx(f1[0] + 40, abs=3) and moved[1] == pytest.approx(f1[1], abs=3)
    page.click("#undo")
    page.wait_for_function("() => document.getElementById('status').textContent.startsWith('undid ')")
    assert " of f1" in page.text_content("#status") and page.evaluate("S.selected") == "f1"
    assert next(r for r in api_media(page, 0)["regions"] if r["id"] == "f1")["boxes"][0][1:5] == f1
    assert page.evaluate("document.activeElement.id") != "undo"  # Enter pressed now undoes nothing more


def test_keys_reach_the_review_after_a_radio_button_and_regions_are_reached_by_keyboard(page, served):
    """Choosing "Box" with the mouse left the focus on the radio button: a region clicked on the
    picture then could not be deleted with Delete, and the arrows switched the shape or the view
    instead of stepping. And no region could be selected without a mouse."""
    server, _ = served
    open_file(page, server, 0)
    page.wait_for_function("() => document.querySelectorAll('#overlay .region').length === 2")
    page.check("input[name=shape][value=box]")
    page.click("#overlay .region[data-region='f1']")
    page.keyboard.press("Delete")
    page.wait_for_function("() => document.querySelectorAll('#overlay .region').length === 1")
    assert page.is_checked("input[name=shape][value=box]")  # and the shape stayed as chosen
    page.click("input[name=view][value=original]")
    page.keyboard.press("ArrowLeft")  # a photo has no frame to step to: the view must stay
    assert page.is_checked("input[name=view][value=original]")
    # Keyboard only: Tab to the region in the list, Enter selects it, Delete deletes it.
    page.click("input[name=view][value=redacted]")
    page.keyboard.press("Control+z")
    page.wait_for_function("() => document.querySelectorAll('#overlay .region').length === 2")
    page.locator("#region-list li[data-region='f2']").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#overlay .region.selected[data-region='f2']")
    assert page.evaluate("document.activeElement.dataset.region") == "f2"
    page.keyboard.press("Delete")
    page.wait_for_function("() => document.querySelectorAll('#overlay .region').length === 1")
    assert regions_on_screen(page) == ["f1"]


def held_answers(page, pattern: str) -> list:
    """The page's requests to `pattern` from now on, each (route, the server's answer) held until the
    test lets it through (`route.fulfill`): answered as the server did, but later."""
    held: list = []
    page.route(pattern, lambda route: held.append((route, route.fetch())))
    return held


def test_an_edit_made_while_the_page_follows_another_window_stays_on_screen(page, served):
    """The page fetched the regions changed in another window, the reviewer drew a box before they
    came, and the older regions then replaced the newer ones the drawing had answered with: the
    box vanished from the screen (it was in the plan), and stayed gone, the page at the plan's revision."""
    server, _ = served
    media = open_file(page, server, 0)
    page.wait_for_function("() => document.querySelectorAll('#overlay .region').length === 2")
    held = held_answers(page, "**/api/media/0")  # the page's own fetch of the regions
    # Another window's change (a request of the browser's, not of this page's code): the page follows it.
    page.evaluate("fetch('api/media/0/regions/f2/shape', {method: 'POST', headers: {'Content-Type': "
                  "'application/json'}, body: JSON.stringify({shape: 'box'})})")
    while not held:
        page.wait_for_timeout(100)
    drag(page, media, (20, 20), (120, 120))
    page.wait_for_function("() => document.querySelectorAll('#overlay .region').length === 3")
    route, answer = held[0]
    route.fulfill(response=answer)
    page.unroute("**/api/media/0")
    page.wait_for_timeout(2 * 2000)  # the held answer taken or not, then two more rounds of following
    assert regions_on_screen(page) == ["f1", "f2", "r3"]


def test_a_plan_state_an_edit_here_overtook_is_not_taken_for_another_windows(page, served):
    """The page asked for the plan's state to follow other windows, the reviewer drew a box before it
    came, and the older state was then taken as another window's change: the page said the plan was
    changed in another window (it was this page's own edit), and went back to the revision before it."""
    server, _ = served
    media = open_file(page, server, 0)
    page.wait_for_function("() => document.querySelectorAll('#overlay .region').length === 2")
    held = held_answers(page, "**/api/state")  # the page's own look at the state
    while not held:
        page.wait_for_timeout(100)
    drag(page, media, (20, 20), (120, 120))
    page.wait_for_function("() => document.querySelectorAll('#overlay .region').length === 3")
    drawn = page.evaluate("S.state.revision")
    route, answer = held[0]
    route.fulfill(response=answer)
    page.unroute("**/api/state")
    page.wait_for_timeout(2 * 2000)  # the held answer taken or not, then two more rounds of following
    assert page.evaluate("S.state.revision") == drawn
    assert "another window" not in page.inner_text("#status")
    assert regions_on_screen(page) == ["f1", "f2", "r3"]


def test_a_frame_s_picture_still_loading_is_dimmed_and_not_drawn_on(page, served):
    """Stepped to a frame whose picture had not come yet, the page showed the frame before's
    picture under the new frame's number and boxes, and a box drawn over it was saved for the new
    frame, placed by a picture that was not its own."""
    server, _ = served
    media = open_file(page, server, 1)
    page.wait_for_function("() => document.getElementById('frame').complete")
    held: list = []
    page.route("**/frame/7.jpg*", lambda route: held.append(route))
    page.evaluate("seek(7)")
    page.wait_for_function("() => document.getElementById('frame-label').textContent.startsWith('frame 7 ')")
    assert "loading" in page.get_attribute("#frame", "class")
    before = len(api_media(page, 1)["regions"])
    drag(page, media, (20, 20), (120, 120))
    assert "still loading. Nothing was changed" in page.inner_text("#status")
    assert len(api_media(page, 1)["regions"]) == before
    while not held:
        page.wait_for_timeout(100)
    held[0].continue_()
    page.unroute("**/frame/7.jpg*")
    page.wait_for_function("() => !document.getElementById('frame').classList.contains('loading')")
    drag(page, media, (20, 20), (120, 120))
    page.wait_for_function("() => document.getElementById('status').textContent.startsWith('added')")
    added = [r for r in api_media(page, 1)["regions"] if r["source"] != "detector"]
    assert [b[0] for b in added[-1]["boxes"]] == [7]
    # The same frame's picture again (the other view) is no other frame's: not dimmed.
    page.check("input[name=view][value=original]")
    assert "loading" not in (page.get_attribute("#frame", "class") or "")


def test_a_page_whose_server_stopped_says_so_and_claims_no_export(page, served):
    """With the server stopped, every change said "Failed to fetch", and Export showed "Rendering 0
    of 1 file(s)..." for good."""
    server, _ = served
    media = open_file(page, server, 0)
    page.wait_for_function("() => document.querySelectorAll('#overlay .region').length === 2")
    server.stop()
    drag(page, media, (20, 20), (120, 120))
    page.wait_for_function("() => document.getElementById('status').textContent.includes('not running')")
    assert "this change was not made" in page.inner_text("#status")
    page.click("#export")
    page.wait_for_function("() => document.getElementById('export-status').textContent.startsWith('Not known')")
    page.wait_for_timeout(1500)
    assert "Rendering" not in page.inner_text("#export-status")


def test_an_export_another_window_started_is_shown(page, served, monkeypatch):
    """An export running (started in another window) moved no revision, so an open page never
    showed it: edits were refused with no export in sight."""
    import veil.review.app as review_app_module

    rendered = review_app_module.render_planned

    def slowly(*args, **kwargs):
        threading.Event().wait(6)
        return rendered(*args, **kwargs)
    monkeypatch.setattr(review_app_module, "render_planned", slowly)
    server, _ = served
    open_file(page, server, 0)
    page.wait_for_function("() => document.querySelectorAll('#overlay .region').length === 2")
    assert page.evaluate("document.getElementById('export-panel').hidden")
    page.evaluate("fetch('api/export', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{}'})")
    page.wait_for_function("() => !document.getElementById('export-panel').hidden")
    page.wait_for_function("() => document.getElementById('export-status').textContent.startsWith('Rendering')")


def test_an_undo_after_a_change_made_but_not_saved_is_not_taken_for_another_windows(page, served, reviewed):
    """The page's own box answered 507 (made, the plan not saved: a full disk); the page took no
    state from the error, and its undo of that very box was refused as another window's change."""
    server, _ = served
    media = open_file(page, server, 0)
    page.wait_for_function("() => document.querySelectorAll('#overlay .region').length === 2")
    saving = reviewed.plan.save

    def disk_full(path):
        raise OSError(28, "No space left on device")
    reviewed.plan.save = disk_full
    drag(page, media, (20, 20), (120, 120))
    page.wait_for_selector("#status.error")
    reviewed.plan.save = saving
    page.wait_for_function("() => !S.busy")
    page.keyboard.press("Control+Z")  # before the page's look at other windows (every 2 s) came
    page.wait_for_function("() => document.getElementById('status').textContent.startsWith('undid')")
    assert [r["id"] for r in api_media(page, 0)["regions"]] == ["f1", "f2"]


def test_video_review_step_delete_draw_follow_export(page, served):
    server, folder = served
    media = open_file(page, server, 1)
    page.wait_for_selector("#video-controls:not([hidden])")
    assert page.locator("#timeline").bounding_box()["height"] >= 16 * (len(media["regions"]) + 1)

    # Frame-by-frame stepping with the keyboard and the buttons.
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    page.click("#fwd")
    page.click("#back")
    page.wait_for_function("() => document.getElementById('frame-label').textContent.startsWith('frame 3 ')")
    page.wait_for_function("() => document.getElementById('frame').src.includes('/frame/3.jpg')")

    # Delete one track's box in this frame (a one-frame false detection).
    victim = next(r for r in media["regions"] if any(b[0] == 3 for b in r["boxes"]))
    victim_box = next(b for b in victim["boxes"] if b[0] == 3)[1:5]
    page.click(f"#overlay .region[data-region='{victim['id']}']")
    page.keyboard.press("Delete")
    page.wait_for_function(f"() => !document.querySelector(\"#overlay .region[data-region='{victim['id']}']\")")
    after = next(r for r in api_media(page, 1)["regions"] if r["id"] == victim["id"])
    assert 3 not in [b[0] for b in after["boxes"]] and len(after["boxes"]) == len(victim["boxes"]) - 1
    assert page.text_content("#status").startswith(f"removed {victim['id']}'s box on frame 3")

    # Draw a region on frame 3 and follow it to frame 10 with the tracker.
    drawn = [10.0, 200.0, 70.0, 260.0]
    drag(page, media, (drawn[0], drawn[1]), (drawn[2], drawn[3]))
    page.wait_for_selector("#extend")
    added = next(r for r in api_media(page, 1)["regions"] if r["source"] == "reviewer")
    page.fill("#extend-to", "10")
    page.click("#extend")
    page.wait_for_function(f"() => document.getElementById('status').textContent === 'added 7 box(es) to {added['id']}'")
    followed = next(r for r in api_media(page, 1)["regions"] if r["id"] == added["id"])
    assert [b[0] for b in followed["boxes"]] == list(range(3, 11))
    assert {b[5] for b in followed["boxes"]} == {"reviewer"}
    page.keyboard.press("End")
    page.keyboard.press("Home")
    page.keyboard.press("Shift+ArrowRight")
    page.wait_for_function("() => document.getElementById('frame-label').textContent.startsWith('frame 10 ')")
    shot(page, "video-edited")

    # Play runs on by itself; pause stops it.
    page.keyboard.press("Space")
    page.wait_for_function("() => parseInt(document.getElementById('frame-label').textContent.slice(6)) >= 13")
    page.keyboard.press("Space")
    page.wait_for_function("() => document.getElementById('play').textContent === 'Play'")
    page.keyboard.press("Home")
    page.keyboard.press("o")
    page.wait_for_function("() => document.getElementById('frame').src.includes('/frame/0.jpg?view=original')")
    shot(page, "video-original")
    page.keyboard.press("o")

    # Pick the last track on the timeline, remove the whole track with Shift+Delete.
    tracks = api_media(page, 1)["regions"]
    doomed = next(r for r in tracks if r["id"] not in (victim["id"], added["id"]))
    timeline = page.locator("#timeline").bounding_box()
    row = 1 + [r["id"] for r in tracks].index(doomed["id"])
    first_frame = doomed["boxes"][0][0]
    x = 48 + (timeline["width"] - 48) * (first_frame + 0.5) / media["frame_count"]
    page.mouse.click(timeline["x"] + x, timeline["y"] + 16 * row + 8)
    page.wait_for_function(f"() => document.getElementById('selected-info').textContent.startsWith('Selected {doomed['id']}:')")
    page.keyboard.press("Shift+Delete")
    page.wait_for_function(f"() => !document.querySelector(\"#region-list li[data-region='{doomed['id']}']\")")
    assert doomed["id"] not in [r["id"] for r in api_media(page, 1)["regions"]]

    export(page)
    rendered = [f.to_ndarray(format="rgb24").astype(int) for f in av.open(str(folder / "out" / VIDEO.name)).decode(video=0)]
    source = [f.to_ndarray(format="rgb24").astype(int) for f in av.open(str(VIDEO)).decode(video=0)]
    assert len(rendered) == media["frame_count"]
    h, w = rendered[0].shape[:2]
    for frame in (3, 10):  # the drawn box, and where the tracker carried it
        box = next(b for b in followed["boxes"] if b[0] == frame)[1:5]
        assert rendered[frame][box_mask(w, h, box)].mean() < 30
    # The deleted box: only pixels no other track hides in frame 3 must be the original's.
    hidden = np.zeros((h, w), bool)
    for region in api_media(page, 1)["regions"]:
        for b in region["boxes"]:
            if b[0] == 3:
                hidden[int(b[2]):int(b[4]) + 1, int(b[1]):int(b[3]) + 1] = True
    rows, cols = box_mask(w, h, victim_box)
    free = ~hidden[rows, cols]
    assert free.sum() > 50
    assert abs(rendered[3][rows, cols][free].mean() - source[3][rows, cols][free].mean()) < 8

    report = json.loads((folder / "review.veil-report.json").read_text())
    video = report["files"][1]
    entry = next(r for r in video["regions"] if r["id"] == added["id"])
    assert entry["source"] == "reviewer" and entry["frame_ranges"] == [[3, 10]] and entry["origins"] == {"reviewer": 8}
    assert [e["action"] for e in entry["edits"]] == ["add_region", "extend"]
    assert any(e["action"] == "delete_box" and e["region"] == victim["id"] for e in video["edits"])
    assert doomed["id"] in video["deleted_regions"]
    assert video["output_sha256"] and (folder / "review.veil-report.html").exists()


def test_views_of_the_intel_clips_for_the_readme(browser, tmp_path):
    """The README's screenshots, from the CC BY 4.0 Intel clips only (never other data)."""
    clip = INTEL / "head-pose-face-detection-female-and-male.mp4"
    still = tmp_path / "walking-and-pause.png"  # a photo made from a CC BY 4.0 clip's frame
    with av.open(str(INTEL / "face-demographics-walking-and-pause.mp4")) as container:
        frames = list(container.decode(video=0))
        frames[len(frames) * 2 // 3].to_image().save(still)
    session = open_session([still, clip], None, tmp_path / "views.veil-plan.json", tmp_path / "out", None,
                           RenderSettings(), Analysis(FAST))
    server = ReviewServer(session)
    server.start()
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(server.url)
        page.locator(".card[data-index='0']").click()
        page.wait_for_selector("#overlay .region")
        page.locator("#overlay .region").last.click()  # the topmost, where heads overlap
        page.wait_for_function("() => document.getElementById('frame').complete")
        photo_view = shot(page, "readme-photo-view")
        page.goto(server.url)
        page.locator(".card[data-index='1']").click()
        page.wait_for_selector("#video-controls:not([hidden])")
        for _ in range(20):
            page.keyboard.press("ArrowRight")
        page.wait_for_function("() => document.getElementById('frame-label').textContent.startsWith('frame 20 ')")
        page.locator("#overlay .region").last.click()  # the topmost, where heads overlap
        page.wait_for_function("() => document.getElementById('frame').complete")
        video_view = shot(page, "readme-video-view")
    finally:
        page.close()
        server.stop()
    if os.environ.get("VEIL_UPDATE_DOCS") == "1":
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copy(photo_view, ROOT / "docs" / "review-photo.png")
        shutil.copy(video_view, ROOT / "docs" / "review-video.png")


# --- speech -------------------------------------------------------------------------------

SPEECH_RGB = (0x2E, 0xC4, 0xC4)  # app.js SPEECH_COLOUR
KEPT_RGB = (0xC8, 0xC8, 0xC8)


@pytest.fixture(scope="module")
def speech_plan(tmp_path_factory) -> tuple[Path, list[tuple[float, float]]]:
    """A video and a WAV, each with three readings between tones, detected once with --voice mute."""
    folder = tmp_path_factory.mktemp("speech")
    spans = speech_support.detected_media(folder)
    return folder / "plan.json", spans


@pytest.fixture
def speech_served(speech_plan, tmp_path: Path) -> Iterator[tuple[ReviewServer, Path]]:
    plan = tmp_path / "review.veil-plan.json"
    shutil.copy(speech_plan[0], plan)
    server = ReviewServer(open_session([], plan, None, tmp_path / "out", None, RenderSettings(), Analysis(FAST)))
    server.start()
    try:
        yield server, tmp_path
    finally:
        server.stop()


def speech_lane_x(page, media: dict, seconds: float) -> float:
    """Where a time lies on the speech lane, in the canvas's own pixels (left edge = 0)."""
    width = page.locator("#timeline").bounding_box()["width"]
    if media["kind"] == "audio":
        at, length = seconds, media["sound_seconds"]
    else:  # a video's axis is its frames
        at, length = sum(t <= seconds for t in media["frame_times"]) - 0.5, media["frame_count"]
    return 48 + (width - 48) * at / length


def lane_colour(page, x: float, row: int) -> tuple[int, int, int]:
    """The timeline's colour at x in a row (16 px rows)."""
    return tuple(page.evaluate(
        """([x, y]) => { const c = document.getElementById('timeline'); const s = window.devicePixelRatio || 1;
        return Array.from(c.getContext('2d').getImageData(Math.round(x * s), Math.round(y * s), 1, 1).data.slice(0, 3)); }""",
        [x, 16 * row + 8]))


def click_segment(page, media: dict, segment: dict, row: int) -> None:
    timeline = page.locator("#timeline").bounding_box()
    x = speech_lane_x(page, media, (segment["start"] + segment["end"]) / 2)
    page.mouse.click(timeline["x"] + x, timeline["y"] + 16 * row + 8)
    page.wait_for_function(f"() => document.getElementById('selected-info').textContent.startsWith('Selected {segment['id']}:')")


def test_video_speech_lane_keep_delete_add_export(page, speech_served, speech_plan):
    server, folder = speech_served
    _, spans = speech_plan
    media = open_file(page, server, 0)
    page.wait_for_selector("#speech-options:not([hidden])")
    assert page.locator("#voice-mode").text_content().startswith("voices: mute:")
    first, second, third = media["speech"]
    for segment in media["speech"]:  # the speech lane (row 1, under the frames row) shows each segment
        assert lane_colour(page, speech_lane_x(page, media, (segment["start"] + segment["end"]) / 2), 1) == SPEECH_RGB
    assert lane_colour(page, speech_lane_x(page, media, 0.5), 1) != SPEECH_RGB  # the tone before: no speech
    shot(page, "speech-video-planned")

    # Click the second segment: it is selected and the frames go to its start.
    click_segment(page, media, second, 1)
    start_frame = sum(t <= second["start"] for t in media["frame_times"]) - 1
    page.wait_for_function(f"() => document.getElementById('frame-label').textContent.startsWith('frame {start_frame} ')")
    # Keep it audible: refused without a reason, then given one.
    page.click("#keep-audible")
    page.wait_for_selector("#status.error")
    page.fill("#reason", "the host, consented in writing")
    page.click("#keep-audible")
    page.wait_for_function("() => document.getElementById('keep-audible').textContent === 'Treat again'")
    assert lane_colour(page, speech_lane_x(page, media, (second["start"] + second["end"]) / 2), 1) == KEPT_RGB

    # The third is music, say: deleted with the Delete key.
    click_segment(page, media, third, 1)
    page.keyboard.press("Delete")
    page.wait_for_function("() => document.getElementById('selection').textContent.includes('Click a region')")
    assert [s["id"] for s in api_media(page, 0)["speech"]] == ["speech1", "speech2"]
    assert page.text_content("#status").startswith(f"deleted {third['id']}: it will not be treated")

    # A missed one: added from two times, then its end moved; undo and redo the move.
    page.fill("#new-start", "0.3")
    page.fill("#new-end", "1.1")
    page.click("#add-segment")
    page.wait_for_function("() => document.getElementById('status').textContent === 'added speech4'")
    page.fill("#segment-end", "1.2")
    page.click("#set-times")
    page.wait_for_function("() => document.getElementById('status').textContent.startsWith('speech4 now')")
    page.click("#undo")
    page.wait_for_function("() => document.getElementById('status').textContent === 'undid set_segment of speech4'")
    page.keyboard.press("Control+Shift+Z")
    page.wait_for_function("() => document.getElementById('status').textContent === 'redid set_segment of speech4'")
    shot(page, "speech-video-edited")

    saved = Plan.load(folder / "review.veil-plan.json")
    speech = {r.id: r for r in saved.media[0].regions if r.kind == "speech"}
    assert set(speech) == {"speech1", "speech2", "speech4"}
    assert (speech["speech4"].start, speech["speech4"].end, speech["speech4"].source) == (0.3, 1.2, "reviewer")
    assert speech["speech2"].keep_visible and speech["speech2"].reason == "the host, consented in writing"

    export(page)
    out = speech_support.read_sound(folder / "out" / "clip.mkv")
    source, _ = speech_support.speech_sound()
    loud = [speech_support.loudness(out, a + 0.2, b - 0.2) for a, b in spans]
    was = [speech_support.loudness(source, a + 0.2, b - 0.2) for a, b in spans]
    assert loud[0] < 0.01 * was[0]  # left as detected: muted
    assert loud[1] == pytest.approx(was[1], rel=0.05)  # kept audible
    assert loud[2] == pytest.approx(was[2], rel=0.05)  # deleted
    assert speech_support.loudness(out, 0.4, 1.1) < 0.001  # added: the tone there is muted
    assert speech_support.loudness(out, 13.6, 13.9) == pytest.approx(0.05 / 2 ** 0.5, rel=0.05)

    report = json.loads((folder / "review.veil-report.json").read_text())
    voice = report["files"][0]["voice"]
    assert voice["mode"] == "mute" and voice["segments"] == [[0.3, 1.2], [speech["speech1"].start, speech["speech1"].end]]
    assert voice["kept_audible"] == [{"id": "speech2", "start": second["start"], "end": second["end"],
                                      "reason": "the host, consented in writing"}]
    assert voice["added_by_reviewer"] == ["speech4"] and report["files"][0]["deleted_regions"] == ["speech3"]
    assert "KEPT AUDIBLE: speech2" in (folder / "review.veil-report.html").read_text()


def test_speech_times_count_from_the_files_start(page, speech_plan, tmp_path: Path):
    # A video whose sound starts a second after its picture: the page showed and took speech times
    # from the sound's first sample, where its frame label and the report count from the file's
    # start, so a time copied from the report placed a segment a second off (its speech audible).
    stored = Plan.load(speech_plan[0])
    stored.media[0].detection["speech"]["sound_origin"] = 1.0
    stored.save(tmp_path / "review.veil-plan.json")
    server = ReviewServer(open_session([], tmp_path / "review.veil-plan.json", None, tmp_path / "out", None,
                                       RenderSettings(), Analysis(FAST)))
    server.start()
    try:
        media = open_file(page, server, 0)
        assert media["kind"] == "video" and media["file_start"] == 0
        page.fill("#reason", "missed")
        page.fill("#new-start", "2.30")
        page.fill("#new-end", "3.10")
        page.click("#add-segment")
        page.wait_for_function("() => document.getElementById('status').textContent.startsWith('added ')")
        added = max(api_media(page, 0)["speech"], key=lambda segment: segment["source"] == "reviewer")
        assert (added["start"], added["end"]) == pytest.approx((1.3, 2.1))  # on the sound's own clock
        # Selected, it is listed as typed.
        page.wait_for_function("() => document.getElementById('segment-list').textContent.includes('2.30 s-3.10 s')")
    finally:
        server.stop()


def test_sound_file_review_has_a_timeline_and_a_player(page, speech_served):
    server, folder = speech_served
    media = open_file(page, server, 1)
    assert media["kind"] == "audio"
    page.wait_for_selector("#speech-options:not([hidden])")
    assert page.locator("#stage").is_hidden() and page.locator("#transport").is_hidden()
    assert page.locator("#sound").is_visible()
    for segment in media["speech"]:  # a sound file's timeline is its speech lane only (row 0), in seconds
        assert lane_colour(page, speech_lane_x(page, media, (segment["start"] + segment["end"]) / 2), 0) == SPEECH_RGB
    first = media["speech"][0]
    click_segment(page, media, first, 0)
    page.wait_for_function(f"() => document.getElementById('frame-label').textContent.startsWith('{first['start']:.2f} s')")
    # The player gets the original sound from the server (same token, same origin) and plays the segment.
    page.click("#play-segment")
    page.wait_for_function("() => document.getElementById('sound').readyState >= 1")
    shot(page, "speech-sound-file")
    page.keyboard.press("Delete")
    page.wait_for_function("() => !document.querySelector(\"#segment-list li[data-segment='speech1']\")")
    assert [s["id"] for s in api_media(page, 1)["speech"]] == ["speech2", "speech3"]
    edits = Plan.load(folder / "review.veil-plan.json").edits
    assert [(e.action, e.region) for e in edits] == [("delete_region", "speech1")]


def test_a_second_window_follows_the_plan_and_undo_stays_on_the_file_shown(page, served):
    # A tab left open kept showing a region deleted in another as hidden; and Ctrl+Z on one
    # photo undid a box drawn on another, out of sight.
    server, _ = served
    open_file(page, server, 0)
    page.wait_for_function("() => document.querySelectorAll('#overlay .region').length === 2")
    other = page.context.new_page()
    other.set_default_timeout(TIMEOUT_MS)
    open_file(other, server, 0)
    other.wait_for_function("() => document.querySelectorAll('#overlay .region').length === 2")
    other.click("#overlay .region[data-region='f1']")
    other.keyboard.press("Delete")
    other.wait_for_function("() => document.querySelectorAll('#overlay .region').length === 1")
    page.wait_for_function("() => document.querySelectorAll('#overlay .region').length === 1")
    assert "changed in another window" in page.inner_text("#status")
    other.close()
    # The deletion was made on the photo; on the video, Ctrl+Z names it instead of undoing it.
    page.click("#to-gallery")
    page.locator(".card[data-index='1']").click()
    page.wait_for_function("() => document.getElementById('frame').src.includes('/media/1/')")
    with page.expect_request("**/api/undo") as sent:
        page.keyboard.press("Control+Z")
    page.wait_for_selector("#status.error")
    assert "open it to undo it" in page.inner_text("#status")
    assert [r["id"] for r in api_media(page, 0)["regions"]] == ["f2"]
    # The undo names the revision the page showed: after another window's change the server
    # refuses it, rather than undo that change in its place.
    assert sent.value.post_data_json == {"media": 1, "revision": page.evaluate("S.state.revision")}


def test_a_video_of_non_square_pixels_is_shown_as_players_show_it(page, tmp_path):
    """Stored squeezed to half its width (a 2:1 sample aspect ratio), the picture was shown
    squeezed: the reviewer judged a picture nobody will see in that shape. It is shown stretched,
    and the boxes drawn over it stretch with it."""
    from fractions import Fraction

    source = tmp_path / "anamorphic.mp4"
    with av.open(str(VIDEO)) as given, av.open(str(source), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        first = None
        for index, frame in enumerate(given.decode(video=0)):
            if index == 8:
                break
            if first is None:
                first = frame
                stream.width, stream.height, stream.pix_fmt = frame.width // 2, frame.height, "yuv420p"
                stream.codec_context.sample_aspect_ratio = Fraction(2, 1)
            squeezed = frame.reformat(width=frame.width // 2, height=frame.height, format="yuv420p")
            squeezed.pts = None
            out.mux(stream.encode(squeezed))
        out.mux(stream.encode())
    session = open_session([source], None, tmp_path / "plan.json", tmp_path / "out", None, RenderSettings(),
                           Analysis(FAST))
    server = ReviewServer(session)
    server.start()
    try:
        page.goto(server.url)  # one file: the page opens it at once
        page.wait_for_selector("#viewer:not([hidden])")
        media = api_media(page, 0)
        assert media["shown"] == [2 * media["width"], media["height"]]
        shown = page.locator("#frame").bounding_box()
        overlay = page.locator("#overlay").bounding_box()
        assert shown["width"] / shown["height"] == pytest.approx(2 * media["width"] / media["height"], rel=0.02)
        assert (overlay["width"], overlay["height"]) == pytest.approx((shown["width"], shown["height"]), abs=1)
        shot(page, "anamorphic")
    finally:
        server.stop()
