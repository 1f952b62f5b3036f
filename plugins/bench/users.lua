-- Benchmark subscriber on user.*: counts events (the baseline's on_user).
---@type SwitchboardPlugin
local plugin = {}
local count = 0
function plugin.handle(event) count = count + 1 end
function plugin.shutdown() switchboard.log.info("done", {users = count}) end
return plugin
