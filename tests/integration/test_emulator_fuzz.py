"""Fuzz a real emulator process through its own OpenAPI document (/openapi.json) with schemathesis: whatever a
client sends, valid or not, with the API key or without, the answer is never a 5xx, has a documented status and
content type and matches the documented schema (OpenAI's objects, or its error envelope), and a method the path
does not declare is a 405 with ``Allow``. About a minute on two cores: every operation gets ``max_examples`` valid
and as many invalid requests, then schemathesis's coverage cases (a few hundred in all, about 3 s)."""

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import APIOperation, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.generation.meta import CoverageScenario, coverage_scenario
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

API_KEY = "fuzz-key"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    ignored_auth,
    positive_data_acceptance,
]  # not negative_data_rejection: an invalid case without the Authorization header gets it back from the headers
# given below, and a query parameter made an array is sent repeated, which the emulator (FastAPI) reads as the last
# value: both read as "invalid data accepted" but neither is a fault
SETTINGS = settings(
    max_examples=15,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


def fuzz(operation: APIOperation, mode: GenerationMode) -> None:
    """Send ``operation`` the requests schemathesis generates in ``mode`` and check every answer."""

    @SETTINGS
    @given(case=operation.as_strategy(mode))
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(headers={"Authorization": f"Bearer {API_KEY}"}, checks=CHECKS, timeout=10)

    run()


def cover(schema: schemathesis.BaseSchema, operation: APIOperation) -> set[str]:
    """Send ``operation`` the coverage phase's deterministic cases (boundary and wrongly typed values, missing
    parameters, bad content types, each method the path does not declare) and check every answer, 405s included;
    the methods probed as undeclared."""
    config = schema.config.generation_for(operation=operation, phase="coverage")
    undeclared = set()
    for case in schema.iter_coverage_cases(operation, generation_modes=list(GenerationMode), generation_config=config):
        if coverage_scenario(case) == CoverageScenario.UNSPECIFIED_HTTP_METHOD:
            undeclared.add(case.method.upper())
        case.call_and_validate(
            headers={"Authorization": f"Bearer {API_KEY}"}, checks=[*CHECKS, unsupported_method], timeout=10
        )
    return undeclared


def test_emulator_answers_every_request_as_documented(emulator, subtests):
    # schemathesis.pytest.from_fixture would do this, but its lazy schema breaks on pytest 9 (Function._nodeid)
    emu = emulator(env={"BATCHKIT_EMULATOR_API_KEY": API_KEY})
    schema = schemathesis.openapi.from_url(emu.base_url.removesuffix("/v1") + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 17  # /health and the 16 /v1 operations
    for operation in operations:
        for mode in GenerationMode:
            if mode.is_negative and not (operation.body or any(operation.iter_parameters())):
                continue  # GET /health, GET /v1/models: nothing to make invalid
            with subtests.test(operation=operation.label, mode=mode.value):
                fuzz(operation, mode)
    probed = {}
    for operation in operations:
        with subtests.test(operation=operation.label, phase="coverage"):
            probed.setdefault(operation.path, set()).update(cover(schema, operation))
    assert all({"TRACE", "PUT"} <= methods for methods in probed.values()), probed  # every path, once
