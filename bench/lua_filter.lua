-- Contender 7: NGINX + lua-nginx-module + lua-cjson doing denyproxy's JSON filtering,
-- OpenResty style. Loaded by the bench's nginx.conf:
--   init_by_lua_block          { denyfilter = require("lua_filter"); denyfilter.load(FILE) }
--   header_filter_by_lua_block { denyfilter.header() }
--   body_filter_by_lua_block   { denyfilter.body() }
-- FILE has lines `<api key>\t<value>` with values exactly as they appear in responses (no
-- normalisation, no hashing of the key: the table is keyed by the raw API key).
-- In a list, a denied string or a contact point ({"phone_number": x, "line_type": ...})
-- holding one goes; in an object such a value becomes null.
-- Known lua-cjson 2.1 limits: an empty array is re-encoded as {} and "/" as "\/".
local cjson = require "cjson"
local null = cjson.null

local M = {}
local DENY = {}
local META = {}
for _, k in ipairs({
  "verified", "valid", "line_type", "type", "label", "status", "primary", "is_primary",
  "confidence", "score", "source", "sources", "carrier", "country_code", "kind",
}) do META[k] = true end

function M.load(path)
  local n = 0
  for line in io.lines(path) do
    local key, value = line:match("^([^\t]*)\t(.*)$")
    if key then
      local set = DENY[key]
      if not set then set = {}; DENY[key] = set end
      set[value] = true
      n = n + 1
    end
  end
  return n
end

local function point(t, denied)
  local hit
  for k, v in pairs(t) do
    if type(v) == "string" and denied[v] then
      if hit then return false end
      hit = k
    end
  end
  if not hit then return false end
  for k in pairs(t) do
    if k ~= hit and not META[k] then return false end
  end
  return true
end

local function gone(v, denied)
  local tv = type(v)
  if tv == "string" then return denied[v] == true end
  if tv == "table" and #v == 0 then return point(v, denied) end
  return false
end

local function walk(node, denied)
  if type(node) ~= "table" then return node end
  local n = #node
  if n > 0 then
    local out = {}
    for i = 1, n do
      local v = node[i]
      if not gone(v, denied) then out[#out + 1] = walk(v, denied) end
    end
    return out
  end
  for k, v in pairs(node) do
    if gone(v, denied) then node[k] = null else node[k] = walk(v, denied) end
  end
  return node
end
M.walk = walk

function M.header()
  local denied = DENY[ngx.var.http_x_api_key or ""]
  local ctype = ngx.header.content_type or ""
  if denied and ctype:find("json", 1, true) then
    ngx.ctx.denied = denied
    ngx.header.content_length = nil
  end
end

function M.body()
  local denied = ngx.ctx.denied
  if not denied then return end
  local chunk, eof = ngx.arg[1], ngx.arg[2]
  local buf = ngx.ctx.buf
  if not buf then buf = {}; ngx.ctx.buf = buf end
  if chunk ~= "" then buf[#buf + 1] = chunk end
  if not eof then
    ngx.arg[1] = nil
    return
  end
  local body = table.concat(buf)
  local ok, doc = pcall(cjson.decode, body)
  if ok then
    ngx.arg[1] = cjson.encode(walk(doc, denied))
  else
    ngx.arg[1] = body
  end
end

return M
