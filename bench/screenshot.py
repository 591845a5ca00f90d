"""Take the README's screenshot of the real app, in the same headless Chromium
the tests use: `python bench/screenshot.py docs/screenshot.png`."""

from __future__ import annotations

import sys
from pathlib import Path

from webapp import CHROMIUM, FLAGS, ask_in_page, running_app


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshot.png")
    from playwright.sync_api import sync_playwright

    with running_app() as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 820})
        page.goto(url)
        page.wait_for_selector("#question textarea")
        ask_in_page(page, "How much is Amazon investing in OpenAI?")
        ask_in_page(page, "And how much comes later?")
        page.wait_for_timeout(300)
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out))
        browser.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
