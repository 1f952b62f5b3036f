-- The seed's analytics service: records orders and payments.
---@type SwitchboardPlugin
local plugin = {}
function plugin.handle(event)
  local data = event.data
  if event.topic == "order.created" then
    print(string.format("Analytics: Recording order #%s (total: $%.2f)", data.order_id, data.total))
  else
    print(string.format("Analytics: Recording payment via %s ($%.2f)", data.method, data.amount))
  end
end
return plugin
