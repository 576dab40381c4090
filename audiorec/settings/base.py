"""What every section class shares: unknown keys refused, values frozen, errors that name the fix."""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

PARAMS_FILE = "params.yaml"

PositiveInt = Annotated[int, Field(ge=1)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
Probability = Annotated[float, Field(ge=0, le=1)]
# auto: CUDA when torch sees a GPU, else the CPU.
Device = Annotated[str, Field(pattern=r"^(auto|cpu|cuda(:\d+)?)$")]
# A torch training loop's early stopping and learning-rate schedule: val NDCG@50 or the val loss.
Monitored = Literal["ndcg", "loss"]


class SettingsError(ValueError):
    """A params.yaml value the schema refuses; the message names the file, the key and the fix."""


class Section(BaseModel):
    """One params.yaml section. Keys are required: their values live in params.yaml only."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, use_attribute_docstrings=True)

    def replace(self, **changes: Any) -> "Section":
        """A copy with `changes`, validated like the original."""
        return type(self).model_validate({**self.model_dump(), **changes})


SectionT = TypeVar("SectionT", bound=BaseModel)


def check(cls: type[SectionT], values: object, where: str, file: str = PARAMS_FILE) -> SectionT:
    """`values` (the section `where` of `file`) as a `cls`, or a SettingsError naming each bad key."""
    if not isinstance(values, dict):
        raise SettingsError(f"{file}: {where} must be a mapping of keys to values, got {values!r}")
    try:
        return cls.model_validate(values)
    except ValidationError as error:
        # A mistyped key first: its "missing" twin below it follows from it.
        issues = sorted(error.errors(), key=lambda issue: issue["type"] != "extra_forbidden")
        raise SettingsError("\n".join(describe(cls, issue, where, file) for issue in issues)) from None


def describe(cls: type[BaseModel], issue: Any, where: str, file: str) -> str:
    """One line for one pydantic error: the key, what is wrong, and what would be right."""
    key = ".".join(str(part) for part in (where, *issue["loc"]) if part != "")
    name = str(issue["loc"][-1]) if issue["loc"] else ""
    valid = list(nested_class(cls, issue["loc"][:-1]).model_fields)
    if issue["type"] == "extra_forbidden":
        parent = key.rpartition(".")[0] or "the top level"
        return f"{file}: {key}: unknown key{closest(name, valid)}; the keys of {parent}: {', '.join(valid)}"
    if issue["type"] == "missing":
        parent = key.rpartition(".")[0]
        return (
            f"{file}: {key} is missing; add it{f' to {parent}' if parent else ''} (docs/params.md says what it means)"
        )
    # A validator does not know its section's name; pydantic prefixes a validator's own message.
    message = issue["msg"].replace("<this section's name>", where).removeprefix("Value error, ")
    if not issue["loc"]:  # a rule across keys (a model validator): the section, not one value
        return f"{file}: {key}: {message}"
    return f"{file}: {key}={issue.get('input')!r}: {message}"


def nested_class(cls: type[BaseModel], loc: tuple) -> type[BaseModel]:
    """The section class at `loc` inside `cls` (split.journal: ProtocolSettings), or the last one found."""
    for part in loc:
        field = cls.model_fields.get(str(part))
        annotation = field.annotation if field is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            break
        cls = annotation
    return cls


def closest(name: str, valid: list[str]) -> str:
    """' (did you mean X?)' for the valid key nearest to a mistyped `name`, else ''."""
    match = difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
    return f" (did you mean {match[0]}?)" if match else ""
