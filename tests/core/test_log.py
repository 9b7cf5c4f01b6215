"""Spans put their attributes on every record logged inside them."""

from __future__ import annotations

import io
import json
import logging

import pytest

from oxydra.core.log import JsonFormatter, KeyValueFormatter, configure_logging, get_logger, span


@pytest.fixture
def captured() -> io.StringIO:
    configure_logging("debug")
    stream = io.StringIO()
    handler = logging.getLogger("oxydra").handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    yield stream
    configure_logging("warning")


def test_records_inside_nested_spans_carry_path_and_attributes(captured: io.StringIO) -> None:
    log = get_logger("oxydra.test")
    with span("turn", session="s1"), span("provider.call", model="m"):
        log.info("calling")
    line = next(ln for ln in captured.getvalue().splitlines() if "calling" in ln)
    assert "span=turn/provider.call" in line
    assert "session=s1" in line and "model=m" in line


def test_span_end_record_reports_duration_and_error(captured: io.StringIO) -> None:
    with pytest.raises(ValueError), span("work"):
        raise ValueError("boom")
    end = [ln for ln in captured.getvalue().splitlines() if "span end" in ln][-1]
    assert "error=ValueError" in end and "elapsed_ms=" in end


def test_attributes_do_not_leak_out_of_a_span(captured: io.StringIO) -> None:
    log = get_logger("oxydra.test")
    with span("a", secret_scope="x"):
        pass
    log.warning("after")
    line = next(ln for ln in captured.getvalue().splitlines() if "after" in ln)
    assert "secret_scope" not in line and "span=" not in line


def test_json_format_is_one_object_per_record() -> None:
    record = logging.LogRecord("oxydra.x", logging.INFO, __file__, 1, "hello %s", ("you",), None)
    record.span = "s"
    record.attrs = {"k": 1}
    doc = json.loads(JsonFormatter().format(record))
    assert doc["msg"] == "hello you" and doc["span"] == "s" and doc["k"] == 1
    assert "hello you" in KeyValueFormatter().format(record)
