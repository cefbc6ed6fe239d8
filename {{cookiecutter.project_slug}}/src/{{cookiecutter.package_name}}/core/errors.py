"""Errors that mean "your input is wrong": the CLI prints them as one line, no traceback."""


class UserError(Exception):
    """Base class: the message names the problem and the fix."""


class ConfigError(UserError):
    """params.yaml / conf/ holds a value the pipeline cannot use."""


class DataError(UserError):
    """The data does not fit what the pipeline (or its config) expects."""


class GateError(UserError):
    """The model trained, but fails a quality gate set in config."""


class StorageError(UserError):
    """A write failed for want of space, quota or permission where it writes: not the data's
    fault, so not a DataError (code that treats a DataError as "no such data" must not
    swallow a full disk)."""


def first_line(exc: BaseException) -> str:
    """An exception's message cut to its first line (library messages run on), or its type
    when it has none: what a one-line error quotes."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
