"""The split options are declared once (on ``SplitConfig``) and every surface comes from that declaration: the
``batchkit split`` flags, the DAG's Params and the split operator's fields, with the same values in each."""

import inspect
from dataclasses import fields

import pytest
from airflow.sdk import DAG

from batchkit.cli import build_parser
from batchkit.split.options import declared
from batchkit.split.split_config import SplitConfig
from openai_batch.operators import SplitPartitionOperator
from openai_batch.operators.split_options import OPTIONS
from openai_batch.params import FORM, inference_params
from openai_batch.vendors import vendor_class

OPENAI = vendor_class("openai")("unused")

# What a surface does not offer, on purpose; a new option must appear here or everywhere
VENDOR = {"request_limit", "byte_limit", "vendor"}  # the Airflow layer's, from the connection's vendor
NOT_ON_CLI = {"keep_columns", "max_files", *VENDOR}  # the CLI keeps every column; max_files: max_map_length
NOT_IN_FORM = {"max_bytes", "exact_tokens", "prices", "max_files", *VENDOR}  # prices: the openai_batch_prices Variable
NOT_ON_OPERATOR = {"max_files", *VENDOR}  # set from Airflow's [core] max_map_length and the vendor


def split_flags() -> dict[str, object]:
    """``batchkit split``'s options by flag."""
    commands = next(a for a in build_parser()._actions if a.dest == "command")
    return {flag: action for action in commands.choices["split"]._actions for flag in action.option_strings}


def test_every_split_option_has_one_declaration_and_shows_up_where_it_says():
    specs = list(declared(SplitConfig))
    assert [each.name for each, _ in specs] == [each.name for each in fields(SplitConfig)]
    for surface in ("flag", "param", "operator"):
        names = [getattr(spec, surface) for _, spec in specs if getattr(spec, surface)]
        assert len(names) == len(set(names)), f"two options share a {surface}"
    flags, params = split_flags(), inference_params("/data", "%Y-%m-%d", "t")
    signature = inspect.signature(SplitPartitionOperator.__init__).parameters
    for each, spec in specs:
        assert (not spec.flag) == (each.name in NOT_ON_CLI), each.name
        assert (spec.param is None) == (each.name in NOT_IN_FORM), each.name
        assert (spec.operator is None) == (each.name in NOT_ON_OPERATOR), each.name
        if spec.flag:
            assert flags[spec.flag].dest == each.name and flags[spec.flag].help == spec.help
        if spec.param:
            assert params[spec.param].description == spec.form["description"]
        if spec.operator:
            assert spec.operator in SplitPartitionOperator.template_fields and spec.operator in signature
    assert {name for names in FORM.values() for name in names} == set(params)


def test_the_trigger_form_keeps_its_params_order_sections_defaults_and_types():
    params = inference_params("/data", "%Y-%m-%d", "review_sentiment")
    assert list(params) == [name for names in FORM.values() for name in names]
    assert {name: p.schema["section"] for name, p in params.items()} == {
        name: section for section, names in FORM.items() for name in names
    }
    shown = {name: (params[name].value, params[name].schema.get("type")) for name in OPTIONS_IN_FORM}
    assert shown == {
        "model": ("gpt-4o-mini", "string"),
        "endpoint": ("/v1/chat/completions", None),
        "prompt_template": (params["prompt_template"].value, "string"),
        "prompt_column": (None, ["null", "string"]),
        "system_prompt": ("Answer with one word.", "string"),
        "id_column": ("review_id", "string"),
        "max_requests_per_file": (None, ["null", "integer"]),  # empty: the vendor's limit
        "max_tokens_per_file": (None, ["null", "integer"]),
        "body_options": ({"temperature": 0}, "object"),
        "input_columns": ([], "array"),
        "output_schema": (None, ["null", "object"]),
        "expected_output_tokens": (None, ["null", "integer"]),
        "image_columns": ([], "array"),
        "image_detail": ("auto", None),
    }
    assert params["prompt_template"].value.startswith("Classify the sentiment of this review of {product}")
    assert params["endpoint"].schema["enum"] == [
        *("/v1/chat/completions", "/v1/responses", "/v1/embeddings", "/v1/moderations")
    ]
    assert params["image_detail"].schema["enum"] == ["auto", "low", "high"]
    assert params["max_requests_per_file"].schema["maximum"] == 100_000  # the largest vendor's
    again = inference_params("/data", "%Y-%m-%d", "review_sentiment")
    again["body_options"].value["temperature"] = 1  # one DAG's Params never change another's
    assert params["body_options"].value == {"temperature": 0}


