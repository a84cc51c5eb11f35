"""Checks an OpenAPI document (argv[1]) with openapi-spec-validator, then validates every JSON
example of the API contract (argv[2], markdown) against the document's schema for it with
jsonschema; an example broken on purpose must fail, so the check itself is known to bite."""

import copy
import json
import re
import sys

from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

# The contract's examples in the order it shows them, and the schema each illustrates.
EXAMPLES = [
    "ProcessVideoRequest",
    "ProcessVideoResponse",
    "TranscribeRequest",
    "BackendTranscribeResponse",
    "HealthResponse",
    "JobStatusResponse",
    "Callback",  # progress
    "Callback",  # completion
    "Callback",  # failure
]


def validator(document, name):
    schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    return Draft202012Validator(schema)


def broken(example, schema):
    """The example with its first required field set to a value of no JSON type it allows."""
    required = schema.get("required", [])
    if not required:
        return None
    wrong = copy.deepcopy(example)
    wrong[required[0]] = {"not": "this"}
    return wrong


def main():
    with open(sys.argv[1]) as f:
        document = json.load(f)
    validate(document)
    assert document["openapi"].startswith("3.1"), document["openapi"]
    with open(sys.argv[2]) as f:
        blocks = re.findall(r"```json\n(.*?)```", f.read(), re.S)
    assert len(blocks) == len(EXAMPLES), f"{len(blocks)} JSON examples, expected {len(EXAMPLES)}"
    schemas = document["components"]["schemas"]
    for name, block in zip(EXAMPLES, blocks):
        example = json.loads(block)
        check = validator(document, name)
        errors = [e.message for e in check.iter_errors(example)]
        assert not errors, f"{name} example: {errors}"
        wrong = broken(example, schemas[name])
        assert wrong is None or not check.is_valid(wrong), f"{name}: a broken example passes"
    callback = document["webhooks"]["jobCallback"]["post"]["requestBody"]
    assert callback["content"]["application/json"]["schema"]["$ref"].endswith("/Callback")
    print(f"{len(blocks)} contract examples valid against {sys.argv[1]}")


main()
