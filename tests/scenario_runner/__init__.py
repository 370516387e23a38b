"""Replayable race scenarios (tests/scenarios/*.toml): the format, expectations, and runners.

``format`` loads and validates scenario files; ``expectations`` checks a
scenario's ``expect`` tables against an ``Observed`` view; ``pure`` runs a
scenario through the pure order logic (``decide``) with a fake LND. Actor
and multiprocess runners reuse ``format`` and ``expectations`` and only
change how events are delivered.
"""
