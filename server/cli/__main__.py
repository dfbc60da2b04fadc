"""`python -m rltab.server.cli ...`: what editors and the tests launch."""

from . import main

raise SystemExit(main())
