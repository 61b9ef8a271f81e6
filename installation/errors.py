"""The one exception type for mistakes a user can fix.

Anything raised as ``UserError`` is printed by the command line as a single line naming the
file or address and what is wrong, with exit code 2 and no traceback.
"""


class UserError(Exception):
    """A mistake in a show, a bundle, an option or an input that the user can correct."""


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (or its type when it has none): libraries
    such as ONNX Runtime raise multi-line messages, and a log or error line must stay one."""
    message = str(error).strip()
    return message.splitlines()[0] if message else type(error).__name__


def reason(error: OSError) -> str:
    """What went wrong with a file, for a line that already names it: ``No space left on
    device``, not the errno and path again (the whole error when the OS gave no reason)."""
    return error.strerror or str(error)
