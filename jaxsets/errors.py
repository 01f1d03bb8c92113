"""The one exception type that the CLI turns into a clear message and a non-zero exit."""


class UserError(Exception):
  """Bad input from the user (a path, an argument, a missing model): the message says what to do."""
