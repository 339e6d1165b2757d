"""Parsing for `lottery ingest`, without a database: one log line -> one row of COPY
text for the staging table, or Malformed with the reason. Whether an event is sound
(its user, sdiff, accepted flag...) is not judged here: share_event_problem() does
that in SQL, see db/cli/ingest_load.py. The input forms are described in
`lottery ingest --help` (db/cli/ingest.py) and docs/operating.md."""

from __future__ import annotations

import datetime as dt
import json
import math
import re

UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)

EPOCH_TEXT_RE = re.compile(r"\d{1,12}(\.\d{1,9})?")
CKPOOL_DATE_RE = re.compile(r"(\d{1,12}),(\d{1,9})")
NUL_ESCAPE_RE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
# ISO 8601 texts PostgreSQL reads exactly as Python does: passed through as they are.
# (Offsets up to 14:59: PostgreSQL refuses those past 15:59, Python accepts up to 23:59.)
ISO_PLAIN_RE = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(Z|[+-]1[0-4]:\d{2}|[+-]0\d:\d{2})?")

FLAT_ENVELOPE = frozenset(("type", "event_type", "ts", "createdate"))
CKPOOL_NAMES = (("username", "user"), ("workername", "worker"), ("result", "accepted"))
COPY_TEXT_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
COPY_NULL = "\\N"


class Malformed(ValueError):
    """A line that cannot be loaded; the message is the reason the report gives."""


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON value (jsonb cannot store it)")


# Strict JSON: NaN, Infinity and -Infinity, which Python reads and jsonb refuses, are errors.
_decode_json = json.JSONDecoder(parse_constant=_no_constant).decode
_encode_json = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


def json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _time_from_text(value: str) -> str | dt.datetime:
    text = value.strip()
    match = ISO_PLAIN_RE.fullmatch(text)
    if match:
        try:
            dt.datetime.fromisoformat(text)  # rejects 2026-02-30, 25:00 and the like
        except ValueError:
            raise ValueError(f"{value[:40]!r} is not a valid time") from None
        return text if match[1] else text + "+00:00"
    match = CKPOOL_DATE_RE.fullmatch(text)
    if match:
        # ckpool prints tv_nsec with %lu: "5" is 5 ns, not half a second.
        return EPOCH + dt.timedelta(seconds=int(match[1]), microseconds=int(match[2]) // 1000)
    if EPOCH_TEXT_RE.fullmatch(text):
        whole, _, frac = text.partition(".")
        return EPOCH + dt.timedelta(seconds=int(whole), microseconds=int((frac + "000000")[:6]))
    try:
        moment = dt.datetime.fromisoformat(text) if 8 <= len(text) <= 40 else None
    except ValueError:
        moment = None
    if moment is None:
        raise ValueError(f"cannot read {value[:40]!r} as a time")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)  # any offset Python reads, PostgreSQL gets as UTC
    except (OverflowError, ValueError):
        raise ValueError(f"{value[:40]!r} is out of range") from None


def parse_time(value) -> str:
    """An event time as text for COPY (always with an offset): ISO 8601 text (no offset
    means UTC), unix epoch seconds (a number or its text) or ckpool's 'sec,nsec'."""
    if isinstance(value, str):
        moment = _time_from_text(value)
        if isinstance(moment, str):
            return moment
    elif isinstance(value, bool):
        raise ValueError("a boolean is not a time")
    elif isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f"{value} is not a time")
        try:
            moment = dt.datetime.fromtimestamp(value, UTC)
        except (OverflowError, ValueError, OSError):
            raise ValueError(f"epoch seconds {value} out of range") from None
    else:
        raise ValueError(f"a {json_type(value)} is not a time")
    return moment.isoformat()


def _envelope(obj: dict) -> tuple[object, object, object]:
    """(event type, payload, source) of a parsed line in any of the three forms."""
    if "payload" in obj:  # the mining_events row; the payload is stored as given
        return obj.get("event_type", obj.get("type")), obj["payload"], obj.get("source")
    if "data" in obj:  # the platform collector's datagram
        return obj.get("event"), obj["data"], obj.get("source")
    event_type = obj.get("event_type", obj.get("type"))
    if event_type is None and ("sdiff" in obj or "hash" in obj):
        event_type = "share_submitted"  # ckpool's share log has no type field
    payload = {k: v for k, v in obj.items() if k not in FLAT_ENVELOPE}
    for ckpool_name, name in CKPOOL_NAMES:
        if ckpool_name in payload and name not in payload:
            payload[name] = payload.pop(ckpool_name)
    return event_type, payload, None


def _copy_text(value: object, name: str) -> str:
    """A text column for COPY: NULL for None; Malformed when not a string or holding NUL."""
    if value is None:
        return COPY_NULL  # an event type SQL reports missing; a source the column default fills
    if value.__class__ is not str:
        raise Malformed(f'"{name}" must be a string, not a {json_type(value)}')
    if value.isidentifier():  # the usual names need no COPY escaping
        return value
    if "\x00" in value:
        raise Malformed(f'"{name}" holds \\u0000, which text cannot store')
    return value.translate(COPY_TEXT_ESCAPES)


def parse_event(raw: bytes | str) -> str:
    """One log line -> its event as COPY text columns "ts<TAB>event_type<TAB>payload<TAB>source\\n".

    Parsing only: the line must be a JSON object (that jsonb can store) in one of the
    envelope forms, with a readable time and an event type and source that, when
    present, are strings. Whether the event itself is sound is share_event_problem()'s
    to judge, in SQL. A missing event type goes to SQL as NULL, and so does a missing
    source. Raises Malformed with the reason."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        obj = _decode_json(text.lstrip("\ufeff"))
    except UnicodeDecodeError as exc:
        raise Malformed(f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    except (ValueError, RecursionError) as exc:
        raise Malformed(f"bad JSON: {exc}") from None
    if obj.__class__ is not dict:
        raise Malformed(f"not a JSON object but a {json_type(obj)}")

    event_type, payload, source = _envelope(obj)
    event_type = _copy_text(event_type, "event_type")
    source = _copy_text(source, "source")

    ts_value = obj["ts"] if "ts" in obj else obj.get("createdate")
    if ts_value is None:
        raise Malformed('"ts" is missing')
    try:
        ts = parse_time(ts_value)
    except ValueError as exc:
        raise Malformed(f'bad "ts": {exc}') from None

    try:
        body = _encode_json(payload)
    except ValueError:  # NaN/Infinity tokens are refused above: a number like 1e400 read as inf
        raise Malformed("bad JSON: a number beyond the range of a double (1.8e308)") from None
    if "\\u" in text:  # only an escape can smuggle in NUL or a lone surrogate
        if NUL_ESCAPE_RE.search(body):
            raise Malformed("the payload holds \\u0000, which jsonb cannot store")
        try:
            body.encode("utf-8")
            event_type.encode("utf-8")
            source.encode("utf-8")
        except UnicodeEncodeError:
            raise Malformed("a lone UTF-16 surrogate, which is not text") from None
    if "\\" in body:
        body = body.replace("\\", "\\\\")  # COPY text format: the JSON's own escapes survive
    return f"{ts}\t{event_type}\t{body}\t{source}\n"


def copy_line(ts: dt.datetime, event_type: str, payload: dict) -> str:
    """A row we made ourselves (demo) as a line of COPY text for (ts, event_type, payload)."""
    body = _encode_json(payload)
    if "\\" in body:
        body = body.replace("\\", "\\\\")
    return f"{ts.isoformat()}\t{event_type.translate(COPY_TEXT_ESCAPES)}\t{body}\n"
