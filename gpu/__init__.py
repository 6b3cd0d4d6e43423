"""Engines that turn a validated request into frames, plus the media code beside them.

Importing this package never imports torch; GPU engines import it inside `load()`.
"""