OPTIONS_IN_FORM = [spec.param for _, spec in declared(SplitConfig) if spec.param]

CLI = [
    *("--model", "gpt-4.1", "--endpoint", "/v1/responses", "--prompt-template", "Review: {text}"),
    *("--system-prompt", "Be brief.", "--id-column", "id", "--max-requests", "7", "--max-bytes", "2MB"),
    *("--max-tokens", "900", "--exact-tokens", "--body-json", '{"temperature": 0}'),
    *("--expected-output-tokens", "0", "--prices", '{"gpt-4.1": {"input": 1, "output": 4}}'),
    *("--image-column", "photo", "--image-column", "label", "--image-detail", "low"),
]
CONFIG = SplitConfig(
    model="gpt-4.1",
    endpoint="/v1/responses",
    prompt_template="Review: {text}",
    system_prompt="Be brief.",
    id_column="id",
    max_requests=7,
    max_bytes=2_000_000,
    max_tokens=900,
    exact_tokens=True,
    body_options={"temperature": 0},
    expected_output_tokens=0,
    prices={"gpt-4.1": {"input": 1, "output": 4}},
    image_columns=["photo", "label"],
    image_detail="low",
)


def test_the_cli_and_the_operator_make_the_same_config_from_the_same_choices(monkeypatch):
    from batchkit import cli

    made = []
    monkeypatch.setattr(cli, "split", lambda source, out, config, progress: made.append(config) or 1 / 0)
    with pytest.raises(ZeroDivisionError):
        cli.main(["split", "src", "--out", "o", *CLI])
    assert made == [CONFIG]
    operator = SplitPartitionOperator(
        task_id="split",
        source="src",
        staging_root="/st",
        **{name: getattr(CONFIG, each.name) for name, (each, _) in OPTIONS.items()},
    )
    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", "9")
    assert operator._config(OPENAI) == SplitConfig(**{**vars(CONFIG), "max_files": 9})


def test_empty_rendered_values_take_the_options_defaults(monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", "1024")
    blank = {"prompt_column": "", "system_prompt": "", "id_column": "", "max_tokens": "", "body_options": ""}
    blank |= {"input_columns": [], "output_schema": {}, "expected_output_tokens": None, "prices": {}}
    operator = SplitPartitionOperator(
        task_id="s", source="s", staging_root="/st", model="m", prompt_template="{t}", **blank
    )
    config = operator._config(OPENAI)
    assert config == SplitConfig(model="m", prompt_template="{t}", max_files=1024)
    anthropic = vendor_class("anthropic")("unused")  # empty limits: the vendor's own
    config = operator._config(anthropic)
    assert (config.max_requests, config.max_bytes) == (100_000, anthropic.limits.max_bytes)
    assert (config.request_limit, config.vendor) == (100_000, "anthropic")
    rendered = {"max_requests": "40", "input_columns": "a, b", "exact_tokens": "True"}
    operator = SplitPartitionOperator(
        task_id="s", source="s", staging_root="/st", model="m", prompt_column="t", **rendered
    )
    config = operator._config(OPENAI)
    assert (config.max_requests, config.keep_columns, config.exact_tokens) == (40, ["a", "b"], True)


def test_split_options_are_operator_arguments_to_airflow():
    """``default_args``, ``partial`` and a missing required option work as for any keyword of the operator."""
    with DAG("d", schedule=None, default_args={"model": "from-default-args", "max_requests": 5}):
        split = SplitPartitionOperator(task_id="split", source="s", staging_root="/st", prompt_column="t")
        mapped = SplitPartitionOperator.partial(
            task_id="mapped", staging_root="/st", model="m", prompt_column="t"
        ).expand(source=["a", "b"])
    assert (split.model, split.max_requests, split.max_bytes, split.body_options) == (
        "from-default-args",
        5,
        None,
        None,
    )
    assert mapped.partial_kwargs["model"] == "m"
    with pytest.raises(TypeError, match="model"):
        SplitPartitionOperator(task_id="x", source="s", staging_root="/st", prompt_column="t")
    with pytest.raises(TypeError, match="no_such_option"):
        SplitPartitionOperator(task_id="y", source="s", staging_root="/st", model="m", no_such_option=1)
