---@meta
-- Type annotations of Switchboard's plugin API for lua-language-server (LuaLS):
-- completion and type checks in editors. Plugins never load this file; Switchboard
-- provides the `switchboard` global itself.

---An event as `handle` receives it.
---`id`, `headers` and `data` are built the first time they are read; `pairs(event)` and
---`switchboard.json.encode(event)` see every field.
---@class SwitchboardEvent
---@field topic string The topic it was published to, e.g. "user.created".
---@field data any The JSON payload: tables, strings, numbers (integers stay integers), booleans; JSON null (or no payload) is `switchboard.null`.
---@field id string Unique event id, "<16 hex digits>-<hex counter>".
---@field time number When it was published: Unix seconds with a fraction.
---@field headers table<string, string> String headers given by the publisher.

---A plugin file returns one of these.
---@class SwitchboardPlugin
---@field init? fun(settings: table) Called once at start with the subscriber's `settings` from the config.
---@field handle? fun(event: SwitchboardEvent) Called once per event, in publish order. Required when the subscriber has topics.
---@field shutdown? fun() Called once at shutdown, after the queue drained.

---A timer from `switchboard.every` or `switchboard.after`.
---@class SwitchboardTimer
local Timer = {}

---Stops the timer. Returns true if it was still pending.
---@return boolean
function Timer:cancel() end

---@class SwitchboardJSON
local json = {}

---Encodes a value as JSON text, object keys sorted. Raises for values JSON cannot hold:
---functions, userdata, threads, cycles, NaN or infinity, tables mixing sequence and other keys,
---strings that are not UTF-8, nesting deeper than 128 levels.
---@param value any
---@return string
function json.encode(value) end

---Decodes JSON text; raises for invalid text. JSON null becomes `switchboard.null`; arrays
---remember they were arrays, so an empty one encodes back as `[]`.
---@param text string
---@return any
function json.decode(text) end

---Marks `t` so that it encodes as an array (holes become null); returns `t`.
---@generic T: table
---@param t T
---@return T
function json.array(t) end

---Marks `t` so that it encodes as an object (integer keys become strings); returns `t`.
---@generic T: table
---@param t T
---@return T
function json.object(t) end

---@class SwitchboardLog
local log = {}

---@param message any
---@param fields? table<string, any> Structured fields for the log line.
function log.debug(message, fields) end

---@param message any
---@param fields? table<string, any>
function log.info(message, fields) end

---@param message any
---@param fields? table<string, any>
function log.warn(message, fields) end

---@param message any
---@param fields? table<string, any>
function log.error(message, fields) end

---The host API.
---@class Switchboard
---@field name string This subscriber's name.
---@field settings table This subscriber's settings from the config.
---@field null lightuserdata JSON null.
---@field json SwitchboardJSON
---@field log SwitchboardLog Structured log lines on stderr, tagged with the subscriber's name.
switchboard = {}

---Publishes an event. Into a full `block` queue it waits for room until a tenth of the call's
---timeout is left; when no subscriber took it because their queues were full: nil, "queue full".
---@param topic string A topic without wildcards, e.g. "order.created".
---@param data any The payload; nil publishes JSON null.
---@param headers? table<string, string>
---@return integer|nil accepted How many subscribers accepted it, or nil on error.
---@return string? error Why it was refused: an invalid topic, data JSON cannot hold or larger than 16 MiB, "queue full".
function switchboard.publish(topic, data, headers) end

---Calls `fn` every `seconds` on this subscriber's own thread, never during `handle`.
---`seconds` must be positive; at most 1,000 timers may be pending per plugin.
---@param seconds number
---@param fn fun()
---@return SwitchboardTimer
function switchboard.every(seconds, fn) end

---Calls `fn` once after `seconds` on this subscriber's own thread, never during `handle`.
---`seconds` must be zero or more; at most 1,000 timers may be pending per plugin.
---@param seconds number
---@param fn fun()
---@return SwitchboardTimer
function switchboard.after(seconds, fn) end

---Unix time in seconds, with a fraction.
---@return number
function switchboard.now() end
