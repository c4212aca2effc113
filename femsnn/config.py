"""TOML configuration files: strict pydantic schemas, so unknown keys and bad values fail before any work."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

Schema = TypeVar("Schema", bound=BaseModel)


class ConfigError(ValueError):
    """A configuration file that cannot be used, with a message that says why."""


class Strict(BaseModel):
    """Base of every config section: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def load_config(path: str | Path, schema: type[Schema]) -> Schema:
    """Read a TOML file into schema; relative paths inside stay relative to the file's folder."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return parse_config(data, schema, source=str(path), base_dir=path.parent)


def parse_config(data: dict, schema: type[Schema], source: str = "<config>", base_dir: Path | None = None) -> Schema:
    """Validate a dict against schema; errors name the offending keys."""
    try:
        return schema.model_validate(data, context={"base_dir": base_dir or Path.cwd()})
    except ValidationError as exc:
        lines = [f"{source}: invalid configuration"]
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            lines.append(f"  {where}: {msg}")
        raise ConfigError("\n".join(lines)) from None
