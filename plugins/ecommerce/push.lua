-- The seed's notification service: tells the customer the order has shipped.
---@type SwitchboardPlugin
local plugin = {}
function plugin.handle(event)
  print(string.format("Push Notification: Your order #%s has been shipped!", event.data.order_id))
end
return plugin
