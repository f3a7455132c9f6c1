"""The one exception type for mistakes a user can fix (bad files, bad options), and how a command
line reports it: a single `error:` line and exit status 2; anything else is a bug and keeps its
traceback. Ctrl-C and SIGTERM unwind the command alike (staging folders removed, a training's resume
state kept), then end it with one line.
"""
import signal
import sys
import threading


class UserError(Exception):
    """A problem with the user's input: the message names the file or option and the problem."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (a `kill`, a scheduler's preemption), raised like Ctrl-C so that the command unwinds."""


def _terminate(signum, frame):
    raise Terminated


def run_command(main):
    """Run a command-line main() and exit with its status: a UserError is one `error: ...` line on
    stderr and status 2, Ctrl-C is `interrupted` and status 130, SIGTERM `terminated` and 143."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        sys.exit(main())
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except Terminated:
        print("terminated", file=sys.stderr)
        sys.exit(128 + signal.SIGTERM)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
