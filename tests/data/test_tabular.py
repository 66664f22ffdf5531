"""Reading CSV / Parquet / JSON lines, and the errors an unreadable file gives."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pa_parquet
import pytest

from dsops.core.errors import UsageError
from dsops.data.formats import detect_format
from dsops.data.tabular import logical_type, read_table


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("a.csv", "csv"), ("a.CSV", "csv"), ("a.parquet", "parquet"), ("a.pq", "parquet"),
     ("a.jsonl", "jsonl"), ("a.ndjson", "jsonl"), ("a.txt", None), ("a", None),
     ("a.csv.bak", None)],
)
def test_detect_format(name: str, fmt: str | None) -> None:
    assert detect_format(Path(name)) == fmt


def _sample() -> pa.Table:
    return pa.table({
        "id": [1, 2, 3],
        "amount": [1.5, None, 3.25],
        "city": ["Paris", "Oslo", None],
        "active": [True, False, True],
        "day": [dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2024, 1, 3)],
    })


def _logical(table: pa.Table) -> dict[str, str]:
    return {f.name: logical_type(f.type) for f in table.schema}


EXPECTED_TYPES = {"id": "int", "amount": "float", "city": "str", "active": "bool", "day": "date"}


def test_reads_csv_with_inferred_types(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    pa_csv.write_csv(_sample(), path)
    table = read_table(path, "csv")
    assert _logical(table) == EXPECTED_TYPES
    assert table.column("amount").to_pylist() == [1.5, None, 3.25]


def test_reads_parquet(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pa_parquet.write_table(_sample(), path)
    assert read_table(path, "parquet").equals(_sample())


def test_reads_jsonl_skipping_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"id": 1, "city": "Paris"}\n\n{"id": 2, "city": null}\n')
    table = read_table(path, "jsonl")
    assert table.to_pylist() == [{"id": 1, "city": "Paris"}, {"id": 2, "city": None}]


def test_reads_a_stream_and_errors_use_the_given_name(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pa_parquet.write_table(_sample(), path)
    assert read_table(io.BytesIO(path.read_bytes()), "parquet").equals(_sample())
    ragged = b"a,b\n1,2\n1,2,3\n"
    with pytest.raises(UsageError) as caught:
        read_table(io.BytesIO(ragged), "csv", name="credit@2")
    assert caught.value.message == "credit@2: line 3: expected 2 columns, found 3"
    with pytest.raises(UsageError, match=r"^credit@3: line 2: not valid UTF-8"):
        read_table(io.BytesIO('{"a": "x"}\n{"a": "é"}\n'.encode("latin-1")), "jsonl",
                   name="credit@3")
    with pytest.raises(UsageError, match=r"^<data>: line 2: invalid JSON"):
        read_table(io.BytesIO(b'{"a": 1}\n{"a": }\n'), "jsonl")


def test_csv_quoted_field_spanning_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text('id,note\n1,"two\nlines"\n2,plain\n')
    assert read_table(path, "csv").column("note").to_pylist() == ["two\nlines", "plain"]


def test_ragged_csv_row_names_file_line_and_expectation(tmp_path: Path) -> None:
    path = tmp_path / "credit.csv"
    rows = ["a,b,c,d,e"] + ["1,2,3,4,5"] * 5 + ["1,2,3,4,5,6", "1,2,3,4,5"]
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(UsageError) as caught:
        read_table(path, "csv")
    assert caught.value.message == f"{path}: line 7: expected 5 columns, found 6"
    assert "Traceback" not in str(caught.value) and "Arrow" not in str(caught.value)


def test_ragged_row_deep_in_a_large_csv_is_located(tmp_path: Path) -> None:
    # Several reader blocks: the threaded reader does not know the row number by itself.
    path = tmp_path / "big.csv"
    rows = 200_000
    body = "".join(f"{i},{i * 2},name{i}\n" for i in range(rows))
    path.write_text("a,b,c\n" + body + "1,2\n")
    with pytest.raises(UsageError) as caught:
        read_table(path, "csv")
    assert caught.value.message == f"{path}: line {rows + 2}: expected 3 columns, found 2"


def test_csv_not_utf8_names_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("name,city\nann,Paris\nbob,Zürich\n".encode("latin-1"))
    with pytest.raises(UsageError, match=r"latin1\.csv: line 3: not valid UTF-8"):
        read_table(path, "csv")


def test_csv_header_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_bytes("größe,b\n1,2\n".encode("latin-1"))
    with pytest.raises(UsageError, match=r"h\.csv: line 1: not valid UTF-8"):
        read_table(path, "csv")


def test_empty_csv(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text("")
    with pytest.raises(UsageError, match=r"e\.csv: the file is empty"):
        read_table(path, "csv")


def test_jsonl_invalid_line(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\n{"a" 3}\n{"a": 4}\n')
    with pytest.raises(UsageError) as caught:
        read_table(path, "jsonl")
    assert caught.value.message.startswith(f"{path}: line 4: invalid JSON")


def test_jsonl_type_change_names_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": "x"}\n')
    with pytest.raises(UsageError) as caught:
        read_table(path, "jsonl")
    message = caught.value.message
    assert message.startswith(f"{path}: line 3: field 'a' is string")
    assert "expected the same type on every line" in message


def test_jsonl_line_not_an_object(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"a": 1}\n[1, 2]\n')
    with pytest.raises(UsageError, match=r"line 2: expected a JSON object, found array"):
        read_table(path, "jsonl")


def test_jsonl_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes('{"a": "ok"}\n{"a": "Zürich"}\n'.encode("latin-1"))
    with pytest.raises(UsageError, match=r"t\.jsonl: line 2: not valid UTF-8"):
        read_table(path, "jsonl")


def test_corrupt_parquet(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    path.write_bytes(b"PAR1 this is not really parquet")
    with pytest.raises(UsageError, match=r"t\.parquet: cannot read as Parquet: not a Parquet"):
        read_table(path, "parquet")


def test_truncated_parquet(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pa_parquet.write_table(_sample(), path)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(UsageError, match=r"t\.parquet: cannot read as Parquet"):
        read_table(path, "parquet")


def test_missing_file_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        read_table(tmp_path / "nope.csv", "csv")
    with pytest.raises(UsageError, match=r"unknown tabular format 'xlsx' \(known: csv, jsonl"):
        read_table(tmp_path / "nope.xlsx", "xlsx")


@pytest.mark.parametrize(
    ("arrow_type", "expected"),
    [(pa.int8(), "int"), (pa.uint64(), "int"), (pa.float32(), "float"),
     (pa.decimal128(10, 2), "float"), (pa.string(), "str"), (pa.large_string(), "str"),
     (pa.string_view(), "str"), (pa.dictionary(pa.int32(), pa.string()), "str"),
     (pa.bool_(), "bool"), (pa.date32(), "date"), (pa.timestamp("us", tz="UTC"), "datetime"),
     (pa.null(), "other"), (pa.binary(), "other"), (pa.list_(pa.int64()), "other"),
     (pa.time64("us"), "other")],
)
def test_logical_type(arrow_type: pa.DataType, expected: str) -> None:
    assert logical_type(arrow_type) == expected
