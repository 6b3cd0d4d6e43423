"""Text to speech: the first stage of a script job, before the talking-head engine.

A script job's speech is made here (`engine.py` is the interface, `script.py` turns a script into
chunks, `join.py` makes the chunks one clean track), then rendered like a dropped recording.
"""
