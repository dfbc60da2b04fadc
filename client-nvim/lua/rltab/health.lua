-- :checkhealth rltab. Runs on Neovim 0.7 (the `health` module) through 0.12 (`vim.health`).
local M = {}

local health = vim.health or require("health")
local start = health.start or health.report_start
local ok = health.ok or health.report_ok
local warn = health.warn or health.report_warn
local error = health.error or health.report_error
local info = health.info or health.report_info

local function command()
  local configured = vim.lsp.config and vim.lsp.config.rltab
  return (configured and configured.cmd) or { "rltab", "serve" }
end

local function clients()
  if vim.lsp.get_clients then return vim.lsp.get_clients({ name = "rltab" }) end
  local out = {}
  for _, c in pairs(vim.lsp.get_active_clients()) do
    if c.name == "rltab" then table.insert(out, c) end
  end
  return out
end

function M.check()
  start("rltab server")
  local cmd = command()
  if type(cmd) ~= "table" then
    info("cmd is a function; not checked")
  elseif vim.fn.executable(cmd[1]) == 1 then
    local version = vim.fn.system({ cmd[1], "--version" })
    if vim.v.shell_error == 0 and version:match("^rltab") then
      ok(("%s: %s"):format(vim.fn.exepath(cmd[1]), vim.trim(version)))
    elseif cmd[2] == "-m" then
      ok(("%s (a Python interpreter; rltab runs as %s)"):format(vim.fn.exepath(cmd[1]), table.concat(cmd, " ")))
    else
      warn(("%s does not answer `--version` like rltab: %s"):format(cmd[1], vim.trim(version)))
    end
  else
    error(("`%s` is not on PATH"):format(cmd[1]), {
      "rltab is not on PyPI: install it from a checkout, `python3 -m venv .venv && .venv/bin/pip install -e .`",
      'then set the full path: vim.lsp.config("rltab", { cmd = { "/path/to/rltab/.venv/bin/rltab", "serve" } })',
    })
  end

  start("rltab in this Neovim")
  local v = vim.version()
  local this = ("%d.%d.%d"):format(v.major, v.minor, v.patch)
  if vim.lsp.inline_completion then
    ok(this .. ": ghost text through textDocument/inlineCompletion (vim.lsp.inline_completion.enable(true))")
  else
    info(this .. ": suggestions in the completion menu (ghost text needs Neovim 0.12+)")
  end
  if vim.lsp.enable then
    ok('vim.lsp.enable("rltab") reads lsp/rltab.lua from this plugin')
  else
    info('Neovim before 0.11: use require("rltab").setup() instead of vim.lsp.enable("rltab")')
  end
  local attached = clients()
  if #attached > 0 then
    ok(("running: client %d, root %s"):format(attached[1].id, attached[1].config.root_dir or "?"))
  else
    info("not running in this session (open a Python file)")
  end
end

return M
