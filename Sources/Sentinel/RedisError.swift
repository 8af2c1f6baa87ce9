/// Why talking to a Redis or a Sentinel failed.
public enum RedisError: Error, Sendable, Hashable, CustomStringConvertible {
    /// No connection could be made in time, or it broke (hiredis's I/O, EOF, protocol errors and
    /// timeouts): the server is unreachable as far as this call knows.
    case connection(String)
    /// The server answered with an error reply.
    case reply(String)
    /// The answer was not of the shape the command has.
    case unexpected(String)
    /// The client has no verified master to send the command to (none agreed, none answered).
    case noMaster(String)
    /// The client is shut down.
    case shutDown

    public var description: String {
        switch self {
        case .connection(let message): "Redis connection: \(message)"
        case .reply(let message): "Redis replied: \(message)"
        case .unexpected(let message): "unexpected Redis answer: \(message)"
        case .noMaster(let message): "no Redis master: \(message)"
        case .shutDown: "the Redis client is shut down"
        }
    }
}
