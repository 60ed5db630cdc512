-- wrk script: sends DEPTH requests (default 16) in one write and counts every
-- response. Usage: wrk -s benches/pipeline.lua URL -- 16
init = function(args)
  local depth = tonumber(args[1]) or 16
  local r = {}
  for i = 1, depth do
    r[i] = wrk.format()
  end
  req = table.concat(r)
end

request = function()
  return req
end
