"""The one exception type for mistakes a user can fix.

Anything raised as ``UserError`` is printed by the command line as a single line naming the
file or address and what is wrong, with exit code 2 and no traceback.
"""


class UserError(Exception):
    """A mistake in a show, a bundle, an option or an input that the user can correct."""
