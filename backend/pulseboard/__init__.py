"""Pulseboard: self-hosted real-time analytics."""

__version__ = "0.1.0"
