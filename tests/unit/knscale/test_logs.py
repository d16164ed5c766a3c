"""knscale.logs: the text and JSON formats of `--log-format`, and the setting in both commands."""

from __future__ import annotations

import io
import json
import logging

import pytest

from knscale.cli import main
from knscale.logs import JsonFormatter, TextFormatter, configure_logging
from knscale.settings import SettingsError
from knscale.settings.reconcile import build_reconcile_settings
from knscale.settings.serve import build_serve_settings


def _record(msg: str, fields: dict[str, object] | None = None, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            import sys

            exc_info = sys.exc_info()
    record = logging.LogRecord("knscale.test", logging.INFO, __file__, 1, msg, (), exc_info)
    if fields is not None:
        record.knscale = fields
    return record


def test_json_lines_have_stable_keys_then_the_event_fields() -> None:
    line = JsonFormatter().format(
        _record("admission decision", {"uid": "u-1", "rules": ["KNS001"], "dryRun": False})
    )
    assert "\n" not in line
    doc = json.loads(line)
    assert list(doc) == ["ts", "level", "logger", "msg", "uid", "rules", "dryRun"]
    assert doc["level"] == "info" and doc["logger"] == "knscale.test" and doc["msg"] == "admission decision"
    assert doc["ts"].endswith("+00:00") and "T" in doc["ts"]
    assert (doc["uid"], doc["rules"], doc["dryRun"]) == ("u-1", ["KNS001"], False)


def test_an_event_field_never_replaces_a_fixed_key() -> None:
    doc = json.loads(JsonFormatter().format(_record("m", {"level": "error", "msg": "forged"})))
    assert (doc["level"], doc["msg"]) == ("info", "m")
    assert (doc["field_level"], doc["field_msg"]) == ("error", "forged")


def test_an_exception_is_one_field_of_the_same_line() -> None:
    line = JsonFormatter().format(_record("failed", exc=True))
    assert "\n" not in line
    doc = json.loads(line)
    assert "ValueError: boom" in doc["exc"]


def test_a_field_of_an_odd_type_is_written_as_text() -> None:
    doc = json.loads(JsonFormatter().format(_record("m", {"obj": object()})))
    assert doc["obj"].startswith("<object object")


def test_text_lines_append_the_fields_and_quote_what_would_break_them() -> None:
    line = TextFormatter().format(
        _record("scale decision", {"desired": 3, "previous": None, "reason": "a b\nc", "dryRun": True})
    )
    assert line.endswith("scale decision desired=3 previous=- reason='a b\\nc' dryRun=true")
    assert "\n" not in line


def test_configure_logging_routes_uvicorn_through_the_same_format() -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    logging.getLogger("uvicorn.error").addHandler(logging.StreamHandler(io.StringIO()))
    try:
        configure_logging("info", "json", stream)
        logging.getLogger("uvicorn.error").info("Started server process")
        logging.getLogger("knscale.x").debug("not at info")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    [line] = stream.getvalue().splitlines()
    assert json.loads(line)["msg"] == "Started server process"
    assert logging.getLogger("uvicorn.error").handlers == []


def test_both_commands_take_the_format_from_flag_or_environment() -> None:
    assert build_serve_settings({}).log_format == "text"
    assert build_serve_settings({"log_format": "json"}).log_format == "json"
    assert build_serve_settings({}, {"KNSCALE_LOG_FORMAT": "json"}).log_format == "json"
    assert build_reconcile_settings({"log_format": "json"}, {}).log_format == "json"
    assert build_reconcile_settings({}, {"KNSCALE_LOG_FORMAT": "json"}).log_format == "json"


def test_a_wrong_format_is_a_settings_error_naming_the_flag() -> None:
    with pytest.raises(SettingsError, match="--log-format: Input should be 'text' or 'json'"):
        build_serve_settings({"log_format": "xml"})
    with pytest.raises(SettingsError, match="--log-format"):
        build_reconcile_settings({"log_format": "yaml"}, {})


@pytest.mark.parametrize("command", ["serve", "reconcile"])
def test_the_cli_reports_it_without_a_traceback(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--log-format", "xml"]) == 2
    err = capsys.readouterr().err
    assert "--log-format: Input should be 'text' or 'json' (got 'xml')" in err
    assert "Traceback" not in err


def test_the_metrics_port_is_off_by_default_and_never_the_tls_port() -> None:
    assert build_serve_settings({}).metrics_port == 0
    assert build_serve_settings({"metrics_port": 9091}).metrics_port == 9091
    with pytest.raises(SettingsError, match="--metrics-port 8443 is the TLS port"):
        build_serve_settings({"metrics_port": 8443})
    with pytest.raises(SettingsError, match="--metrics-port"):
        build_serve_settings({"metrics_port": 70000})
