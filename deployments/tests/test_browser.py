"""The engineer's journey in headless Chromium: roll out, watch it live, see it roll back."""

import time

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def roll_out(page, base, service, tag, interval="0.5"):
    page.goto(f"{base}/deployments/")
    row = page.locator(f'tr[data-service="{service}"]')
    row.locator("summary", has_text="Roll out").click()
    row.locator("input[name=image_tag]").fill(tag)
    row.locator("input[name=interval_seconds]").fill(interval)
    row.locator("input[name=samples_per_step]").fill("2")
    row.locator("button[type=submit]").click()
    page.wait_for_url("**/deployments/rollouts/*/")
    page.wait_for_selector("#live-state[data-state=live]")
    page.evaluate("window.__notReloaded = true")


# A rollout that stopped moving by itself: finished, or paused by its analysis.
SETTLED = ", ".join(
    f"#status-badge.{status}"
    for status in ("promoted", "paused", "rolled_back", "aborted", "failed")
)
CANARY_POINTS = "((document.getElementById('chart-error_rate').data || [])[1] || {x: []}).x.length"


def canary_points(page) -> int:
    return page.evaluate(CANARY_POINTS)


def wait_for_canary_points(page, at_least: int, timeout_s: float = 30.0) -> None:
    """Poll the chart from the test side: the page's CSP forbids eval, and Playwright's
    wait_for_function evaluates its predicate with it inside the page."""
    deadline = time.monotonic() + timeout_s
    while canary_points(page) < at_least:
        assert time.monotonic() < deadline, (
            f"fewer than {at_least} canary points after {timeout_s} s"
        )
        page.wait_for_timeout(100)


def test_engineer_rolls_out_watches_live_and_pm_reads_only(
    page, live_asgi, login, engineer, pm, celery_worker, service, artifact
):
    login(page, engineer)
    roll_out(page, live_asgi, service.name, "v2")
    wait_for_canary_points(page, 2)
    assert page.evaluate("window.__notReloaded") is True  # samples arrived without a reload
    page.screenshot(path=artifact("rollout-progressing.png"), full_page=True)
    page.wait_for_selector("#status-badge.promoted", timeout=40000)
    assert page.evaluate("window.__notReloaded") is True
    assert canary_points(page) >= 8
    assert page.locator("#weight-text").inner_text() == "0%"
    assert page.locator("#actions button:not([hidden])").all_inner_texts() == []
    assert "promoted" in page.locator("#timeline").inner_text()
    page.screenshot(path=artifact("rollout-promoted.png"), full_page=True)

    roll_out(page, live_asgi, service.name, "v3-fault")
    page.wait_for_selector("#status-badge.rolled_back", timeout=40000)
    assert page.evaluate("window.__notReloaded") is True
    assert "error_rate" in page.locator("#reason").inner_text()
    assert page.locator("#judgement .verdict-fail").first.inner_text() == "fail"
    assert page.locator("#actions button:not([hidden])").all_inner_texts() == [
        "Retry as a new rollout"
    ]
    page.screenshot(path=artifact("rollout-rolled-back.png"), full_page=True)
    rollout_url = page.url

    page.get_by_text("Log out").click()
    page.wait_for_url("**/login/")
    login(page, pm)
    page.goto(rollout_url)
    page.wait_for_selector("#live-state[data-state=live]")
    assert page.locator("#actions").count() == 0
    assert "Read-only" in page.content()
    page.goto(f"{live_asgi}/deployments/")
    assert page.locator("summary:has-text('Roll out')").count() == 0
    page.screenshot(path=artifact("services-pm.png"), full_page=True)


def test_abort_button_asks_a_reason_and_the_socket_brings_the_result(
    page, live_asgi, login, engineer, celery_worker, service
):
    login(page, engineer)
    roll_out(page, live_asgi, service.name, "v2", interval="5")
    page.wait_for_selector("#weight-text:has-text('10%')")
    page.once("dialog", lambda dialog: dialog.accept("checking a bug"))
    page.locator("#actions button[data-action=abort]").click()
    page.wait_for_selector("#status-badge.aborted", timeout=20000)
    assert "checking a bug" in page.locator("#reason").inner_text()
    assert page.locator("#weight-text").inner_text() == "0%"


def test_statistical_judge_chosen_in_the_form_is_shown_on_the_page(
    page, live_asgi, login, engineer, celery_worker, service, artifact
):
    login(page, engineer)
    page.goto(f"{live_asgi}/deployments/")
    row = page.locator(f'tr[data-service="{service.name}"]')
    row.locator("summary", has_text="Roll out").click()
    row.locator("input[name=image_tag]").fill("v2")
    row.locator("input[name=interval_seconds]").fill("0.3")
    row.locator("input[name=samples_per_step]").fill("3")
    row.locator("select[name=judge]").select_option("statistical")
    row.locator("button[type=submit]").click()
    page.wait_for_url("**/deployments/rollouts/*/")
    page.wait_for_selector(SETTLED, timeout=120000)
    assert page.locator("#status-badge.promoted").count(), (
        page.locator("#status-badge").inner_text(),
        page.locator("#reason").inner_text(),
        page.locator("#timeline").inner_text(),
    )
    table = page.locator("#judgement").inner_text()
    assert "Statistical judge (last step): score 100, continue" in table
    assert "p99_ms" in table and "pass" in table
    assert "statistical judge: score 100" in page.locator("#timeline").inner_text()
    page.screenshot(path=artifact("rollout-statistical.png"), full_page=True)


def test_rollout_form_changes_templates_and_the_page_shows_each_result(
    page, live_asgi, login, engineer, celery_worker, service, artifact
):
    from deployments.services import metric_templates_ensure_defaults

    metric_templates_ensure_defaults(service=service)
    login(page, engineer)
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(f"{live_asgi}/deployments/")
    row = page.locator(f'tr[data-service="{service.name}"]')
    row.locator("summary", has_text="Roll out").click()
    row.locator("input[name=image_tag]").fill("v2")
    row.locator("input[name=interval_seconds]").fill("0.5")
    row.locator("input[name=samples_per_step]").fill("2")
    row.locator(".templates-form summary").click()
    row.locator("input[name='m-cpu_percent-dry_run']").check()
    row.locator("input[name='m-p99_ms-max_value']").fill("100")  # the simulated p99 is ~150 ms
    row.locator("input[name='m-p99_ms-failure_limit']").fill("3")
    page.screenshot(path=artifact("rollout-form-templates.png"), full_page=True)
    row.locator("button[type=submit]").click()
    page.wait_for_url("**/deployments/rollouts/*/")
    page.wait_for_selector("#status-badge.rolled_back", timeout=40000)
    p99 = page.locator('#judgement tr[data-template="p99_ms"]')
    assert "fail" in p99.inner_text() and "3/3" in p99.inner_text()
    assert "dry-run" in page.locator('#judgement tr[data-template="cpu_percent"]').inner_text()
    assert "canary failed analysis (p99_ms)" in page.locator("#timeline").inner_text()
    page.screenshot(path=artifact("rollout-templates.png"), full_page=True)
