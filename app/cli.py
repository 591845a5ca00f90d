"""The `ragchat` command line: ingest, ask, chat, stats, serve, eval.

A thin adapter over `Engine`: each command builds settings, calls one engine
method and renders what comes back. Domain errors (`RagchatError`) become one
`Error: ...` line and exit status 1; anything else is a bug and keeps its
traceback. Heavy libraries are imported inside commands, so `--help` is quick.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from app import offline
from app.errors import RagchatError
from app.render import answer_text
from app.text import without_controls


def say(message: str, **kw) -> None:
    """click.echo for anything that holds text from a document, a file name, a
    question or a model: escape sequences and control characters never reach
    the terminal."""
    click.echo(without_controls(message), **kw)


class _Group(click.Group):
    """Turns domain errors into one clear line and a non-zero status."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except RagchatError as e:
            raise click.ClickException(without_controls(str(e))) from None


def _settings(ctx: click.Context, **overrides):
    from app.settings import load_settings

    merged = {**ctx.obj, **{k: v for k, v in overrides.items() if v is not None}}
    try:
        return load_settings(**merged)
    except RagchatError as e:
        raise click.ClickException(str(e)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--collection", "-c", help="Chroma collection to use (setting: collection).")
@click.option("--chroma-url", help="Chroma server URL instead of the embedded store.")
@click.option("--index-dir", type=click.Path(path_type=Path),
              help="Folder of the embedded store and indexes.")
@click.version_option(package_name="ragchat")
@click.pass_context
def cli(ctx: click.Context, collection, chroma_url, index_dir):
    """Ask questions about a folder of documents; answers cite their sources."""
    offline.enforce()
    ctx.obj = {k: v for k, v in dict(collection=collection, chroma_url=chroma_url,
                                     index_dir=index_dir).items() if v is not None}


class IngestProgress:
    """Ingest progress on `stream`: a tqdm bar on a terminal; elsewhere (a log, CI,
    a pipe) one line every `every` seconds: files, chunks, chunks/s, time left."""

    def __init__(self, stream, every: float = 10.0, clock=time.monotonic):
        self.stream, self.every, self.clock = stream, every, clock
        self.tty = stream.isatty()
        self.bar = None
        self.start = self.last = None

    def __call__(self, done: int, total: int, current: str, chunks: int) -> None:
        now = self.clock()
        if self.start is None:
            self.start = self.last = now
        if self.tty:
            if self.bar is None and total > 1:
                from tqdm import tqdm

                self.bar = tqdm(total=total, unit="file", desc="ingest", leave=False,
                                file=self.stream)
            if self.bar is not None:
                self.bar.n = done
                self.bar.set_postfix_str(f"{chunks} chunks {current[-40:]}", refresh=True)
            return
        if now - self.last < self.every:
            return
        self.last = now
        elapsed = now - self.start
        # files are read ahead of the encoder: until chunks are written, the
        # files read say nothing of how long the rest will take
        left = f"{elapsed / done * (total - done):.0f} s left" if done and chunks else "time left unknown"
        say(f"ingest: {done}/{total} files, {chunks:,} chunks, {chunks / elapsed:.1f} chunks/s, "
            f"{elapsed:.0f} s, {left}" + (f" (at {current})" if current else ""),
            file=self.stream)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--chunk-size", type=int, help="Chunk length in word pieces (max 256).")
@click.option("--chunk-overlap", type=int, help="Word pieces shared by neighbouring chunks.")
@click.pass_context
def ingest(ctx, paths, chunk_size, chunk_overlap):
    """Add files or folders (default: seeds/) to the index; unchanged files are skipped."""
    from app.engine import Engine

    settings = _settings(ctx, chunk_size=chunk_size, chunk_overlap=chunk_overlap)
    progress = IngestProgress(sys.stderr)
    try:
        report = Engine(settings).ingest(list(paths), progress=progress,
                                         waiting=lambda line: say(line, err=True))
    finally:
        progress.close()
    for reason in report.failed.values():
        say(f"Error: {reason}", err=True)
    say(report.summary())
    if not report.ok:
        ctx.exit(1)


def _ask_streaming(engine, question: str, history, top_k):
    """Show the draft as it is generated (on a terminal), labelled as unchecked and
    cleared when the checked answer is printed."""
    if not sys.stdout.isatty():
        return engine.ask(question, history=history, top_k=top_k)
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    console = Console()
    draft = Text("Draft, not yet checked: ", style="dim italic")  # replaced by the checked answer
    with Live(draft, console=console, transient=True, refresh_per_second=12) as live:
        def on_token(piece: str) -> None:
            draft.append(without_controls(piece))
            live.update(draft)

        return engine.ask(question, history=history, on_token=on_token, top_k=top_k)


@cli.command()
@click.argument("question")
@click.option("--json", "as_json", is_flag=True, help="Print the whole Answer as JSON.")
@click.option("--top-k", "-k", type=int, help="Sources to retrieve.")
@click.option("--llm", type=click.Choice(["local", "openai"]), help="Language-model backend.")
@click.pass_context
def ask(ctx, question, as_json, top_k, llm):
    """Answer one QUESTION from the indexed documents, with cited sources."""
    from app.engine import Engine

    engine = Engine(_settings(ctx, llm=llm, top_k=top_k))
    if as_json:
        answer = engine.ask(question)
        say(json.dumps(answer.to_dict(), indent=2, ensure_ascii=False))
    else:
        answer = _ask_streaming(engine, question, (), None)
        say(answer_text(answer))


@cli.command()
@click.option("--top-k", "-k", type=int, help="Sources to retrieve.")
@click.option("--llm", type=click.Choice(["local", "openai"]), help="Language-model backend.")
@click.pass_context
def chat(ctx, top_k, llm):
    """A conversation in the terminal; follow-up questions use the earlier ones.

    Reads one question per line (also from a pipe); an empty line is skipped,
    /reset forgets the conversation, /quit or end of input leaves.
    """
    from app.engine import Engine

    engine = Engine(_settings(ctx, llm=llm, top_k=top_k))
    history: list[str] = []
    tty = sys.stdin.isatty()
    while True:
        if tty:
            click.echo("> ", nl=False)
        line = sys.stdin.readline()
        if not line or line.strip() in ("/quit", "/exit"):
            break
        question = line.strip()
        if not question:
            continue
        if question == "/reset":
            history.clear()
            click.echo("(conversation forgotten)")
            continue
        if not tty:
            say(f"> {question}")
        try:
            answer = _ask_streaming(engine, question, history, top_k)
        except RagchatError as e:
            say(f"Error: {e}", err=True)
            continue
        if answer.query != question:
            say(f"(searched for: {answer.query})")
        say(answer_text(answer) + "\n")
        history.append(answer.query)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.pass_context
def stats(ctx, as_json):
    """Collections in the index: files, chunks and embedder."""
    from dataclasses import asdict

    from app.engine import Engine

    engine = Engine(_settings(ctx))
    rows = engine.stats()
    if as_json:
        click.echo(json.dumps([asdict(r) for r in rows], indent=2))
        return
    if not rows:
        click.echo("The index is empty: run `ragchat ingest` first.")
    for r in rows:
        say(f"{r.name}: {r.files} files, {r.chunks} chunks, embedder {r.embedder} "
                   f"({r.dimension} dimensions)")
        for s in r.sources:
            say(f"  {s}")


@cli.command(name="eval")
@click.argument("dataset", required=False, type=click.Path(path_type=Path))
@click.option("--llm", type=click.Choice(["local", "openai"]), help="Language-model backend.")
@click.option("--top-k", "-k", type=int, help="Sources to retrieve.")
@click.option("--out", type=click.Path(path_type=Path),
              help="Folder for report.md, results.jsonl and chart.png (default eval/reports/NAME).")
@click.option("--baseline", type=click.Choice(["naive"]),
              help="Also run LlamaIndex's default query engine on the same cases, side by side.")
@click.option("--fail-under", "gates", multiple=True, metavar="METRIC=VALUE",
              help="Exit 1 when METRIC misses VALUE (below it; above it for refusals of "
                   "answerable cases, unsupported claims and latency). Repeatable.")
@click.option("--limit", type=int, help="Only the first N cases (and the cases they follow).")
@click.option("--quick", is_flag=True,
              help="Every second case (and the cases they follow): half the time, for CI.")
@click.pass_context
def eval_(ctx, dataset, llm, top_k, out, baseline, gates, limit, quick):
    """Evaluate answers on DATASET (default eval/seed_qa.jsonl): a .jsonl set or
    LlamaIndex's rag_dataset.json (or its folder)."""
    from app.engine import Engine
    from app.evaluation import datasets, metrics, report, runner

    try:
        gate = metrics.parse_gate(list(gates))
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--fail-under") from None
    data = datasets.load(dataset or Path("eval/seed_qa.jsonl"))
    engine = Engine(_settings(ctx, llm=llm, top_k=top_k))
    result = runner.run(engine, data, baseline=baseline, limit=limit, every=2 if quick else 1,
                        progress=sys.stderr.isatty())
    out = out or Path("eval/reports") / data.name
    runner.write_results(result, out)
    report.chart(result, out / "chart.png")
    (out / "report.md").write_text(report.markdown(result), encoding="utf-8")
    report.print_table(result)
    click.echo(f"Wrote {out}/report.md, results.jsonl and chart.png")
    missed = metrics.failures(result.summaries["ragchat"], gate)
    for miss in missed:
        click.echo(f"Error: {miss}", err=True)
    if missed:
        ctx.exit(1)
    if gate:
        click.echo("Gate passed: " + ", ".join(f"{k} {v:g}" for k, v in gate.items()))


@cli.command(name="eval-drafts")
@click.argument("drafts", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--verifier", type=click.Choice(["roles", "lexical"]), default="roles",
              show_default=True, help="The verifier to put the drafts to.")
def eval_drafts(drafts, verifier):
    """Put the hand-labelled drafts of DRAFTS (eval/drafts/*.jsonl) to a
    verifier: the share of faithful drafts it keeps whole and of wrong ones it
    keeps nothing of."""
    from app.evaluation import drafts as draft_eval
    from app.verify import load_verifier

    try:
        cases = draft_eval.load(drafts)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="DRAFTS") from None
    report = draft_eval.run(load_verifier(verifier), cases)
    for c in report.errors():
        why = report.reasons[c.id] or "kept"
        click.echo(f"{c.id} ({'faithful' if c.faithful else 'wrong: ' + c.kind}): {c.draft} -> {why}")
    n_ok = sum(c.faithful for c in cases)
    click.echo(f"{drafts.name} ({verifier}): faithful drafts kept {report.share(True):.3f} "
               f"of {n_ok}, wrong drafts rejected {report.share(False):.3f} of {len(cases) - n_ok}")


@cli.command()
@click.option("--host", help="Interface to listen on (default 127.0.0.1; others are an opt-in).")
@click.option("--port", type=int, help="Port (default 7860).")
@click.pass_context
def serve(ctx, host, port):
    """Start the web chat in the browser (Gradio) on 127.0.0.1:7860."""
    from app.web import serve as run_server

    run_server(_settings(ctx, host=host, port=port))


def main() -> None:
    cli(prog_name="ragchat")


if __name__ == "__main__":
    main()
