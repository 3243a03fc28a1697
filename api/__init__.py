"""The gisgrid HTTP API (FastAPI)."""
