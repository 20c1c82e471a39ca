"""Errors raised at embspace's boundaries; each message says what to do about it."""


class EmbspaceError(Exception):
    """Base class: bad input that the user can fix (the CLI prints the message, no traceback)."""


class ModelNotFound(EmbspaceError):
    """The model source could not be found or fetched."""


class ModelTooLarge(EmbspaceError):
    """The model's weights exceed the configured memory budget."""


class OutOfRange(EmbspaceError, IndexError):
    """A layer, head or neuron index outside the model."""


class InconsistentModel(EmbspaceError):
    """config.json and the weights (or the tokenizer files) do not describe the same model."""


class NonFiniteWeights(EmbspaceError):
    """A layer's weights hold NaN or Inf values; `tensors` maps each broken tensor to its broken heads/neurons."""

    def __init__(self, message: str, layer: int, tensors: dict[str, tuple[int, ...]]):
        super().__init__(message)
        self.layer = layer
        self.tensors = tensors


class Refused(EmbspaceError):
    """Hosted mode: the operator's policy does not allow this model source or upload."""


class Busy(EmbspaceError):
    """Another process or session holds the resource (an export file being written)."""


class CustomCodeRefused(EmbspaceError):
    """The model repository asks for its own Python code (`auto_map`), which embspace never runs."""
