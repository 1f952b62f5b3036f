-- Benchmark subscriber on >: counts every event (the baseline's on_all).
---@type SwitchboardPlugin
local plugin = {}
local count = 0
function plugin.handle(event) count = count + 1 end
function plugin.shutdown() switchboard.log.info("done", {all = count}) end
return plugin
