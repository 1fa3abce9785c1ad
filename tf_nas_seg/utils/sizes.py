"""HEIGHTxWIDTH sizes as every command writes them ("360x480"), one parser."""

from tf_nas_seg.errors import ConfigError


def parse_hw(text, what="size", error_cls=ConfigError, minimum=8):
    """"360x480" -> (360, 480).

    Args:
        text: HEIGHTxWIDTH (case-insensitive x, spaces around it ignored).
        what: How the message names the value (e.g. "--size='360by480'").
        error_cls: Raised when the text is not a size or is below `minimum`.
        minimum: Smallest height and width accepted.
    """
    try:
        height, width = (int(v) for v in str(text).strip().lower().split("x"))
    except ValueError:
        raise error_cls(f"{what} is not HEIGHTxWIDTH, e.g. 360x480") from None
    if height < minimum or width < minimum:
        raise error_cls(f"{what}: height and width must be >= {minimum}")
    return height, width
