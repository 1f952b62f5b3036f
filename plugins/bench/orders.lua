-- Benchmark subscriber on order.> and payment.>: counts events and sums data.total (the baseline's on_order).
---@type SwitchboardPlugin
local plugin = {}
local count, total = 0, 0.0
function plugin.handle(event)
  count = count + 1
  total = total + (event.data.total or 0)
end
function plugin.shutdown() switchboard.log.info("done", {orders = count, total = total}) end
return plugin
