"""Entry point for `python -m adapters.lnd.sim`."""

from .cli import main

raise SystemExit(main())
