"""The ``shopkeeper`` command line.

Heavy libraries (DuckDB, pyarrow, pydantic, torch, LangChain) are imported inside the commands, so ``--help`` starts
fast. Errors the user can act on are printed as one line on stderr (exit 1); usage errors exit 2.
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from assistant import __version__

if TYPE_CHECKING:
    from assistant.config import Settings
    from tools.workspace import Shop

app = typer.Typer(
    name="shopkeeper",
    help="Shopkeeper: an AI operations assistant for your online shop. Import orders, products and reviews, "
         "train the shop's own models, and ask questions in Chinese or English.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

ShopOption = Annotated[str | None, typer.Option(
    "--shop", "-s", envvar="SHOPKEEPER_SHOP", show_default=False,
    help="Shop name (under the data dir) or folder path. Default: the `shop` setting ('demo').")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]
OfflineOption = Annotated[bool, typer.Option(
    "--offline", help="Refuse remote model providers: nothing leaves this machine (privacy = local-only).")]


class Kind(str, Enum):
    orders = "orders"
    products = "products"
    reviews = "reviews"


def _err_console():
    from rich.console import Console

    return Console(stderr=True)


def _fail(err: Exception, code: int = 1) -> NoReturn:
    title = getattr(err, "title", type(err).__name__)
    _err_console().print(f"[bold red]{title}:[/] {err}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _settings(offline: bool = False) -> Settings:
    from assistant.config import load_settings

    return load_settings(privacy="local-only") if offline else load_settings()


def _shop_path(shop: str | None, settings: Settings) -> Path:
    from tools.workspace import resolve_shop_path

    return resolve_shop_path(shop or settings.shop, shops_dir=settings.shops_dir)


def _open_shop(shop: str | None) -> Shop:
    from tools.workspace import Shop

    return Shop.open(_shop_path(shop, _settings()))


def _print_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"shopkeeper {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[bool, typer.Option("--version", "-V", callback=_version_callback, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """Shopkeeper command line."""


@app.command("demo")
def demo_cmd(
    shop: ShopOption = None,
    no_chat: Annotated[bool, typer.Option("--no-chat", help="Only build the demo shop; don't open the chat.")] = False,
) -> None:
    """Build the bundled demo shop (a real UK gift retailer + two real review collections), then open the chat.

    Safe to run again: files already imported are skipped.
    """
    from tools.demo import build_demo_shop
    from tools.errors import ShopkeeperError
    from tools.workspace import Shop

    settings = _settings()
    path = _shop_path(shop, settings)
    try:
        with _progress() as bar:
            tasks: dict[str, Any] = {}

            def step(name: str, stage: str, frac: float) -> None:
                if name not in tasks:
                    tasks[name] = bar.add_task(name, total=1.0)
                bar.update(tasks[name], completed=frac, description=f"{name}: {stage}")

            reports = build_demo_shop(path, progress=step)
    except ShopkeeperError as err:
        _fail(err)
    for r in reports:
        verb = "already there" if r.skipped else f"{r.inserted:,} added"
        _err_console().print(f"  {Path(r.source_file).name}: {r.records:,} records, {verb}, "
                             f"{r.quarantined:,} quarantined")
    _show_status(Shop.open(path))
    _open_chat_if_possible(path, no_chat)


def _open_chat_if_possible(path: Path, no_chat: bool) -> None:
    import importlib.util

    if no_chat:
        return
    if importlib.util.find_spec("assistant.app") is None:
        typer.echo(f"\nThe demo shop is ready at {path}. The chat app is not built yet; "
                   f"inspect the shop with `shopkeeper status --shop {path}`.")
        return
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        typer.echo(f"\nThe demo shop is ready. Open the chat with: shopkeeper chat --shop {path}")
        return
    chat_cmd(shop=str(path), provider=None, model=None, offline=False)


def _progress():
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                    console=_err_console(), transient=False)


@app.command("import")
def import_cmd(
    file: Annotated[Path, typer.Argument(help="CSV/TSV/TXT, Parquet or .xlsx file.", show_default=False)],
    kind: Annotated[Kind, typer.Option("--kind", "-k", help="What the file holds.", case_sensitive=False)],
    map_: Annotated[list[str] | None, typer.Option(
        "--map", "-m", help="Map a column onto a field: 'COLUMN=field' (repeatable). See docs/schema.md.")] = None,
    shop: ShopOption = None,
    encoding: Annotated[str | None, typer.Option(help="Text encoding (detected: UTF-8, UTF-8 BOM, GBK/GB18030).")]
    = None,
    delimiter: Annotated[str | None, typer.Option(help="Field delimiter (detected: , ; TAB |).")] = None,
    date_format: Annotated[str | None, typer.Option(
        "--date-format", help="strftime format such as '%d/%m/%Y %H:%M', or 'iso' (detected).")] = None,
    collection: Annotated[str | None, typer.Option(help="Review collection name (default: the file's name).")]
    = None,
    sheet: Annotated[str | None, typer.Option(help="Excel worksheet (default: the first).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Import orders, products or reviews. Bad records go to quarantine with their line and a reason code."""
    from tools.errors import ShopkeeperError
    from tools.importer import import_file, parse_mapping
    from tools.workspace import Shop

    settings = _settings()
    path = _shop_path(shop, settings)
    try:
        mapping = parse_mapping(map_)
        with _progress() as bar:
            task = bar.add_task(f"importing {file.name}", total=1.0)
            report = import_file(Shop(path), file, kind.value, mapping=mapping, encoding=encoding,
                                 delimiter=delimiter, date_format=date_format, collection=collection, sheet=sheet,
                                 progress=lambda stage, frac: bar.update(task, completed=frac,
                                                                         description=f"{file.name}: {stage}"))
    except ShopkeeperError as err:
        _fail(err)
    if as_json:
        _print_json(report.to_dict())
        return
    if report.skipped:
        typer.echo(report.message)
        return
    typer.echo(f"{report.records:,} records: {report.inserted:,} added, {report.already_present:,} already in the "
               f"shop, {report.quarantined:,} quarantined.")
    if report.reasons:
        typer.echo("Quarantined: " + ", ".join(f"{k} {v:,}" for k, v in report.reasons.items())
                   + f". See them with `shopkeeper quarantine --shop {path}`.")
    typer.echo("Columns: " + ", ".join(f"{src} → {fld}" for fld, src in report.mapping.items()))
    details = [f"encoding {report.encoding}" if report.encoding else "",
               f"delimiter {report.delimiter!r}" if report.delimiter else "",
               f"dates {report.date_format}" if report.date_format else ""]
    if any(details):
        typer.echo("Read with " + ", ".join(d for d in details if d) + ".")


