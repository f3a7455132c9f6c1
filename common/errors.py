"""The one exception type for mistakes a user can fix (bad files, bad options), and how a command
line reports it: a single `error:` line and exit status 2; anything else is a bug and keeps its
traceback.
"""
import sys


class UserError(Exception):
    """A problem with the user's input: the message names the file or option and the problem."""


def run_command(main):
    """Run a command-line main() and exit with its status: a UserError is one `error: ...` line on
    stderr and status 2, Ctrl-C is `interrupted` and status 130."""
    try:
        sys.exit(main())
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
