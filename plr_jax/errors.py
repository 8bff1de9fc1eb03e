"""Errors that name the input they are about."""


class FieldError(ValueError):
  """A bad value of one named input (a config field or a preset's
  argument); `field` says which, so a binary can name its flag."""

  def __init__(self, field: str, message: str):
    super().__init__(message)
    self.field = field
