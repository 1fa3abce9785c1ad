"""What every command's `main` does first and how it reports an error a user can fix."""

import sys

from absl import app, logging


def begin(argv, verbosity=logging.INFO):
    """Refuses positional arguments (every setting is a flag) and sets the log level."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; every setting is a --flag "
                             "(see --helpfull)")
    logging.set_verbosity(verbosity)


def user_error(error):
    """Prints `error: ...` to stderr (no traceback: the message names the fix); exit 2."""
    print(f"error: {error}", file=sys.stderr)
    return 2
