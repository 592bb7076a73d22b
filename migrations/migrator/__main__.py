"""``python -m migrator``: see ``python -m migrator --help``."""

from migrator.cli import main

raise SystemExit(main())
