"""Errors that users see. Every error the CLI reports is a :class:`HashembedError`.

The CLI prints ``hashembed: error: <message>`` and exits with status 2 for these; anything
else is a bug and keeps its traceback.
"""


class HashembedError(Exception):
    """Base class for problems with the user's input, data or artifacts."""


class OutputPathError(HashembedError, ValueError):
    """An output path cannot be written: a directory where a file is wanted, an unwritable or
    missing parent, or a folder that is not an artifact of the kind being replaced."""


class ConfigError(HashembedError, ValueError):
    """An option or configuration value is out of range or inconsistent."""


class GraphInputError(HashembedError, ValueError):
    """An edge list, label file or dataset folder cannot be read or is invalid."""


class CodeFormatError(HashembedError, ValueError):
    """Packed codes do not match the code spec (dtype, bytes per node, bit count)."""


class UnknownNodeError(HashembedError, KeyError):
    """A node id is negative or not in the graph."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class NodeIdTypeError(HashembedError, TypeError):
    """Node ids are not a 1-D array of integers."""


class RunError(HashembedError):
    """Base class for training-run directory problems."""


class RunExistsError(RunError):
    """The run directory already holds a run and overwrite was not requested."""


class RunCorruptError(RunError):
    """A run directory is incomplete, corrupt, from another version, or mixes two runs."""


class BundleError(HashembedError):
    """Base class for bundle problems (missing, corrupt, mismatched)."""


class BundleExistsError(BundleError):
    """The output bundle directory already exists and overwrite was not requested."""


class BundleMissingFileError(BundleError):
    """The bundle or one of its files is missing."""


class BundleVersionError(BundleError):
    """The bundle was written in a format version this package cannot read."""


class BundleChecksumError(BundleError):
    """A bundle file's size or sha256 differs from the manifest: truncated or corrupt."""


class BundleCorruptError(BundleError):
    """The manifest or an array in the bundle cannot be parsed or has the wrong shape/dtype."""


class ExportValidationError(HashembedError):
    """Base class for failures of the post-export ONNX Runtime vs PyTorch check."""


class ShapeMismatchError(ExportValidationError):
    """ONNX Runtime returned outputs with other names or shapes than PyTorch."""


class ToleranceError(ExportValidationError):
    """ONNX Runtime outputs differ from PyTorch by more than the tolerance."""


class ProviderError(HashembedError):
    """An ONNX Runtime execution provider was requested but is not available."""
