"""The dashboard (GET /) and the API page (GET /docs) in a real browser: headless Chromium from
Debian (`chromium`, `chromium-driver`) driven by Selenium (PyPI, pinned in scripts/python-env.sh).
The endpoint has an API key, so the page must ask for it; then a textgen job submitted through the
form streams its tokens into the job view and the counters change. A screenshot of the page is
written to $PODWORKER_ARTIFACTS (CTest: <build>/artifacts/dashboard.png).

Skips, saying so, only when Chromium cannot start here.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import requests
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from observability import scrape, serve_textgen

API_KEY = "dashboard-test-key"
WAIT_S = 30


def artifacts_dir(tmp_path: Path) -> Path:
    directory = Path(os.environ.get("PODWORKER_ARTIFACTS") or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture
def browser(tmp_path: Path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.skip("Chromium cannot start: chromium and chromium-driver are not installed (scripts/setup.sh)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1500", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
    except WebDriverException as e:
        pytest.skip(f"Chromium cannot start: {e.msg or e}")
    driver.set_page_load_timeout(WAIT_S)
    yield driver
    driver.quit()


def wait(driver, condition, what: str):
    return WebDriverWait(driver, WAIT_S, poll_frequency=0.1).until(
        lambda d: condition(d), message=f"timed out after {WAIT_S} s waiting for {what}")


def last_chunk(origin: str, job_id: str) -> dict:
    """The last chunk of a job's stream, read again from the start over SSE."""
    headers = {"Authorization": f"Bearer {API_KEY}", "Accept": "text/event-stream"}
    with requests.get(f"{origin}/stream/{job_id}", headers=headers, stream=True, timeout=30) as r:
        chunks = [json.loads(line[len(b"data: "):])["output"] for line in r.iter_lines()
                  if line.startswith(b"data: {\"output\"")]
    assert chunks, "the job streamed nothing"
    return chunks[-1]


def text_of(driver, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).text


def test_dashboard_runs_a_textgen_job_live(tmp_path: Path, children, browser):
    served = serve_textgen(tmp_path, children, API_KEY)
    origin = served.endpoint.origin
    browser.get(origin + "/")

    # The endpoint has a key: the page asks for it, and works once given it.
    key_form = browser.find_element(By.ID, "key-form")
    wait(browser, lambda d: key_form.is_displayed(), "the page to ask for the API key")
    browser.find_element(By.ID, "key-input").send_keys(API_KEY)
    key_form.find_element(By.TAG_NAME, "button").click()
    wait(browser, lambda d: not key_form.is_displayed(), "the key form to go")
    wait(browser, lambda d: text_of(d, "tile-completed") == "0", "the counters to load")
    wait(browser, lambda d: text_of(d, "tile-workers") == "1 / 0", "the worker to show as idle")
    assert text_of(browser, "tile-queue") == "0"

    # Submit a textgen job through the form; its tokens stream into the job view.
    body = {"input": {"prompt": "Tell me about GPUs.", "max_tokens": 24, "temperature": 0.8, "seed": 7}}
    Select(browser.find_element(By.ID, "submit-route")).select_by_value("run")
    box = browser.find_element(By.ID, "submit-input")
    box.clear()
    box.send_keys(json.dumps(body))
    browser.find_element(By.ID, "submit-button").click()
    wait(browser, lambda d: text_of(d, "submit-message").startswith("queued as "), "the job to be queued")
    job_id = text_of(browser, "submit-message").removeprefix("queued as ")
    assert text_of(browser, "job-id") == job_id
    wait(browser, lambda d: text_of(d, "job-stream") != "", "tokens in the job view")
    wait(browser, lambda d: text_of(d, "job-status") == "COMPLETED", "the job to complete")

    # What the page streamed is what the job generated (its last chunk sums it up).
    final = last_chunk(origin, job_id)
    assert final["done"] is True
    assert final["output_tokens"] >= 1
    streamed = browser.find_element(By.ID, "job-stream").get_attribute("textContent")
    assert streamed == final["full_text"]
    wait(browser, lambda d: text_of(d, "job-output") != "", "the result in the job view")
    assert text_of(browser, "job-execution") != "–"

    # The counters and the recent-jobs table follow.
    wait(browser, lambda d: text_of(d, "tile-completed") == "1", "the completed counter to reach 1")
    rows = wait(browser, lambda d: [r for r in d.find_elements(By.CSS_SELECTOR, "#jobs-table tbody tr")
                                    if r.get_attribute("data-id") == job_id], "the job in the table")
    assert "COMPLETED" in rows[0].text
    assert scrape(f"{origin}/metrics", API_KEY).value("podworker_endpoint_jobs_finished_total",
                                                      status="COMPLETED") == 1
    # A second job through /runsync: the counter moves again without a reload.
    Select(browser.find_element(By.ID, "submit-route")).select_by_value("runsync")
    browser.find_element(By.ID, "submit-button").click()
    wait(browser, lambda d: text_of(d, "tile-completed") == "2", "the completed counter to reach 2")
    wait(browser, lambda d: text_of(d, "tile-rate") not in ("–", "0.00"), "a jobs/s rate")
    wait(browser, lambda d: text_of(d, "tile-latency").count("/") == 2 and "–" not in text_of(d, "tile-latency"),
         "latency percentiles")

    shot = artifacts_dir(tmp_path) / "dashboard.png"
    assert browser.save_screenshot(str(shot)), "the screenshot could not be written"
    assert shot.stat().st_size > 10_000
    print(f"dashboard screenshot: {shot}")
    # The first, keyless /metrics is refused by design: that is how the page learns it needs the key.
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"
              and not ("/metrics" in e["message"] and "401" in e["message"])]
    assert not errors, errors


def test_docs_page_lists_the_api_from_openapi_json(tmp_path: Path, children, browser):
    served = serve_textgen(tmp_path, children, API_KEY)
    browser.get(served.endpoint.origin + "/docs")
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "section.operation"), "the operations")
    spec = requests.get(served.endpoint.origin + "/openapi.json", timeout=10).json()
    plain = [p for p in spec["paths"] if not p.startswith("/v2/{endpoint_id}/")]
    headings = [h.text for h in browser.find_elements(By.CSS_SELECTOR, "section.operation h2")]
    for path in plain:
        for method in spec["paths"][path]:
            assert f"{method.upper()} {path}" in headings or f"{method} {path}" in headings, (method, path, headings)
    run = browser.find_element(By.ID, "op-" + spec["paths"]["/run"]["post"]["operationId"])
    assert "Queue a job" in run.text
    assert "Also served as /v2/{endpoint_id}/run" in run.text
    assert "application/json · Submission" in run.text  # the request body's schema, linked
    browser.save_screenshot(str(artifacts_dir(tmp_path) / "docs.png"))
