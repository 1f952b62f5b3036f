-- The seed's e-commerce publisher: one order goes through its three steps, 200 ms apart.
-- Each step prints what the seed's event bus printed: how many subscribers took the event.
---@type SwitchboardPlugin
local plugin = {}

local function publish(topic, data)
  local accepted, err = switchboard.publish(topic, data)
  if accepted then
    print(string.format("Published to %s: delivered to %d subscribers", topic, accepted))
  else
    switchboard.log.error("publish failed", { topic = topic, error = err })
  end
end

function plugin.init(settings)
  local order = settings.order_id or string.format("ORD-%06d", math.random(0, 999999))
  local steps = {
    function()
      print("Step 1: Customer places order")
      publish("order.created", {
        order_id = order, customer_id = "CUST-123", total = 109.97,
        items = {
          { product_id = "PROD-A", quantity = 2, price = 29.99 },
          { product_id = "PROD-B", quantity = 1, price = 49.99 },
        },
      })
    end,
    function()
      print("Step 2: Customer completes payment")
      publish("payment.completed", {
        order_id = order, payment_id = "PAY-789", amount = 109.97,
        method = "credit_card", transaction_id = "TXN-456789",
      })
    end,
    function()
      print("Step 3: Warehouse ships order")
      publish("order.shipped", { order_id = order, tracking_number = "1Z999AA10123456784", carrier = "UPS" })
    end,
  }
  print("E-Commerce Order Flow Simulation")
  for index, step in ipairs(steps) do
    switchboard.after((index - 1) * (settings.step_interval or 0.2), step)
  end
end

function plugin.shutdown()
  print("Order flow completed!")
end

return plugin
