"""Reading the JSON files runs write (summaries, results, reports): one rule for all."""

import json


def read_json(path, error_cls=None, hint=""):
    """The JSON in `path`, or None if there is no such file.

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
    except json.JSONDecodeError as e:
        if error_cls is None:
            return None
        raise error_cls(f"{path} is not valid JSON ({e})" + (f"; {hint}" if hint else "")
                        ) from None


def run_completed(summary_path, error_cls=None):
    """Whether the summary a search or training writes says it has completed."""
    summary = read_json(summary_path, error_cls,
                        "delete it to run that step again" if error_cls else "")
    return summary is not None and summary.get("status") == "completed"
