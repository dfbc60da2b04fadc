-- Neovim 0.11 as its users run rltab: this plugin on the runtimepath, `vim.lsp.enable` of it
-- (lsp/rltab.lua: `rltab serve` from PATH, rooted at the nearest .git), a Python file opened.
-- Asks for a plain and an inline completion, accepts the plain item as the completion menu does
-- (its text edit, then its command), runs :checkhealth rltab, and writes what it saw as JSON to
-- $RLTAB_NVIM_OUT. Driven by tests/test_neovim.py.
local env = vim.env

local function fail(msg)
  io.stderr:write("nvim test: " .. msg .. "\n")
  vim.cmd("cquit 3")
end

local function main()
  vim.lsp.enable("rltab")
  vim.cmd("edit " .. env.RLTAB_FILE)
  local buf = vim.api.nvim_get_current_buf()
  local client
  local ready = vim.wait(60000, function()
    client = vim.lsp.get_clients({ name = "rltab", bufnr = buf })[1]
    return client ~= nil and client.initialized and client.server_capabilities ~= nil
  end, 50)
  if not ready then error("rltab did not attach") end

  local pos = { line = tonumber(env.RLTAB_LINE), character = tonumber(env.RLTAB_COL) }
  local params = { textDocument = vim.lsp.util.make_text_document_params(buf), position = pos }
  local inline_params = vim.tbl_extend("force", params, { context = { triggerKind = 2 } })
  local inline = client:request_sync("textDocument/inlineCompletion", inline_params, 60000, buf)
  if not inline or inline.err then error("inline completion failed: " .. vim.inspect(inline)) end
  local plain = client:request_sync("textDocument/completion", params, 60000, buf)
  if not plain or plain.err then error("completion failed: " .. vim.inspect(plain)) end
  local item = plain.result and plain.result.items and plain.result.items[1]
  if not item then error("no completion item: " .. vim.inspect(plain)) end

  vim.lsp.util.apply_text_edits({ item.textEdit }, buf, client.offset_encoding)
  client:exec_cmd(item.command, { bufnr = buf })
  vim.wait(1500, function() return false end) -- let didChange and the command reach the server

  vim.cmd("checkhealth rltab")
  local health = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n")

  local f = assert(io.open(env.RLTAB_NVIM_OUT, "w"))
  f:write(vim.json.encode({
    root = client.root_dir,
    inline_items = #(inline.result and inline.result.items or {}),
    id = item.data.rltab,
    lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false),
    health = health,
  }))
  f:close()
end

-- An error anywhere ends Neovim with its message, never a hang.
local ok, err = xpcall(main, debug.traceback)
if not ok then fail(err) end
vim.cmd("qall!")
