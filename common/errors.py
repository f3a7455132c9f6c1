"""The one exception type for mistakes a user can fix (bad files, bad options).

main.py prints it as a single line and exits non-zero; anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem with the user's input: the message names the file or option and the problem."""
