"""Errors that name the input they are about."""

import contextlib


class FieldError(ValueError):
  """A bad value of one named input (a config field or a preset's
  argument); `field` says which, so a binary can name its flag."""

  def __init__(self, field: str, message: str):
    super().__init__(message)
    self.field = field


@contextlib.contextmanager
def field(name: str):
  """Re-raises a `ValueError` inside the block as `FieldError(name, ...)`
  (a `FieldError` already naming its field passes unchanged)."""
  try:
    yield
  except FieldError:
    raise
  except ValueError as e:
    raise FieldError(name, str(e)) from None
