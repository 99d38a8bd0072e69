"""Validates an ECS task definition JSON offline against the RegisterTaskDefinition input
shape of botocore's ECS service model (the check the AWS CLI runs before sending it).

Usage: validate.py FILE...; exit 1 with the problems listed when one is invalid."""
import json
import sys

import botocore.session
from botocore.validate import ParamValidationError, validate_parameters

shape = (
    botocore.session.get_session()
    .get_service_model("ecs")
    .operation_model("RegisterTaskDefinition")
    .input_shape
)
failed = False
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        params = json.load(f)
    try:
        validate_parameters(params, shape)
        print(f"{path}: valid RegisterTaskDefinition input")
    except ParamValidationError as e:
        print(f"{path}: {e}", file=sys.stderr)
        failed = True
sys.exit(1 if failed else 0)
