"""Benchmark the web chat: time to the first streamed token in the browser
(warm), then 8 and 20 concurrent questions through gradio_client (p50 / p95, each
answer checked for its own fact), for each RAGCHAT_LLM_SLOTS value given, side by
side in one run (a fresh server each).

    python bench/web_latency.py [--rounds 3] [--slots 1,2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from webapp import CHROMIUM, FLAGS, ask_in_page, running_app

# Eight different seed questions and the fact each answer must hold (shared with tests/test_web.py).
CASES = json.loads((Path(__file__).resolve().parents[1] / "eval" / "concurrent_questions.json").read_text())


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--slots", default="2", help="RAGCHAT_LLM_SLOTS values, comma-separated")
    args = parser.parse_args()
    from gradio_client import Client
    from playwright.sync_api import sync_playwright

    with running_app() as url:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page()
            page.goto(url)
            page.wait_for_selector("#question textarea")
            ask_in_page(page, "What is OpenAI Frontier?")  # warm: models loaded, page ready
            firsts = []
            for _ in range(args.rounds):
                for q in list(CASES)[:4]:
                    page.click("#new")  # a fresh conversation: no follow-up joining
                    page.wait_for_function(
                        "() => !document.querySelector(\"#chat [data-testid='bot']\")")
                    firsts.append(ask_in_page(page, q))
            browser.close()
        print(f"browser, warm, {len(firsts)} questions: first streamed token p50 "
              f"{statistics.median(firsts):.2f} s, p95 {pct(firsts, 0.95):.2f} s, "
              f"max {max(firsts):.2f} s", flush=True)

    for slots in args.slots.split(","):
        with running_app(llm_slots=slots) as url:
            client = Client(url, verbose=False)

            def one(q: str) -> tuple[float, bool]:
                t = time.perf_counter()
                a = client.predict(question=q, api_name="/ask")
                return time.perf_counter() - t, CASES[q] in a["text"] and a["question"] == q

            one(list(CASES)[0])  # warm
            for n in (8, 20):
                for _ in range(args.rounds):
                    asked = [list(CASES)[i % len(CASES)] for i in range(n)]
                    t = time.perf_counter()
                    with ThreadPoolExecutor(max_workers=n) as pool:
                        results = list(pool.map(one, asked))
                    wall = time.perf_counter() - t
                    lat = [r[0] for r in results]
                    print(f"slots {slots}, gradio_client, {n} concurrent questions: "
                          f"{sum(r[1] for r in results)}/{n} correct; latency p50 "
                          f"{statistics.median(lat):.2f} s, p95 {pct(lat, 0.95):.2f} s; "
                          f"all done in {wall:.2f} s", flush=True)


if __name__ == "__main__":
    main()
