-- rltab for Neovim 0.11+: with this plugin on the runtimepath, `vim.lsp.enable("rltab")` starts
-- `rltab serve` for Python buffers, rooted at the nearest repository. Override any field with
-- vim.lsp.config("rltab", { init_options = { learning = { enabled = true } } }).
---@type vim.lsp.Config
return {
  cmd = { "rltab", "serve" },
  filetypes = { "python" }, -- the languages the starter model knows; add yours for an imported model
  root_markers = { ".git", "pyproject.toml", "setup.py", "setup.cfg" },
  init_options = { learning = { enabled = false }, maxLines = 8 },
  -- Outcome inference reads every edit; send them without delay.
  flags = { debounce_text_changes = 0 },
}
