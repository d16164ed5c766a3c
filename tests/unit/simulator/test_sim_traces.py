"""Trace loaders: the real Azure 2021 excerpt, any row order, the 2019 and plain formats, malformed rows."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import numpy as np
import pytest

from knscale.cli import main
from simulator.traces import TraceError, load_azure2019, load_azure2021, load_plain, load_trace


def test_excerpt_loads_every_row_per_app(excerpt: Path) -> None:
    wl = load_trace(excerpt)
    assert wl.requests == 199
    assert len(wl.apps) == 13
    assert sum(len(a.functions) for a in wl.apps) == 31
    for app in wl.apps:
        assert np.all(np.diff(app.start) >= 0)
    # Row 2: end 0.07949…, duration 0.078 → start 0.00149… (before the time shift to the earliest start).
    rows = list(csv.reader(excerpt.read_text().splitlines()))[1:]
    starts = [float(r[2]) - float(r[3]) for r in rows]
    first = next(a for a in wl.apps if a.name == rows[0][0])
    assert first.start[0] == pytest.approx(float(rows[0][2]) - float(rows[0][3]) - min(starts))
    assert first.duration[0] == pytest.approx(0.078)


def test_row_order_does_not_matter(excerpt: Path, tmp_path: Path) -> None:
    lines = excerpt.read_text().splitlines()
    body = lines[1:]
    random.Random(7).shuffle(body)
    shuffled = tmp_path / "shuffled.csv"
    shuffled.write_text("\n".join([lines[0], *body]) + "\n")
    a, b = load_azure2021(excerpt), load_azure2021(shuffled)
    for x, y in zip(a.apps, b.apps, strict=True):
        assert x.name == y.name
        np.testing.assert_array_equal(x.start, y.start)
        assert sorted(x.duration.tolist()) == sorted(y.duration.tolist())


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("a,f,1.0", "expected 4 fields"),
        ("a,f,abc,1.0", "end_timestamp 'abc' is not a number"),
        ("a,f,5.0,-1", "negative duration"),
        ("a,f,nan,1", "not finite"),
        (",f,5.0,1", "empty app"),
    ],
)
def test_malformed_rows_name_file_and_line(tmp_path: Path, row: str, message: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(f"app,func,end_timestamp,duration\na,f,2.0,1.0\n{row}\n")
    with pytest.raises(TraceError, match=message) as err:
        load_trace(path)
    assert f"{path}:3:" in str(err.value)


def test_cli_exits_2_on_a_malformed_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.csv"
    path.write_text("timestamp,duration\n1.0,0.5\n2.0,oops\n")
    assert main(["simulate", "--trace", str(path), "--policy", "kpa", "--seeds", "1"]) == 2
    assert f"{path}:3: duration 'oops' is not a number" in capsys.readouterr().err


def test_unknown_header_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("when,how_long\n1,2\n")
    with pytest.raises(TraceError, match=":1: unknown header"):
        load_trace(path)


def test_plain_format_timestamp_is_the_start(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("timestamp,duration\n10.0,1.5\n4.0,0.5\n")
    wl = load_plain(path)
    assert wl.apps[0].start.tolist() == [0.0, 6.0]  # sorted, shifted to the earliest start
    assert wl.apps[0].duration.tolist() == [0.5, 1.5]


@pytest.mark.parametrize("spreading", ["exponential", "uniform"])
def test_2019_per_minute_counts_are_spread_inside_their_minute(tmp_path: Path, spreading: str) -> None:
    path = tmp_path / "d01.csv"
    minutes = ["0"] * 1440
    minutes[0], minutes[2] = "3", "5"
    path.write_text(
        "HashOwner,HashApp,HashFunction,Trigger,"
        + ",".join(str(i + 1) for i in range(1440))
        + "\n"
        + "o,app1,fn1,http,"
        + ",".join(minutes)
        + "\n"
        + "o,app1,fn2,timer,"
        + ",".join(["1"] + ["0"] * 1439)
        + "\n"
    )
    wl = load_azure2019(path, spreading=spreading, seed=3)  # type: ignore[arg-type]
    (app,) = wl.apps
    assert app.requests == 9 and app.functions == ("fn1", "fn2")
    # Shifted to the earliest call (inside minute 1): minute 1's four calls stay below 60 s,
    # minute 3's five land in [60, 180).
    assert (app.start < 60).sum() == 4 and ((app.start >= 60) & (app.start < 180)).sum() == 5
    again = load_azure2019(path, spreading=spreading, seed=3)  # type: ignore[arg-type]
    np.testing.assert_array_equal(again.apps[0].start, app.start)


def test_2019_bad_count_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "d01.csv"
    path.write_text("HashOwner,HashApp,HashFunction,Trigger,1,2\no,a,f,http,1,x\n")
    with pytest.raises(TraceError, match=r":2: minute 2 count 'x' is not an integer"):
        load_azure2019(path)
