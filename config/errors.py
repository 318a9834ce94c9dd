"""The one kind of error the person running docsbot is meant to read.

A `UserError` is something they can fix (a setting, a missing index, a model that cannot be
had here), and its message says what to do. `docsbot` prints it in one line and exits with
status 2; anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem the operator can fix; the message names the setting or the command to run."""
