"""PII detection: each kind found and counted, check digits enforced, values never reported."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from dsops.data.pii import PII_KINDS, scan_table, scan_text_file

FOUND = {
    "email": ["jane.doe+news@example.co.uk", "write to bob@mail.example.org today"],
    "phone": ["+33 6 12 34 56 78", "(555) 123-4567", "call 555-123-4567", "+4915112345678",
              "06 12 34 56 78", "020 7946 0958", "+1 (212) 555-0100"],
    "card": ["4111 1111 1111 1111", "4111-1111-1111-1111", "paid 5555555555554444 ok",
             "3782 822463 10005", "378282246310005"],
    "iban": ["DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432", "NO9386011117947",
             "pay FR14 2004 1010 0505 0001 3M02 606 now"],
    "ipv4": ["10.0.0.1", "blocked 192.168.1.254."],
    "ipv6": ["2001:db8::1", "fe80::1 link-local", "::1",
             "2001:0db8:85a3:0000:0000:8a2e:0370:7334"],
    "us_ssn": ["123-45-6789", "ssn: 078-05-1120"],
}

NOT_FOUND = [
    # Check digits wrong: not a card, not an IBAN.
    "4111 1111 1111 1112", "4111111111111112", "GB82WEST12345698765433",
    # Dates, times, ids, amounts, versions and look-alikes.
    "2024-01-15", "2024-01-15T10:30:00", "15/01/2024", "10:30:00", "123456789",
    "0001234567", "1 234 567,89", "1,234,567.89", "+1 2 3", "v1.2.3", "1.2.3.4.5",
    "256.1.1.1", "00:1a:2b:3c:4d:5e", "std::vector", "000-12-3456", "666-12-3456",
    "900-12-3456", "a@b", "user@localhost", "0000 0000 0000 0000", "1234567890123456",
    "order 20240115103000",
]


def _kinds(value: str) -> list[str]:
    return [f["kind"] for f in scan_table(pa.table({"c": [value]}))]


@pytest.mark.parametrize(
    ("kind", "value"), [(kind, value) for kind, values in FOUND.items() for value in values]
)
def test_each_kind_is_found(kind: str, value: str) -> None:
    assert _kinds(value) == [kind]


@pytest.mark.parametrize("value", NOT_FOUND)
def test_look_alikes_are_not_found(value: str) -> None:
    assert _kinds(value) == []


def test_kinds() -> None:
    assert PII_KINDS == ("email", "phone", "card", "iban", "ipv4", "ipv6", "us_ssn")


def test_counts_rows_per_column_and_kind_never_values() -> None:
    notes = (["contact ann@example.com or +44 20 7946 0958"] * 3 + ["card 4111 1111 1111 1111"] * 2
             + ["card 4111 1111 1111 1112"] * 4 + [None, "nothing here"]
             + ["two cards 4111111111111112 and 4012888888881881"])
    table = pa.table({
        "note": notes,
        "email": [f"user{i}@example.com" for i in range(len(notes) - 1)] + ["no"],
        "amount": [float(i) * 1_000_003 for i in range(len(notes))],
        "phone_as_int": [33612345678 + i for i in range(len(notes))],
    })
    findings = scan_table(table)
    assert findings == [
        {"column": "note", "kind": "email", "count": 3},
        {"column": "note", "kind": "phone", "count": 3},
        {"column": "note", "kind": "card", "count": 3},
        {"column": "email", "kind": "email", "count": len(notes) - 1},
    ]
    dumped = json.dumps(findings)
    for value in ["ann@example.com", "4111", "7946", "user0"]:
        assert value not in dumped


def test_string_flavours_and_nulls() -> None:
    table = pa.table({
        "large": pa.array(["a@example.com", None], type=pa.large_string()),
        "dict": pa.array(["10.0.0.1", "10.0.0.1", None]).dictionary_encode().slice(0, 2),
        "all_null": pa.array([None, None], type=pa.string()),
    })
    assert scan_table(table) == [
        {"column": "large", "kind": "email", "count": 1},
        {"column": "dict", "kind": "ipv4", "count": 2},
    ]
    assert scan_table(table.slice(0, 0)) == []


def test_scan_text_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\nmail me: ann@example.com\niban DE89 3704 0044 0532 0130 00\n"
                    "bad iban DE89 3704 0044 0532 0130 01\nann@example.com again\n")
    assert scan_text_file(path) == [
        {"file": str(path), "kind": "email", "count": 2},
        {"file": str(path), "kind": "iban", "count": 1},
    ]


def test_scan_text_file_skips_binary_and_honours_max_bytes(tmp_path: Path) -> None:
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\x00\x01ann@example.com\n")
    assert scan_text_file(binary) == []
    text = tmp_path / "long.txt"
    text.write_text("x" * 1000 + "\nann@example.com\n")
    assert scan_text_file(text, max_bytes=500) == []
    assert scan_text_file(text)[0]["count"] == 1


def test_scan_text_file_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("Zürich: jürgen@example.de\n".encode("latin-1"))
    assert [f["kind"] for f in scan_text_file(path)] == ["email"]


def test_scan_text_files_batches_and_attributes_per_file(tmp_path: Path) -> None:
    from dsops.data.pii import scan_text_files

    files = []
    for i in range(30):
        path = tmp_path / f"n{i}.txt"
        body = "nothing here\n" * 3
        if i % 10 == 0:
            body += f"write to person{i}@example.com\nor call +44 20 7946 09{i:02d}\n"
        path.write_text(body)
        files.append((path.name, path, None))
    (tmp_path / "bin.txt").write_bytes(b"\0\1 person@example.com")
    files.append(("bin.txt", tmp_path / "bin.txt", None))
    small_batches = scan_text_files(files, batch_bytes=100)
    one_batch = scan_text_files(files)
    # Content already in memory is scanned as it is, without reading the path.
    in_memory = scan_text_files([(name, tmp_path / "nowhere", path.read_bytes())
                                 for name, path, _ in files])
    assert small_batches == one_batch == in_memory
    assert {(f["file"], f["kind"]) for f in one_batch} == {
        (f"n{i}.txt", kind) for i in (0, 10, 20) for kind in ("email", "phone")}
    assert all(f["count"] == 1 for f in one_batch)
