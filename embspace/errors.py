"""Errors raised at embspace's boundaries; each message says what to do about it."""


class EmbspaceError(Exception):
    """Base class: bad input that the user can fix (the CLI prints the message, no traceback)."""


class ModelNotFound(EmbspaceError):
    """The model source could not be found or fetched."""


class ModelTooLarge(EmbspaceError):
    """The model's weights exceed the configured memory budget."""


class OutOfRange(EmbspaceError, IndexError):
    """A layer, head or neuron index outside the model."""
