"""The base of every error a user can cause (bad config, file, path or name).

The command line prints these as one clear line instead of a traceback; anything else is a
bug and keeps its traceback.
"""


class SslSerError(Exception):
    """A problem with the user's input; the message names the thing and what is wrong."""
