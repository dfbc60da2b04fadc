"""One module per LSP feature; each only translates messages into calls on the Service."""