@app.command("status")
def status_cmd(shop: ShopOption = None, as_json: JsonOption = False) -> None:
    """Show what the shop holds: row counts, date range, review collections, imports and quarantine."""
    from tools.errors import ShopkeeperError

    try:
        the_shop = _open_shop(shop)
        if as_json:
            from tools.status import shop_status

            _print_json(shop_status(the_shop))
            return
        _show_status(the_shop)
    except ShopkeeperError as err:
        _fail(err)


def _show_status(shop: Shop) -> None:
    from rich.console import Console
    from rich.table import Table

    from tools.status import shop_status

    st = shop_status(shop)
    console = Console()
    c, o = st["counts"], st["orders"]
    console.print(f"[bold]Shop[/] {st['shop']}")
    table = Table(title="Contents", title_justify="left")
    for col in ("table", "rows", "notes"):
        table.add_column(col, justify="right" if col == "rows" else "left")
    statuses = ", ".join(f"{k} {v:,}" for k, v in o["by_status"].items())
    table.add_row("order lines", f"{c['orders']:,}", f"{o['first'] or '-'} .. {o['last'] or '-'}; {statuses}")
    table.add_row("products", f"{c['products']:,}", f"{o['products_sold']:,} with sales")
    table.add_row("customers", f"{c['customers']:,}", "")
    table.add_row("reviews", f"{c['reviews']:,}", f"{len(st['review_collections'])} collection(s)")
    table.add_row("quarantine", f"{c['quarantine']:,}", "records set aside at import")
    console.print(table)
    if st["imports"]:
        t = Table(title="Imported records (accepted + quarantined = records)", title_justify="left")
        for col in ("kind", "files", "records", "accepted", "quarantined"):
            t.add_column(col, justify="left" if col == "kind" else "right")
        for r in st["imports"]:
            t.add_row(r["kind"], f"{r['files']:,}", f"{r['records']:,}",
                      f"{r['inserted'] + r['already_present']:,}", f"{r['quarantined']:,}")
        console.print(t)
    if st["review_collections"]:
        t = Table(title="Review collections", title_justify="left")
        for col in ("collection", "language", "reviews", "products", "categories", "rated", "labelled"):
            t.add_column(col, justify="left" if col in ("collection", "language") else "right",
                         no_wrap=col == "collection")
        for r in st["review_collections"]:
            t.add_row(r["collection"], r["language"], f"{r['reviews']:,}", f"{r['products']:,}",
                      f"{r['categories']:,}", f"{r['with_rating']:,}", f"{r['with_label']:,}")
        console.print(t)
    if st["quarantine"]:
        t = Table(title="Quarantine by reason", title_justify="left")
        for col in ("kind", "reason", "records"):
            t.add_column(col, justify="right" if col == "records" else "left")
        for r in st["quarantine"]:
            t.add_row(r["kind"], r["reason"], f"{r['records']:,}")
        console.print(t)


