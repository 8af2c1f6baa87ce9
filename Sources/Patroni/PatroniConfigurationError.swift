/// A watcher configured with values the decision cannot work with (bad bounds, duplicate or
/// missing member names). Raised when the configuration is loaded, never mid-decision.
public struct PatroniConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
