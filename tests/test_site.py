"""The course site. nbs/sidebar.yml lists every notebook; scripts/build_site.py builds the offline site from an
executed chapter, passing each notebook through nbdev's processing cleanly; headless Chromium shows its plots,
tables and folded solutions (screenshots in the test's temporary folder); scripts/docs.sh refuses without Quarto."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / "nbs"
CHAPTER, PAGE = "01_embeddings", "embeddings.html"     # ~10 s to run; plots, markdown tables, math, solutions
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def sidebar_names() -> list[str]:
    def walk(items):
        for item in items:
            yield from walk(item["contents"]) if isinstance(item, dict) else [Path(item).stem]
    return list(walk(yaml.safe_load((NBS / "sidebar.yml").read_text())["website"]["sidebar"]["contents"]))


def test_the_sidebar_lists_every_notebook_in_order():
    notebooks = sorted(p.stem for p in NBS.glob("*.ipynb") if p.stem != "index")
    assert sidebar_names() == ["index", *notebooks]
    assert "custom_sidebar = True" in (ROOT / "settings.ini").read_text(), "else nbdev_docs rewrites sidebar.yml"
    assert "sidebar.yml" in yaml.safe_load((ROOT / "_quarto.yml").read_text())["metadata-files"]


def build(*args, timeout=300):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "build_site.py"), *map(str, args)],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def fake_run(runs: Path, name: str, stamp: str, finished: bool, raised=False, rank1_ok=None):
    "A run folder as run_chapter.sh leaves it, with a notebook papermill finished (or not), and a rank's status."
    folder = runs / name / stamp
    folder.mkdir(parents=True)
    pm = {"end_time": "2999-01-01T00:00:00" if finished else None, "exception": raised}
    rank0 = ".rank0" if rank1_ok is not None else ""
    (folder / f"{name}{rank0}.ipynb").write_text(json.dumps({"metadata": {"papermill": pm}, "cells": []}))
    if rank1_ok is not None:
        (folder / "status.rank1.json").write_text(json.dumps({"rank": 1, "ok": rank1_ok}))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The offline site, with CHAPTER run for it by run_chapter.sh, next to newer runs that must not be shown
    (they failed or are still running); every other notebook is shown unexecuted."""
    tmp = tmp_path_factory.mktemp("site")
    runs = tmp / "runs"
    fake_run(runs, CHAPTER, "29990101-000000", finished=True, raised=True)          # a cell raised
    fake_run(runs, CHAPTER, "29990102-000000", finished=True, rank1_ok=False)       # rank 1 failed
    fake_run(runs, CHAPTER, "29990103-000000", finished=False)                      # still running
    fake_run(runs, "02_attention", "29990101-000000", finished=True, raised=True)
    r = build("--out", tmp / "site", "--runs", runs, "--run", CHAPTER)
    run = list(runs.glob(f"{CHAPTER}/2[0-8]*/{CHAPTER}.ipynb"))
    assert run and (tmp / "site" / "index.html").exists(), r.stderr[-3000:]
    (tmp / "screenshots").mkdir()
    print(f"site and screenshots: {tmp}")
    return {"dir": tmp / "site", "shots": tmp / "screenshots", "log": r, "run": run[0]}


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.fail("Chromium is not installed: run `bash scripts/install_chromium.sh` (scripts/test.sh does)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,1000", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    yield driver
    driver.quit()


def visible(driver, css) -> list:
    "Elements matching `css` that the page really draws (checkVisibility is false inside a closed <details>)."
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].filter(e => e.checkVisibility({visibilityProperty: true})"
        " && e.getBoundingClientRect().width > 0 && e.getBoundingClientRect().height > 0)", css)


def shoot(driver, element, path):
    driver.execute_script("arguments[0].scrollIntoView()", element)
    element.screenshot(str(path))


def test_every_notebook_passes_nbdevs_processing_cleanly(site):
    problems = [l for l in site["log"].stderr.splitlines() if l.startswith(("error", "warning"))]
    assert not problems and site["log"].returncode == 0, "\n".join(problems) or site["log"].stderr[-3000:]