@app.command("quarantine")
def quarantine_cmd(
    shop: ShopOption = None,
    reason: Annotated[str | None, typer.Option(help="Only this reason code.")] = None,
    import_id: Annotated[int | None, typer.Option("--import-id", help="Only this import.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Rows to show.")] = 20,
    export: Annotated[Path | None, typer.Option(
        help="Write ALL matching records to this CSV (formula cells neutralised) instead of showing them.")] = None,
) -> None:
    """Show or export the records set aside at import, with file, line, field and reason."""
    from rich.console import Console
    from rich.table import Table

    from tools.errors import ShopkeeperError
    from tools.export import write_csv

    try:
        the_shop = _open_shop(shop)
        where, params = [], []
        if reason:
            where.append("reason = ?")
            params.append(reason)
        if import_id is not None:
            where.append("import_id = ?")
            params.append(import_id)
        sql = ("SELECT import_id, source_file, line, field, reason, value, record FROM quarantine"
               + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY import_id, line")
        with the_shop.connect(read_only=True) as con:
            rows = con.execute(sql + ("" if export else f" LIMIT {int(limit)}"), params).fetchall()
    except ShopkeeperError as err:
        _fail(err)
    header = ["import_id", "source_file", "line", "field", "reason", "value", "record"]
    if export:
        n = write_csv(export, header, rows)
        typer.echo(f"Wrote {n:,} quarantined records to {export}.")
        return
    if not rows:
        typer.echo("Nothing in quarantine" + (" for that filter." if where else "."))
        return
    table = Table()
    for col in header[:-1]:
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(str(r[0]), Path(r[1]).name, str(r[2]), r[3] or "", r[4], (r[5] or "")[:60])
    Console().print(table)


@app.command("train")
def train_cmd(
    what: Annotated[str | None, typer.Argument(
        help="Which model: analytics (churn model, basket pairs), forecaster, recommender, reviews, or all "
             "(default).")] = None,
    shop: ShopOption = None,
) -> None:
    """Train the shop's models. The previous models stay in use until the new ones are completely saved."""
    from tools.errors import ShopkeeperError
    from tools.training import train

    try:
        the_shop = _open_shop(shop)
        with _progress() as bar:
            task = bar.add_task("training", total=1.0)
            reports = train(the_shop, what, lambda frac, text: bar.update(task, completed=frac,
                                                                          description=text[:60]))
    except ShopkeeperError as err:
        _fail(err)
    for r in reports:
        typer.echo(f"{r.name}: trained in {r.seconds:.0f} s, saved to {r.path}. {r.summary}")


@app.command("ask")
def ask_cmd(
    question: Annotated[str, typer.Argument(help="The question, or '-' to read it from stdin.")],
    shop: ShopOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object: answer, language, tool_calls, "
                                                         "citations, grounded, timings.")] = False,
    provider: Annotated[str | None, typer.Option(help="openai | local | auto (default: the settings).")] = None,
    model: Annotated[str | None, typer.Option(help="Model name at the provider, e.g. deepseek-chat.")] = None,
    thread: Annotated[str | None, typer.Option(help="Continue this conversation id.")] = None,
    offline: OfflineOption = False,
) -> None:
    """Ask one question from the shell. The answer goes to stdout, tool lines to stderr.

    Exit codes: 0 answered, 1 the model or a tool failed (one-line reason on stderr), 2 usage error.
    """
    import asyncio

    from assistant.api import Assistant
    from tools.errors import ShopkeeperError

    if question == "-":
        question = sys.stdin.read()
    question = question.strip()
    if not question:
        _err_console().print("The question is empty.")
        raise typer.Exit(2)
    if provider not in (None, "openai", "local", "auto"):
        _err_console().print(f"Unknown provider {provider!r}: use openai, local or auto.")
        raise typer.Exit(2)
    try:
        bot = Assistant.open(shop, provider=provider, model=model, settings=_settings(offline))
    except ShopkeeperError as err:
        _fail(err)
    try:
        answer = asyncio.run(_ask_stream(bot, question, thread, as_json))
    finally:
        bot.close()
    if as_json:
        _print_json(answer.to_dict())
    if answer.incomplete:
        raise typer.Exit(1)


