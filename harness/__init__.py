"""Development tooling, not the product: the typing simulator, the stdio LSP client, the typing
replay and the latency benchmark. Only the CLI (`rltab replay`, `rltab bench`) and the tests import it."""
