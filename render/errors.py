"""The one exception type that means "the user's input is wrong"."""


class UserError(Exception):
    """A problem with the user's input or environment, reported as one line with exit code 2.

    The message names the file and/or key at fault and what is allowed.
    """
