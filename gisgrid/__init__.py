"""gisgrid: GIS component-and-event management for grid-based urban management."""

__version__ = "0.1.0"
