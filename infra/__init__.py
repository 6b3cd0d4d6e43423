"""Adapters to the outside world (storage, Slack, Modal) and the CLI that wires everything."""
