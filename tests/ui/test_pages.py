"""The pages in a real browser (Debian's chromium): the published modules and the ran sweep
of ``conftest.ui_site``, driven as a person would, with a screenshot of each page."""

from __future__ import annotations

from typing import Any

import httpx
from ui_site import Shots, Site, sign_in

FAILED_RED = "rgb(220, 38, 38)"  # ui.css --failed
STROKES = {
    "executed": "rgb(22, 163, 74)",
    "reused": "rgb(37, 99, 235)",
    "failed": FAILED_RED,
    "skipped": "rgb(156, 163, 175)",
}


def test_search_finds_a_module(ui_site: Site, page: Any, snap: Shots) -> None:
    page.goto(ui_site.url)
    snap(page, "index")
    page.fill("#q", "train")
    page.press("#q", "Enter")
    page.wait_for_url("**/?q=train")
    cards = page.locator("#modules .card .title")
    assert cards.all_inner_texts() == [f"{ui_site.team}/train"]
    snap(page, "search")


def test_module_page_shows_versions_interface_and_the_yanked_one(
    ui_site: Site, page: Any, snap: Shots
) -> None:
    page.goto(f"{ui_site.url}/modules/{ui_site.team}/prep")
    versions = page.locator("#versions li")
    assert versions.locator("> a").all_inner_texts() == ["1.2.0", "1.1.0", "1.0.0"]
    yanked = page.locator("#versions li.v-yanked")
    assert yanked.locator("> a").inner_text() == "1.2.0"
    assert "yanked" in yanked.locator(".badge").inner_text()
    assert "normalises twice; use 1.1.0" in yanked.inner_text()
    assert "highest stable version" in page.locator("#why").inner_text()  # 1.1.0, not 1.2.0
    params = page.locator("#interface tbody tr").all_inner_texts()
    assert any("size" in row and "int" in row and "8" in row for row in params)
    assert any("scale" in row and "float" in row for row in params)
    assert page.input_value("#uses-line") == f"uses: {ui_site.team}/prep@^1.1.0"
    commit = page.locator(
        "#versions li.v-active a[href^='https://github.com/example/prep/commit/']"
    )
    assert commit.count() == 2
    assert page.locator(".facts dd").last.inner_text() == ui_site.team  # the token's team
    used_by = page.locator("#dependents tbody tr").all_inner_texts()
    assert used_by and all("ui-demo" in row for row in used_by), "the sweep's pipeline uses it"
    snap(page, "module")


def test_version_page_shows_what_changed(ui_site: Site, page: Any, snap: Shots) -> None:
    page.goto(f"{ui_site.url}/modules/{ui_site.team}/prep/1.1.0")
    changes = page.locator("#changes")
    assert "since 1.0.0" in changes.locator("h2").inner_text()
    rows = changes.locator("tbody tr").all_inner_texts()
    assert len(rows) == 1 and "params.scale" in rows[0] and "added" in rows[0]
    snap(page, "version")
    page.goto(f"{ui_site.url}/modules/{ui_site.team}/train")
    assert "Fits the model on the prepared data" in page.locator("#readme pre").inner_text()


def test_run_graph_colours_each_step_and_a_click_shows_its_log(
    ui_site: Site, page: Any, snap: Shots
) -> None:
    sign_in(page, ui_site.url, ui_site.env.tokens["reader"])
    run = ui_site.run_with(0.9)
    page.goto(f"{ui_site.url}/runs/{run['run']}")
    nodes = page.locator("#graph .node")
    assert nodes.count() == 3
    statuses = {step: record["status"] for step, record in run["steps"].items()}
    assert statuses["train"] == "failed" and statuses["report"] == "skipped"
    for step, status in statuses.items():
        node = page.locator(f"#graph .node[data-step='{step}']")
        assert status in node.get_attribute("class")
        stroke = node.locator("rect").evaluate("rect => getComputedStyle(rect).stroke")
        assert stroke == STROKES[status], (step, status, stroke)
    page.click("#graph .node[data-step='train']")
    panel = page.locator("#step-train")
    assert panel.is_visible() and not page.locator("#step-report").is_visible()
    log = panel.locator("pre.log").inner_text()
    assert "epoch 59" in log and "epoch 0 " not in log  # the tail of a 61-line log
    snap(page, "run-failed")
    with page.expect_navigation():
        panel.locator("a", has_text="The whole log").click()
    whole = page.inner_text("body")
    assert "learning rate 0.9 diverged" in whole and "epoch 0 lr 0.9" in whole
    page.goto(f"{ui_site.url}/runs/{ui_site.run_with(0.3)['run']}")
    page.focus("#graph .node[data-step='report']")
    page.keyboard.press("Enter")
    assert page.locator("#step-report").is_visible()
    snap(page, "run-succeeded")


def test_sweep_page_sorts_by_a_metric_and_draws_the_chart(
    ui_site: Site, page: Any, snap: Shots
) -> None:
    sign_in(page, ui_site.url, ui_site.env.tokens["reader"])
    page.goto(f"{ui_site.url}/sweeps/{ui_site.sweep['sweep']}")
    assert page.locator("#comparison tbody tr").count() == 3
    page.click("#comparison th >> text=train.accuracy")
    page.wait_for_url("**sort=train.accuracy**")
    column = page.locator("#comparison thead th").all_inner_texts()
    index = next(i for i, name in enumerate(column) if name.startswith("train.accuracy"))
    cells = page.locator(f"#comparison tbody tr td:nth-child({index + 1})").all_inner_texts()
    assert cells == ["1", "0.8", "–"]  # descending; the failed run has none, last
    lr = page.locator("#comparison tbody tr td:nth-child(4)").all_inner_texts()  # #, run, status
    assert lr == ["0.3", "0.1", "0.9"]
    canvas = page.locator("#chart canvas")
    assert canvas.count() == 1 and canvas.bounding_box()["width"] > 300
    assert page.locator("#chart .u-legend").inner_text().count("train.accuracy") == 1
    page.select_option("#metric", "train.loss")
    assert "train.loss" in page.locator("#chart .u-legend").inner_text()
    snap(page, "sweep")


def test_runs_page_filters_by_status(ui_site: Site, page: Any, snap: Shots) -> None:
    sign_in(page, ui_site.url, ui_site.env.tokens["reader"])
    page.goto(f"{ui_site.url}/runs")
    assert page.locator("#runs tbody tr").count() == 3
    page.select_option("select[name=status]", "failed")
    page.click("form.filters button")
    page.wait_for_url("**status=failed**")
    rows = page.locator("#runs tbody tr")
    assert rows.count() == 1 and ui_site.run_with(0.9)["run"] in rows.inner_text()
    snap(page, "runs")


def test_a_phone_sees_one_column(ui_site: Site, browser: Any, snap: Shots) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        page = context.new_page()
        page.goto(f"{ui_site.url}/modules/{ui_site.team}/prep")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page scrolls sideways on a phone: {width}px"
        snap(page, "module-phone")
    finally:
        context.close()


def test_unknown_pages_and_runs_without_a_token(ui_site: Site, page: Any, snap: Shots) -> None:
    answer = page.goto(f"{ui_site.url}/modules/{ui_site.team}/nothing")
    assert answer.status == 404 and f"no module {ui_site.team}/nothing" in page.inner_text("main")
    snap(page, "not-found")
    answer = page.goto(f"{ui_site.url}/runs")
    assert answer.status == 401 and page.locator("#token").is_visible()
    snap(page, "runs-signed-out")
    assert (
        httpx.get(f"{ui_site.url}/no/such/page", headers={"accept": "text/html"}).status_code == 404
    )
