"""The package version (a ground-floor module, so that any floor may read it)."""

__version__ = "0.3.0"
