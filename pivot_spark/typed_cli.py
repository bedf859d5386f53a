"""Typer commands generated from a pydantic settings model, so defaults and help live in the model only.

``add_command(app, Model, run)`` adds a command with one option per field (``--seq-len`` for ``seq_len``, its
help the field's description, its default the field's default, shown by ``--help``), ``--config FILE`` (a YAML
mapping of fields) and ``key=value`` arguments (YAML values, ``a.b=v`` into mapping fields), as ``pivot-spark``
takes them. The command validates the model and calls ``run`` with it. Precedence, lowest first: the model's
defaults, the ``--config`` file, the ``key=value`` arguments, the options given on the command line.

Option types follow the field: ``bool`` is a ``--x/--no-x`` flag, a list of scalars one comma-separated value
(``--langs en,fr``), a list of lists a repeatable option of comma-separated values; mapping fields are set through
the file or ``key=value`` only. Fields the command line cannot spell otherwise (``Literal`` choices, unions) take
text and leave the conversion and the check to the model's validators.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import typer
import yaml
from pydantic import BaseModel, ValidationError

from pivot_spark import __version__
from pivot_spark.config import ConfigError, typed_value

M = TypeVar("M", bound=BaseModel)
_RESERVED = {"ctx", "config", "overrides", "version"}
_SCALARS = (bool, int, float, str, Path)
_GIVEN = ("COMMANDLINE", "ENVIRONMENT")  # where an option's value came from when it was given


class SettingsError(ValueError):
    """Settings that do not validate: the message names each bad field."""


def version_callback(prog: str) -> Callable[[bool], None]:
    """The callback of an eager ``--version`` option: it prints ``PROG VERSION`` and exits, before anything else
    is checked."""

    def show(value: bool) -> None:
        if value:
            typer.echo(f"{prog} {__version__}")
            raise typer.Exit()

    return show


VERSION_HELP = "print the version and exit"


def split_list(value: Any) -> Any:
    """A comma-separated string as a list (a before-validator for list fields set from a command line)."""
    if isinstance(value, str):
        return [x.strip() for x in value.split(",") if x.strip()]
    return value


def read_settings_file(file: str | Path) -> dict[str, Any]:
    """A YAML mapping of settings."""
    p = Path(file)
    if not p.is_file():
        raise SettingsError(f"settings file {p} not found")
    data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise SettingsError(f"{p}: the top level must be a mapping of settings")
    return data


def apply_overrides(data: dict[str, Any], overrides: Sequence[str], model: type[BaseModel] | None = None
                    ) -> dict[str, Any]:
    """Set ``key=value`` items (YAML values; ``a.b=v`` sets ``b`` in mapping ``a``) in ``data``, in place. With
    ``model`` each value is typed for its field as ``pivot-spark`` types overrides (``max_steps=5e3``)."""
    for item in overrides:
        if "=" not in item:
            raise SettingsError(f"argument {item!r} must look like key=value")
        key, raw = item.split("=", 1)
        keys = key.strip().split(".")
        node = data
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise SettingsError(f"{item!r}: {k} is not a mapping")
        if raw == "":
            node[keys[-1]] = None
        elif model is None:
            node[keys[-1]] = yaml.safe_load(raw)
        else:
            try:
                node[keys[-1]] = typed_value(raw, model, keys, f"argument {item!r}")
            except ConfigError as e:
                raise SettingsError(str(e)) from e
    return data


def validate(model: type[M], data: Mapping[str, Any]) -> M:
    """``model`` from ``data``; a :class:`SettingsError` naming every bad field when it does not validate."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        bad = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'settings'}: {err['msg'].removeprefix('Value error, ')}"
                        for err in e.errors())
        raise SettingsError(f"invalid {model.__name__}: {bad}") from e


def load_settings(model: type[M], file: str | Path | None = None, overrides: Sequence[str] = (),
                  given: Mapping[str, Any] | None = None) -> M:
    """``model`` from a YAML file, ``key=value`` overrides and given values, in that order of precedence."""
    data = read_settings_file(file) if file is not None else {}
    apply_overrides(data, overrides, model)
    data.update(given or {})
    return validate(model, data)


