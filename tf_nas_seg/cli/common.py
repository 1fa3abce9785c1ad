"""What every command's `main` does first and how it reports an error a user can fix."""

import os
import sys

from absl import app, logging


def begin(argv, verbosity=logging.INFO):
    """Refuses positional arguments (every setting is a flag) and sets the log level."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; every setting is a --flag "
                             "(see --helpfull)")
    logging.set_verbosity(verbosity)


def parse_flags(argv):
    """Every command's flag parser (`app.run(main, flags_parser=parse_flags)`): absl's,
    whose unknown or malformed flag is a one-line 'FATAL Flags parsing error' and exit
    1, with a flagfile that is not UTF-8 text reported the same way (not a traceback)."""
    from absl import flags

    from tf_nas_seg.utils.flag_fields import parse_flag_argv

    try:
        return parse_flag_argv(argv)
    except flags.Error as error:
        sys.stderr.write(f"FATAL Flags parsing error: {error}\n")
        sys.stderr.write("Pass --helpshort or --helpfull to see help on flags.\n")
        sys.exit(1)


def user_error(error):
    """Prints `error: ...` to stderr (no traceback: the message names the fix); exit 2."""
    print(f"error: {error}", file=sys.stderr)
    return 2


def restart_without_onednn(what):
    """Re-executes this command with TensorFlow's own CPU kernels instead of oneDNN's.

    NOTE: with TensorFlow 2.21's oneDNN CPU kernels, training an AutoRTNet network (the
    search step, and a derived network's train step) corrupts the heap at inputs of
    176x240 and 192x256 (glibc "double free or corruption" or "unaligned tcache chunk",
    abort or segfault on the first step), while 64x128 runs; with TensorFlow's own
    kernels all run. Until the op is pinned down, those commands restart themselves
    with oneDNN off. Setting TF_ENABLE_ONEDNN_OPTS (to 0 or 1) yourself skips this.
    """
    if "TF_ENABLE_ONEDNN_OPTS" in os.environ:
        return
    logging.warning("%s: restarting with TF_ENABLE_ONEDNN_OPTS=0 (oneDNN's kernels corrupt "
                    "the heap here; see tf_nas_seg/cli/common.py)", what)
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)
