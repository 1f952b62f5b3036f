-- The seed's email service: a message for each step of an order.
---@type SwitchboardPlugin
local plugin = {}
function plugin.handle(event)
  local order = event.data
  if event.topic == "order.created" then
    print("Email: Sending order confirmation for #" .. order.order_id)
  elseif event.topic == "payment.completed" then
    print("Email: Sending payment receipt for order #" .. order.order_id)
  elseif event.topic == "order.shipped" then
    print(string.format("Email: Sending shipping notification for #%s (tracking: %s)",
      order.order_id, order.tracking_number))
  end
end
return plugin
