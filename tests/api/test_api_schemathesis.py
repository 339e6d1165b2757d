"""Property-based run of /openapi.json against the real server (schemathesis):
no 5xx, and every response matches its documented status, media type and
schema, for valid (positive) and invalid (negative) inputs alike.

Driven with plain Hypothesis (@given over each operation's strategy): the
schemathesis pytest plugin's lazy loader does not run under pytest 9."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.support import auth

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, ignored_auth]
EXAMPLES = {GenerationMode.POSITIVE: 30, GenerationMode.NEGATIVE: 15}


@pytest.fixture
def api_schema(live_server, shares):
    # Some data, so that the documented 200 bodies are exercised, not only the empty cases.
    shares.add("alice", 123.0, weeks_ago=1)
    shares.add("bob", 456.0, weeks_ago=1, day=2)
    shares.draw(weeks_ago=1)
    shares.add("alice", 789.0, day=1)
    return schemathesis.openapi.from_url(f"http://{live_server}/openapi.json")


def test_api_conforms_to_its_openapi(api_schema):
    headers = auth("alice", admin=True)
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) == 17
    for operation in operations:
        has_input = any(True for _ in operation.iter_parameters()) or bool(operation.body)
        for mode, examples in EXAMPLES.items():
            if mode is GenerationMode.NEGATIVE and not has_input:
                continue  # nothing to make invalid
            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            def run(case):
                case.call_and_validate(headers=headers, checks=CHECKS, timeout=15)
            run()
