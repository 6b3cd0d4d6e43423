"""Telling people: console and JSON-lines notifiers, Slack, and the fake Slack the demo runs."""