async def _ask_stream(bot, question: str, thread: str | None, quiet: bool):
    """Print tool lines (stderr) and the answer (stdout) as they come; return the final Answer."""
    from assistant.events import AnswerDone, ErrorEvent, Revising, TextDelta, ToolFinished, ToolStarted

    err = _err_console()
    shown: list[str] = []
    answer = None
    async for event in bot.stream(question, thread):
        if isinstance(event, ToolStarted):
            args = ", ".join(f"{k}={v!r}" for k, v in event.args.items())
            err.print(f"[dim]→ {event.name}({args})[/]", highlight=False, soft_wrap=True)
        elif isinstance(event, ToolFinished):
            mark = "[green]✓[/]" if event.call.ok else "[red]✗[/]"
            err.print(f"[dim]  {mark} {event.call.name} {event.call.seconds:.2f} s[/]", highlight=False)
        elif isinstance(event, TextDelta) and not quiet:
            shown.append(event.text)
            sys.stdout.write(event.text)
            sys.stdout.flush()
        elif isinstance(event, Revising) and not quiet:
            if shown:
                sys.stdout.write("\n")
            err.print(f"[yellow]Draft withdrawn: figures not found in any tool result ({', '.join(event.ungrounded)})"
                      f"; {'asking the model to correct it' if event.how == 'retry' else 'showing the tool results'}"
                      "…[/]", highlight=False, soft_wrap=True)
            shown = []
        elif isinstance(event, ErrorEvent):
            err.print(f"[bold red]{event.title}:[/] {event.message}", highlight=False, soft_wrap=True)
        elif isinstance(event, AnswerDone):
            answer = event.answer
    if not quiet and answer is not None and not answer.incomplete:
        if "".join(shown).strip() != answer.text.strip():
            if shown:
                sys.stdout.write("\n")
            sys.stdout.write(answer.text)
        sys.stdout.write("\n")
        if answer.thread_id:
            err.print(f"[dim]conversation {answer.thread_id} · {answer.timings.get('total', 0):.1f} s"
                      f"{' · grounded' if answer.grounded else ''}[/]", highlight=False)
    return answer


@app.command("chat")
def chat_cmd(
    shop: ShopOption = None,
    provider: Annotated[str | None, typer.Option(help="openai | local | auto (default: the settings).")] = None,
    model: Annotated[str | None, typer.Option(help="Model name at the provider.")] = None,
    offline: OfflineOption = False,
) -> None:
    """Open the terminal chat on a shop."""
    from assistant.app import create_app
    from tools.errors import ShopkeeperError

    settings = _settings(offline)
    if provider or model:
        update = {k: v for k, v in (("name", provider), ("model", model)) if v}
        settings = settings.model_copy(update={"provider": settings.provider.model_copy(update=update)})
    try:
        the_shop = _open_shop_with(shop, settings)
    except ShopkeeperError as err:
        _fail(err)
    create_app(the_shop, settings).run()


def _open_shop_with(shop: str | None, settings: Settings) -> Shop:
    from tools.workspace import Shop

    return Shop.open(_shop_path(shop, settings))


@app.command("audit")
def audit_cmd(
    shop: ShopOption = None,
    last: Annotated[int, typer.Option(min=1, help="Show the last N requests.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Show what was sent to remote model providers (the shop's audit log)."""
    from rich.console import Console
    from rich.table import Table

    from assistant.privacy import AuditLog
    from tools.errors import ShopkeeperError

    try:
        the_shop = _open_shop(shop)
    except ShopkeeperError as err:
        _fail(err)
    entries = AuditLog(the_shop.audit_path).entries()
    if as_json:
        _print_json(entries[-last:])
        return
    if not entries:
        typer.echo("Nothing has been sent to a remote model from this shop.")
        return
    table = Table(title=f"{len(entries)} request(s) sent to remote models; the last {min(last, len(entries))}:",
                  title_justify="left")
    for col in ("time", "endpoint", "bytes", "last message sent"):
        table.add_column(col, overflow="fold")
    for e in entries[-last:]:
        messages = (e.get("body") or {}).get("messages", []) if isinstance(e.get("body"), dict) else []
        last_msg = str(messages[-1].get("content", ""))[:80] if messages else ""
        table.add_row(e["time"], e["url"], f"{e['bytes']:,}", last_msg)
    Console().print(table)


@app.command("config")
def config_cmd() -> None:
    """Show the effective settings (keys masked) and where they come from."""
    from assistant.config import config_path
    from tools.errors import ShopkeeperError

    try:
        settings = _settings()
    except ShopkeeperError as err:
        _fail(err)
    data = json.loads(settings.model_dump_json())
    data["config_file"] = str(config_path())
    data["config_file_exists"] = config_path().exists()
    _print_json(data)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
