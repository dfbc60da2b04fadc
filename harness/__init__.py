"""Development tooling, not the product: the typing simulator, the LSP client session, the typing
replay and the latency benchmark. Only the CLI (`rltab replay`, `rltab bench`) and the tests import it."""
