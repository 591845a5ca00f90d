"""Benchmark the web chat and the OpenAI-compatible API side by side, in one run.

1. Warm, one at a time, the same questions alternately through the page in
   Chromium and through the `openai` client streaming from /v1 on the same
   server: the time to the first streamed draft token (the page's draft; the
   API's `ragchat.draft` event) and to the checked answer (the page's source
   cards; the API's first content delta, which is checked text only).
2. 8 and 20 concurrent questions through gradio_client's /ask and through the
   openai client's /v1/chat/completions (p50 / p95, each answer checked for its
   own fact), for each RAGCHAT_LLM_SLOTS and RAGCHAT_LLM_WAIT value given (a
   fresh server each), with how many answers were quoted without a model draft
   because no model context came free within the wait.

    python bench/web_latency.py [--rounds 3] [--slots 1,2] [--wait 600,1,0]
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
    parser.add_argument("--wait", default="1", help="RAGCHAT_LLM_WAIT values (s), comma-separated")
    args = parser.parse_args()
    from gradio_client import Client
    from playwright.sync_api import sync_playwright

    import openai

    def api_client(url: str):
        return openai.OpenAI(base_url=url + "v1", api_key="none", max_retries=0, timeout=600)

    def api_stream(client, q: str) -> tuple[float, float]:
        t, draft, content = time.perf_counter(), None, None
        for chunk in client.chat.completions.create(
                model="ragchat", stream=True, messages=[{"role": "user", "content": q}]):
            now = time.perf_counter() - t
            if draft is None and "draft" in (chunk.model_extra.get("ragchat") or {}):
                draft = now
            if content is None and chunk.choices and chunk.choices[0].delta.content:
                content = now
        return (draft if draft is not None else content), content

    with running_app() as url:
        client = api_client(url)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page()
            page.goto(url)
            page.wait_for_selector("#question textarea")
            ask_in_page(page, "What is OpenAI Frontier?")  # warm: models loaded, page ready
            api_stream(client, "What is OpenAI Frontier?")
            web, api = [], []
            for _ in range(args.rounds):
                for q in list(CASES)[:4]:
                    page.click("#new")  # a fresh conversation: no follow-up joining
                    page.wait_for_function(
                        "() => !document.querySelector(\"#chat [data-testid='bot']\")")
                    web.append(ask_in_page(page, q, both=True))
                    api.append(api_stream(client, q))
            browser.close()
        for what, i in (("first streamed draft token", 0), ("checked answer", 1)):
            w, a = [x[i] for x in web], [x[i] for x in api]
            print(f"warm, {len(w)} questions, {what}: browser p50 {statistics.median(w):.2f} s "
                  f"(p95 {pct(w, 0.95):.2f}); openai client p50 {statistics.median(a):.2f} s "
                  f"(p95 {pct(a, 0.95):.2f}); API minus browser p50 "
                  f"{statistics.median(a) - statistics.median(w):+.2f} s", flush=True)

    for slots, wait in [(s, w) for s in args.slots.split(",") for w in args.wait.split(",")]:
        with running_app(llm_slots=slots, llm_wait=wait) as url:
            gradio, oai = Client(url, verbose=False), api_client(url)

            def via_gradio(q: str) -> tuple[float, bool, bool]:
                t = time.perf_counter()
                a = gradio.predict(question=q, api_name="/ask")
                return (time.perf_counter() - t, CASES[q] in a["text"] and a["question"] == q,
                        "without a model draft" in a["note"])

            def via_api(q: str) -> tuple[float, bool, bool]:
                t = time.perf_counter()
                r = oai.chat.completions.create(model="ragchat",
                                                messages=[{"role": "user", "content": q}])
                a = r.model_extra["ragchat"]
                return time.perf_counter() - t, (CASES[q] in r.choices[0].message.content
                                                 and a["question"] == q), \
                    "without a model draft" in a["note"]

            via_gradio(list(CASES)[0])  # warm
            for n in (8, 20):
                for _ in range(args.rounds):
                    for name, one in (("gradio_client", via_gradio), ("openai client", via_api)):
                        asked = [list(CASES)[i % len(CASES)] for i in range(n)]
                        t = time.perf_counter()
                        with ThreadPoolExecutor(max_workers=n) as pool:
                            results = list(pool.map(one, asked))
                        wall = time.perf_counter() - t
                        lat = [r[0] for r in results]
                        print(f"slots {slots}, wait {wait} s, {name}, {n} concurrent questions: "
                              f"{sum(r[1] for r in results)}/{n} correct, "
                              f"{sum(r[2] for r in results)} quoted without a draft; latency p50 "
                              f"{statistics.median(lat):.2f} s, p95 {pct(lat, 0.95):.2f} s; "
                              f"all done in {wall:.2f} s", flush=True)


if __name__ == "__main__":
    main()
