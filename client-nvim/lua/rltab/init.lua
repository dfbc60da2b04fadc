-- rltab for Neovim 0.7 to 0.10 (0.11+: vim.lsp.enable("rltab") uses lsp/rltab.lua instead).
--   require("rltab").setup({ init_options = { learning = { enabled = true } } })
-- On 0.12+ turn on ghost text too: vim.lsp.inline_completion.enable(true)
local M = {}

function M.setup(opts)
  opts = opts or {}
  local config = {
    name = "rltab",
    cmd = opts.cmd or { "rltab", "serve" },
    init_options = opts.init_options or { learning = { enabled = false }, maxLines = 8 },
    -- Outcome inference reads every edit; send them without delay.
    flags = { debounce_text_changes = 0 },
  }
  vim.api.nvim_create_autocmd("FileType", {
    pattern = opts.filetypes or { "python" },
    callback = function(args)
      config.root_dir = vim.fn.getcwd()
      if vim.lsp.start then
        vim.lsp.start(config, { bufnr = args.buf })
      else -- Neovim 0.7
        M.client_id = M.client_id or vim.lsp.start_client(config)
        vim.lsp.buf_attach_client(args.buf, M.client_id)
      end
    end,
  })
end

return M
