"""Reading and writing the JSON files runs write (summaries, results, reports): one rule
for all."""

import json

from tf_nas_seg.utils.atomic import atomic_output


def read_json(path, error_cls=None, hint=""):
    """The JSON in `path`, or None if there is no such file.

    A file that cannot be read as JSON (malformed, not UTF-8, nested too deeply for the
    parser, an integer too long to convert, a directory, unreadable) is an `error_cls`
    naming the file and the reason.

    Args:
        path: The file.
        error_cls: Raised (with the path, the parse error and `hint`) when the file is not
            valid JSON; None: a bad file reads as None, like a missing one.
        hint: What the user can do about a bad file, appended to the message.
    """
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (ValueError, RecursionError, OSError) as e:
        # ValueError: not JSON (JSONDecodeError), not UTF-8 (UnicodeDecodeError), an
        # integer of thousands of digits; RecursionError: nested thousands deep;
        # OSError: a directory, no permission to read.
        if error_cls is None:
            return None
        raise error_cls(f"{path} is not valid JSON ({_reason(e)})"
                        + (f"; {hint}" if hint else "")) from None


def _reason(error):
    """Why a JSON file could not be read, in one short line."""
    if isinstance(error, RecursionError):
        return "nested too deeply"
    if isinstance(error, UnicodeDecodeError):
        return f"not UTF-8 text: byte {error.object[error.start:error.start + 1]!r} at " \
               f"position {error.start}"
    if isinstance(error, OSError):
        return error.strerror or type(error).__name__
    return str(error).splitlines()[0][:200] if str(error) else type(error).__name__


def run_completed(summary_path, error_cls=None):
    """Whether the summary a search or training writes says it has completed."""
    summary = read_json(summary_path, error_cls,
                        "delete it to run that step again" if error_cls else "")
    return summary is not None and summary.get("status") == "completed"


def write_json_atomic(path, data):
    """Writes `data` as indented JSON to `path` via a temp file and an atomic rename."""
    with atomic_output(path, suffix=".json") as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=False)
            f.write("\n")
