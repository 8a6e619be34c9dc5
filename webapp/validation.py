"""Every field an admin or a provider sends is type-checked here, against strict pydantic models:
`{"text": {"$gt": ""}}` is refused naming `text`, never turned into the text "{'$gt': ''}", and a
number is not taken for the text "5" (nor the text "0.5" for a number)."""
from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


class InvalidInput(ValueError):
    """Input that does not fit its model; `problems` names each bad field (`create_app` answers it
    with 400 `{"error", "field", "problems"}`)."""

    def __init__(self, problems: list[dict[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{p['field']}: {p['error']}" for p in problems))

    @classmethod
    def one(cls, field: str, error: str) -> InvalidInput:
        return cls([{"field": field, "error": error}])

    @property
    def field(self) -> str:
        return self.problems[0]["field"]


def whole_number(text: str, most: int) -> int | None:
    """`text` as a whole number from 1 to `most` (ASCII digits only: "٣" is no 3), else None."""
    return int(text) if text.isascii() and text.isdigit() and 0 < int(text) <= most else None


def validated(model: type[Model], data: object) -> Model:
    """`data` as `model`, each field of exactly its type; InvalidInput otherwise."""
    try:
        return model.model_validate(data, strict=True)
    except ValidationError as error:
        raise InvalidInput([_problem(e) for e in error.errors()]) from None


def _problem(error: dict) -> dict[str, str]:
    return {"field": ".".join(str(part) for part in error["loc"]) or "body", "error": message_of(error)}


def message_of(error: dict) -> str:
    """What is wrong, from one of a ValidationError's errors: a validator's own ValueError reads
    better without pydantic's "Value error, " in front."""
    return str(error["ctx"]["error"]) if error["type"] == "value_error" else error["msg"]