def _unwrap(annotation: Any) -> Any:
    """``X`` of ``X | None``; other unions as they are."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _option(name: str, annotation: Any, default: Any, required: bool, help_text: str,
            panel: str | None) -> tuple[Any, Any] | None:
    """(annotation with its typer option, default) of one field; None for fields set by file/overrides only."""
    t = _unwrap(annotation)
    origin, args = get_origin(t), get_args(t)
    decls = [f"--{name.replace('_', '-')}"]
    kw: dict[str, Any] = {"help": help_text, "rich_help_panel": panel, "show_default": not required}
    cli_t: Any
    if t in _SCALARS:
        cli_t = t
        if t is bool:
            decls = [f"--{name.replace('_', '-')}/--no-{name.replace('_', '-')}"]
    elif origin is list and args and get_origin(args[0]) is list:
        cli_t = list[str]
        default = [",".join(map(str, d)) for d in default or []]
    elif origin is list:
        cli_t = str
        default = None if default is None else ",".join(map(str, default))
    elif origin is Literal:
        cli_t = str
        kw["help"] = f"{help_text} (one of: {', '.join(map(str, args))})".strip()
    elif origin is dict:
        return None
    else:
        cli_t = str
        default = None if default is None else str(default)
    if required:
        kw["help"] = f"{help_text} (required)".strip()
    return Annotated[cli_t | None, typer.Option(*decls, **kw)], default


def add_command(app: typer.Typer, model: type[M], run: Callable[[M], Any], *, name: str, help: str,
                groups: Mapping[str, Sequence[str]] | None = None, version: bool = False) -> None:
    """Add command ``name`` to ``app``: options from ``model``'s fields (``groups``: help panel -> fields, listed
    in that order), ``--config FILE`` and ``key=value`` arguments (and ``--version`` with ``version``, for a
    program of one command); it calls ``run(settings)`` and returns what ``run`` returns."""
    panel_of = {f: panel for panel, fields in (groups or {}).items() for f in fields}
    params = [
        inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context),
        inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[
            Path | None, typer.Option("--config", "-c", help="YAML file of settings (key=value arguments and "
                                      "options override it)", show_default=False)]),
    ]
    if version:
        params.append(inspect.Parameter("version", inspect.Parameter.KEYWORD_ONLY, default=False,
                                        annotation=Annotated[bool, typer.Option(
                                            "--version", callback=version_callback(name), is_eager=True,
                                            help=VERSION_HELP)]))
    options: list[str] = []
    grouped = [f for fields in (groups or {}).values() for f in fields]
    for field_name in dict.fromkeys([*grouped, *model.model_fields]):
        field = model.model_fields[field_name]
        if field_name in _RESERVED:
            raise ValueError(f"{model.__name__}.{field_name}: the name is taken by the command line")
        required = field.is_required()
        default = None if required else field.get_default(call_default_factory=True)
        opt = _option(field_name, field.annotation, default, required, field.description or "",
                      panel_of.get(field_name))
        if opt is None:
            continue
        options.append(field_name)
        params.append(inspect.Parameter(field_name, inspect.Parameter.KEYWORD_ONLY, default=opt[1],
                                        annotation=opt[0]))
    params.append(inspect.Parameter("overrides", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[
        list[str] | None, typer.Argument(help="settings as key=value (YAML values)", show_default=False)]))

    def command(**kw: Any) -> Any:
        ctx: typer.Context = kw["ctx"]
        given = {k: kw[k] for k in options if getattr(ctx.get_parameter_source(k), "name", "") in _GIVEN}
        try:
            settings = load_settings(model, kw["config"], kw["overrides"] or [], given)
        except SettingsError as e:
            typer.echo(f"{ctx.command_path}: error: {e}", err=True)
            raise typer.Exit(2) from e
        return run(settings)

    command.__name__ = name.replace("-", "_")
    command.__doc__ = help
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    app.command(name)(command)
