"""SpillFile: raw lines parked on disk and read back by position."""

from __future__ import annotations

from pathlib import Path

import orjson

from flywheel.clients.spill import SpillFile


def test_appends_and_reads_back_in_any_order(tmp_path: Path) -> None:
    items = [b'{"a": 1}', '{"b": "\u00e9t\u00e9"}', {"c": [1, 2]}, b"", "x" * 100_000]
    with SpillFile(tmp_path) as spill:
        for item in items:
            spill.append(item)
        assert len(spill) == 5
        assert spill[2] == orjson.dumps({"c": [1, 2]})
        assert spill[1].decode() == '{"b": "\u00e9t\u00e9"}'
        assert spill[0] == b'{"a": 1}'
        assert spill[3] == b""
        assert spill[4] == b"x" * 100_000
        spill.append(b"later")  # appending after reading works too
        assert spill[5] == b"later"
    assert list(tmp_path.iterdir()) == []  # anonymous: nothing left behind


def test_lone_surrogates_survive(tmp_path: Path) -> None:
    with SpillFile(tmp_path) as spill:
        spill.append('{"t": "\ud800"}')
        assert spill[0] == '{"t": "\ud800"}'.encode("utf-8", "surrogatepass")
