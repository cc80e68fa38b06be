"""Tool ``query_data``: one read-only SQL SELECT over the shop, row- and time-limited, the query shown back.

Safety comes from the connection, not from parsing alone: the database is opened read-only with external access
(files, URLs, extensions) switched off and the configuration locked, so even a query that slips past the checks
cannot write, read files or reach the network. The checks give a clear message for the common mistakes.
"""

from __future__ import annotations

import threading
import time

from pydantic import BaseModel, Field

from tools import untrusted
from tools.base import Evidence, ToolInputError, ToolResult, ToolSpec, jsonable
from tools.workspace import Shop, process_lock

MAX_ROWS = 200
TABLES_HELP = ("orders(order_id, line, customer_id, product_id, title, quantity, unit_price, ordered_at, country, "
               "channel, status), products(product_id, title, category, price, cost, stock, kind), "
               "customers(customer_id, first_order_at, last_order_at, orders, country), "
               "reviews(review_id, collection, product_id, rating, title, text, created_at, language, category, "
               "label)")


class QueryDataArgs(BaseModel):
    sql: str = Field(description=f"One DuckDB SELECT statement. Tables: {TABLES_HELP}. Sales lines have "
                                 "status='ok'; revenue is quantity*unit_price.")
    max_rows: int = Field(50, ge=1, le=MAX_ROWS, description="Rows to return.")


def _check_sql(sql: str) -> str:
    import duckdb

    text = sql.strip().rstrip(";").strip()
    if not text:
        raise ToolInputError("The query is empty. Write one SELECT statement.")
    try:
        statements = duckdb.extract_statements(text)
    except duckdb.Error as err:
        raise ToolInputError(f"The SQL does not parse: {err}. Tables: {TABLES_HELP}.") from err
    if len(statements) != 1:
        raise ToolInputError("Send exactly one statement (no ';'-separated scripts).")
    if statements[0].type != duckdb.StatementType.SELECT:
        raise ToolInputError("Only SELECT queries are allowed: the shop's data is read-only here.")
    return text


def run_query(shop: Shop, sql: str, max_rows: int = 50, timeout_s: float = 10.0) -> tuple[list[str], list[tuple],
                                                                                            bool]:
    """Run one checked SELECT; return (columns, rows, truncated). Raises ToolInputError on any SQL problem."""
    import duckdb

    text = _check_sql(sql)
    with process_lock(shop.db_path):
        con = duckdb.connect(str(shop.db_path), read_only=True, config={"enable_external_access": False})
        try:
            con.execute("SET enable_progress_bar = false")
            con.execute("SET lock_configuration = true")  # the query cannot switch external access back on
            return _run(con, text, max_rows, timeout_s)
        finally:
            con.close()


def _run(con, text: str, max_rows: int, timeout_s: float) -> tuple[list[str], list[tuple], bool]:
    import duckdb

    timer = threading.Timer(timeout_s, con.interrupt)
    timer.start()
    try:
        cur = con.execute(text)
        columns = [d[0] for d in cur.description]
        rows = cur.fetchmany(max_rows + 1)
    except duckdb.InterruptException as err:
        raise ToolInputError(f"The query ran longer than {timeout_s:.0f} s and was stopped. Aggregate more or "
                             "filter by date.") from err
    except duckdb.Error as err:
        raise ToolInputError(f"The query failed: {str(err).splitlines()[0]}. Tables: {TABLES_HELP}.") from err
    finally:
        timer.cancel()
    return columns, rows[:max_rows], len(rows) > max_rows


def query_data(shop: Shop, args: QueryDataArgs) -> ToolResult:
    """Use only when no other tool fits: run one read-only DuckDB SELECT over orders(order_id, customer_id,
    product_id, title, quantity, unit_price, ordered_at, country, status 'ok' or 'cancelled'), products, customers.
    orders has one row per order line: count orders with count(DISTINCT order_id)."""
    t0 = time.perf_counter()
    columns, rows, truncated = run_query(shop, args.sql, args.max_rows)
    elapsed = time.perf_counter() - t0
    table = [dict(zip(columns, jsonable(list(r)))) for r in rows]
    # a query can return text customers wrote (a review, a note): the model reads such cells as quoted data
    shown = "\n".join(" | ".join(untrusted.spotlight("text", v) if untrusted.is_free_text(v) else str(v)
                                  for v in r.values()) for r in table[:20])
    summary = (f"Query: {args.sql.strip()}\n{len(rows)} row(s){' (more rows were cut off)' if truncated else ''}"
               f":\n{' | '.join(columns)}\n{shown}")
    data = {"sql": args.sql.strip(), "columns": columns, "rows": table, "truncated": truncated,
            "seconds": round(elapsed, 3)}
    return ToolResult(summary, data, (Evidence("sql", args.sql.strip()),), kind="table")


SPEC = ToolSpec("query_data", QueryDataArgs, query_data)
