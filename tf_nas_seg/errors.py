"""The one base class of errors a user can fix.

Every error that names a problem in the user's input (a flag out of range, a missing or
malformed file, a data set with the wrong layout, a table for another device) is a
`UserError`: the commands print its message and exit with status 2. Anything else is a
bug in tf_nas_seg and keeps its traceback. `UserError` subclasses `ValueError`, so code
that caught `ValueError` before still catches it.
"""

import reprlib

_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 3, 60, 60
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = 6


def brief(value):
    """A short repr of a value read from a file or a flag, for error messages: a huge
    string or a list nested thousands deep is cut (its full repr could fail with a
    RecursionError or fill the screen)."""
    return _SHORT.repr(value)


class UserError(ValueError):
    """A problem in the user's input, with a message that names it and the fix."""


class ConfigError(UserError):
    """A setting (flag, config field, layout, op set name) that is out of its range or
    choices, or inconsistent with another."""


class DiskError(UserError):
    """A file or directory cannot be written: the disk is full or over its quota, the
    file system is read-only, or the directory is not writable."""
