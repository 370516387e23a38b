"""Pure order and bond logic (sans-IO): see decide.py."""
