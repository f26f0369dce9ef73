"""`python -m lynkr` is the `lynkr` command."""

from lynkr.cli import main

raise SystemExit(main())
