"""Domain errors. Each carries a one-line message fit to show a person as it is.

The CLI turns any `RagchatError` into `Error: <message>` and a non-zero exit;
the web UI turns it into a `gr.Error`. Anything else is a bug and keeps its
traceback.
"""


class RagchatError(Exception):
    """Base class: the message is one line and names the file or value at fault."""


class ConfigError(RagchatError):
    pass


class NoIndexError(RagchatError):
    pass


class EmbedderMismatchError(RagchatError):
    pass


class ModelMissingError(RagchatError):
    pass


class EndpointError(RagchatError):
    pass


class BadFileError(RagchatError):
    pass


class ModelBusy(RagchatError):
    """Every local-model context stayed busy for the configured wait: the
    answer is quoted from the sources instead of drafted."""
