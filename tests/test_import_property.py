"""Property: on any messy CSV, every record is either accepted or quarantined, never lost or double-counted."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tools.importer import import_file
from tools.workspace import Shop

HEADER = ["order_id", "product_id", "quantity", "unit_price", "ordered_at"]
MESSY_TEXT = st.text(alphabet=st.sampled_from(list("ab1 9,\".\n-中£:")), max_size=8)
PLAIN_TEXT = st.text(alphabet=st.sampled_from(list("ab19 -中.")), min_size=1, max_size=6)

cell_values = {
    "order_id": st.one_of(st.from_regex(r"[A-Z]?\d{3,6}", fullmatch=True), MESSY_TEXT),
    "product_id": st.one_of(st.from_regex(r"[0-9A-Z]{3,6}", fullmatch=True), MESSY_TEXT),
    "quantity": st.one_of(st.integers(-5, 50).map(str), MESSY_TEXT),
    "unit_price": st.one_of(st.decimals(-1, 500, places=2, allow_nan=False).map(str), st.just("£3.50"),
                            MESSY_TEXT),
    "ordered_at": st.one_of(st.datetimes().map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S")), MESSY_TEXT),
}
good_row = st.tuples(*(cell_values[c] for c in HEADER)).map(list)
ragged_row = st.lists(MESSY_TEXT, min_size=1, max_size=9).filter(lambda r: len(r) != len(HEADER))
# A quote in the middle of an unquoted field (not before a delimiter), written raw.
stray_quote_row = st.tuples(*(PLAIN_TEXT for _ in HEADER)).map(
    lambda cells: ",".join([cells[0][:1] + '"' + cells[0][1:] + "x", *cells[1:]]))


@st.composite
def messy_csv(draw) -> tuple[str, int]:
    """A CSV text and its number of records. An unclosed quote may appear once; rows after it hold no quote,
    comma or newline of their own, so the records a person would count are unambiguous."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    writer.writerow(HEADER)
    n = draw(st.integers(1, 25))
    unclosed_at = draw(st.one_of(st.none(), st.integers(0, n - 1)))
    for i in range(n):
        if unclosed_at is not None and i > unclosed_at:
            cells = draw(st.tuples(*(PLAIN_TEXT for _ in HEADER)))
            out.write(",".join(cells) + "\n")
        elif i == unclosed_at:
            cells = draw(st.tuples(*(PLAIN_TEXT for _ in HEADER)))
            out.write(",".join(['"' + cells[0], *cells[1:]]) + "\n")
        else:
            kind = draw(st.sampled_from(["good", "good", "ragged", "stray"]))
            if kind == "good":
                writer.writerow(draw(good_row))
            elif kind == "ragged":
                writer.writerow(draw(ragged_row))
            else:
                out.write(draw(stray_quote_row) + "\n")
        if draw(st.integers(0, 9)) == 0:
            out.write("\n")  # a blank line is not a record
    return out.getvalue(), n


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messy_csv(), st.sampled_from(["utf-8", "utf-8-sig", "gb18030"]))
def test_accepted_plus_quarantined_equals_records(case: tuple[str, int], encoding: str):
    text, n_records = case
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "messy.csv"
        f.write_bytes(text.encode(encoding))
        shop = Shop.create(Path(tmp) / "shop")
        report = import_file(shop, f, "orders")
        assert report.records == n_records
        assert report.inserted + report.already_present + report.quarantined == n_records
        with shop.connect(read_only=True) as con:
            stored = con.execute("SELECT (SELECT count(*) FROM orders) + (SELECT count(*) FROM quarantine)"
                                 ).fetchall()[0][0]
        assert stored == report.inserted + report.quarantined
