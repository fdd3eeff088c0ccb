"""Request validation that names the parameter it refuses, without dumping the schema."""

from __future__ import annotations

from typing import Any

from connexion.validators import ParameterValidator


class NamedParameterValidator(ParameterValidator):
    """Connexion's parameter validator, with errors such as `query parameter 'limit': ...`."""

    @staticmethod
    def validate_parameter(
        parameter_type: str, value: Any, param: dict[str, Any], param_name: str | None = None
    ) -> str | None:
        error: str | None = ParameterValidator.validate_parameter(
            parameter_type, value, param, param_name)
        if error is None or error.startswith("Missing"):
            return error
        name = param_name or param.get("name", "?")
        return f"{parameter_type} parameter '{name}': {error.split(chr(10), 1)[0]}"
