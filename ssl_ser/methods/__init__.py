"""Training objectives plugged into the one loop (``method: {name: ...}`` in a job config).

A method decides what the model is asked (its heads), what happens before each epoch (e.g.
re-clustering), the loss of a batch and how validation is scored; the loop does everything
else. Adding a method is one module here with ``@METHODS.register("name")``.
"""

from ssl_ser.methods.base import METHODS, Method, NoOptions

__all__ = ["METHODS", "Method", "NoOptions"]
