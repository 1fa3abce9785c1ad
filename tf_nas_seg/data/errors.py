"""The one exception type the data package raises for bad input."""

from tf_nas_seg.errors import UserError


class DatasetError(UserError):
    """A data set on disk (or an argument describing one) cannot be used.

    Every message names the offending file or directory and says how to fix it,
    because the person reading it is usually looking at a training log, not at
    the loader's source.
    """
