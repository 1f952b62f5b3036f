-- The workers benchmark's plugin (switchboard-bench workers): a fixed amount of arithmetic per
-- event, about 20 microseconds with the default iterations, and nothing else.
local iterations = 2200

return {
  init = function(settings) iterations = settings.iterations or iterations end,
  handle = function(event)
    local x = event.data.n
    for i = 1, iterations do x = (x * 31 + i) % 1000003 end
    if x < 0 then error("unreachable") end
  end,
}
