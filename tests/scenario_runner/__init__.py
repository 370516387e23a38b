"""Replayable race scenarios (tests/scenarios/*.toml): the format, expectations, and runners.

``format`` loads and validates scenario files; ``initial`` builds the
starting order; ``observe`` and ``expectations`` turn what a run shows into
``Observed`` and check a scenario's ``expect`` tables against it. ``pure``
runs a scenario through the pure order logic (``decide``) with a fake LND;
``actors`` runs it through the real daemon (thespian, relay, LND simulator),
with ``journal_checks`` folding and replaying the order actor's journal.
Runners share everything but how events are delivered.
"""
