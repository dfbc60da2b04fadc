"""rltab.server: the LSP server and the `rltab` command line (the composition root)."""