def test_an_executed_chapter_shows_its_plots_tables_and_folded_solutions(site, browser):
    source = json.loads((NBS / f"{CHAPTER}.ipynb").read_text())
    executed = json.loads(site["run"].read_text())
    title = re.match(r"# (.+)", "".join(source["cells"][0]["source"]))[1]
    browser.get((site["dir"] / PAGE).as_uri())
    browser.save_screenshot(str(site["shots"] / f"{CHAPTER}.png"))

    assert browser.title == title
    assert browser.find_element("css selector", "h1.title").text == title         # from the front matter
    banners = [b.text for b in browser.find_elements("css selector", ".banner.executed, .banner.unexecuted")]
    assert banners == [f"Outputs from {site['run']}."], "the newest run that succeeded, not a newer failed one"

    plots = [o for c in executed["cells"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    imgs = visible(browser, ".jp-OutputArea img")
    assert plots and len(imgs) == len(plots)
    assert all(browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", i)
               for i in imgs)
    shoot(browser, imgs[0], site["shots"] / f"{CHAPTER}-plot.png")

    tables = visible(browser, ".jp-RenderedMarkdown table")
    assert tables and all(len(t.find_elements("css selector", "tr")) > 1 for t in tables)
    shoot(browser, tables[0], site["shots"] / f"{CHAPTER}-table.png")
    assert visible(browser, ".jp-RenderedMarkdown math"), "math is drawn as MathML, with no network"

    summaries = [re.search(r'#\| code-summary: "(.+)"', "".join(c["source"]))[1] for c in source["cells"]
                 if "".join(c["source"]).startswith("#| code-fold: true")]       # each exercise's solution and check
    folds = browser.find_elements("css selector", "details.code-fold")
    assert "Solution" in summaries and [f.find_element("css selector", "summary").text for f in folds] == summaries
    assert all(f.get_attribute("open") is None for f in folds)
    assert "rejects(" not in browser.page_source, "the cells feeding checks wrong answers are hidden"
    assert not visible(browser, "details.code-fold .jp-InputArea"), "solutions are folded"
    folds[0].find_element("css selector", "summary").click()
    assert len(visible(browser, "details.code-fold .jp-InputArea")) == 1, "a click unfolds one"
    shoot(browser, folds[0], site["shots"] / f"{CHAPTER}-solution.png")

    text = browser.find_element("tag name", "body").get_attribute("textContent")
    assert "#|" not in text and "site-packages" not in text                  # no directives, no library noise


def test_a_chapter_without_a_run_says_how_to_run_it(site, browser):
    browser.get((site["dir"] / "attention.html").as_uri())
    browser.save_screenshot(str(site["shots"] / "02_attention.png"))
    banner = browser.find_element("css selector", ".banner.unexecuted").text
    assert "bash scripts/run_chapter.sh 02_attention" in banner
    assert not visible(browser, ".jp-OutputArea img")


def test_the_home_page_links_every_chapter(site, browser):
    browser.get((site["dir"] / "index.html").as_uri())
    browser.save_screenshot(str(site["shots"] / "index.png"))
    links = [a.get_attribute("href") for a in browser.find_elements("css selector", ".site-nav a")]
    assert len(links) == len(sidebar_names())
    assert all(Path(link.removeprefix("file://")).is_file() for link in links)
    assert not [a for a in browser.find_elements("css selector", "main a") if ".ipynb" in a.get_attribute("href")]


def test_build_site_rejects_bad_input_in_one_line(tmp_path):
    r = build("--out", tmp_path, "--run", "no_such_chapter")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.startswith("error: no notebook named 'no_such_chapter'")


def test_docs_refuses_without_quarto(tmp_path):
    path = "/usr/bin:/bin"
    if any(Path(d, "quarto").exists() for d in path.split(":")):
        pytest.skip("quarto is installed in /usr/bin or /bin")
    r = subprocess.run(["bash", str(ROOT / "scripts" / "docs.sh")], cwd=ROOT, capture_output=True, text=True,
                       env={**os.environ, "PATH": path}, timeout=60)
    lines = (r.stdout + r.stderr).strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, lines
    assert "Quarto is not installed" in lines[0] and "scripts/build_site.py" in lines[0]
