@_exported import SwitchboardCore
@_exported import SwitchboardJSON
@_exported import SwitchboardTopics
@_exported import SwitchboardLua
@_exported import SwitchboardConfig
@_exported import SwitchboardMetrics
@_exported import SwitchboardJournal
@_exported import SwitchboardNATS
