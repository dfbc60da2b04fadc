-- Headless Neovim: ask rltab for a completion, apply the item as the user's accept would, run
-- its command, then write the suggestion id to $RLTAB_NVIM_OUT. Driven by tests/test_neovim.py.
local env = vim.env
package.path = env.RLTAB_REPO .. "/client-nvim/lua/?/init.lua;" .. package.path
require("rltab").setup({ cmd = { env.RLTAB_PYTHON, "-m", "rltab.server.cli", "serve", "--home", env.RLTAB_HOME } })

local function fail(msg)
  io.stderr:write("nvim test: " .. msg .. "\n")
  vim.cmd("cquit 3")
end

vim.cmd("edit " .. env.RLTAB_FILE)
local client
local ready = vim.wait(60000, function()
  client = vim.lsp.get_active_clients()[1]
  return client ~= nil and client.server_capabilities ~= nil and client.server_capabilities.completionProvider ~= nil
end, 50)
if not ready then fail("the server did not initialize") end

-- At the end of the document's last line, where the cursor stands in insert mode (normal mode
-- would clamp it onto the last character).
local pos = { line = tonumber(env.RLTAB_LINE), character = tonumber(env.RLTAB_COL) }
local params = { textDocument = vim.lsp.util.make_text_document_params(), position = pos }
local responses = vim.lsp.buf_request_sync(0, "textDocument/completion", params, 60000)
local item
for _, r in pairs(responses or {}) do
  if r.result and r.result.items and r.result.items[1] then item = r.result.items[1] end
end
if not item then fail("no completion item: " .. vim.inspect(responses)) end

vim.lsp.util.apply_text_edits({ item.textEdit }, 0, "utf-16")
if item.command then client.request("workspace/executeCommand", item.command, function() end, 0) end
vim.wait(1500, function() return false end) -- let didChange and the command reach the server
local f = io.open(env.RLTAB_NVIM_OUT, "w")
f:write(item.data.rltab .. "\n" .. table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n"))
f:close()
vim.cmd("qall!")
