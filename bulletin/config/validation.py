"""Checks bulletin.toml's values with pydantic: a model made from each table's dataclass, with
the same keys, limits and checks, whose result is turned back into the dataclasses.

Only reading a changed bulletin.toml needs this module (and pydantic): a configuration
checked before is kept (`bulletin.config.cache`).
"""

from __future__ import annotations

import dataclasses
import functools
import operator
import types
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, create_model, field_validator

from bulletin.config.base import Section, control_character_problem
from bulletin.config.model import Config

#: each table's model, and each model's table
_MODELS: dict[type[Section], type[BaseModel]] = {}
_TABLES: dict[type[BaseModel], type[Section]] = {}


class _Table(BaseModel):
    """What every table's model shares: frozen, no unknown keys, no control characters."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any, info: ValidationInfo) -> Any:
        running = info.field_name in _TABLES[cls]._running_text
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str):
                problem = control_character_problem(text, running)
                if problem:
                    raise ValueError(problem)
        return value


def validated(data: dict[str, Any]) -> Config:
    """`data` (bulletin.toml's tables, and the site's root) checked into a `Config`; raises
    pydantic's ValidationError naming every problem."""
    config = model_of(Config).model_validate(data)
    table: Config = _table(config)
    return table


def model_of(table: type[Section]) -> type[BaseModel]:
    """The pydantic model of a table: its keys, their limits and the table's checks."""
    made = _MODELS.get(table)
    if made is None:
        made = _MODELS[table] = _model(table)
    return made


def _model(table: type[Section]) -> type[BaseModel]:
    hints = typing.get_type_hints(table)
    fields: dict[str, Any] = {}
    for field in dataclasses.fields(table):
        options = dict(field.metadata)
        if field.default_factory is not dataclasses.MISSING:
            factory = field.default_factory
            if factory in (list, dict):  # pydantic copies a mutable default for each
                options["default"] = factory()
            else:
                options["default_factory"] = _factory(factory)
        elif field.default is not dataclasses.MISSING:
            options["default"] = field.default
        fields[field.name] = (_model_hint(hints[field.name]), Field(**options))
    validators = {
        name: field_validator(*keys)(_classmethod(value.__func__))
        for name, value in vars(table).items()
        if isinstance(value, staticmethod) and (keys := getattr(value.__func__, "checks", None))
    }
    model: type[BaseModel] = create_model(
        table.__name__,
        __base__=_Table,
        __module__=__name__,
        __validators__=validators,
        **fields,
    )
    _TABLES[model] = table
    return model


def _classmethod(check: Any) -> Any:
    def validate(cls: Any, value: Any) -> Any:
        return check(value)

    validate.__name__ = check.__name__
    return classmethod(validate)


def _factory(factory: Any) -> Any:
    """A default made by a table's factory (a table with its own defaults), as a model."""
    if isinstance(factory, type) and issubclass(factory, Section):
        return model_of(factory)
    return factory


def _model_hint(hint: Any) -> Any:
    """A field's type with each table in it replaced by the table's model."""
    if isinstance(hint, type) and issubclass(hint, Section):
        return model_of(hint)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (dict, list):
        return origin[tuple(_model_hint(arg) for arg in args)]
    if origin in (types.UnionType, typing.Union):
        return functools.reduce(operator.or_, (_model_hint(arg) for arg in args))
    return hint


def _table(value: Any) -> Any:
    """A validated model (and what it holds) as its table's dataclasses."""
    if isinstance(value, BaseModel):
        table = _TABLES[type(value)]
        return table(**{f.name: _table(getattr(value, f.name)) for f in dataclasses.fields(table)})
    if isinstance(value, dict):
        return {name: _table(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_table(item) for item in value]
    return value
