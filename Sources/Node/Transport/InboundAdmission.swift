/// Who gets a place on the Raft port, decided without I/O (`InboundConnectionGate` is its shell).
///
/// Only authenticated connections count against `maxAuthenticated`: a stranger, who cannot
/// authenticate, must not be able to fill the places members need to redial (a restarted peer, a
/// link the idle timeout closed), or no election could ever be won again. Connections still in
/// their handshake are bounded on their own by `maxPending`, and when those places are full the
/// oldest one is given up for the newcomer instead of refusing it: a stranger flooding the port
/// only shortens how long a handshake may take (`maxPending` ÷ the flood's rate), while a member's
/// handshake — one round trip — still completes.
struct InboundAdmission: Sendable, Hashable {
    let maxAuthenticated: Int
    let maxPending: Int
    /// Connections in their handshake, oldest first.
    private(set) var pending: [UInt64] = []
    private(set) var authenticated: Set<UInt64> = []

    init(maxAuthenticated: Int, maxPending: Int) {
        precondition(maxAuthenticated > 0 && maxPending > 0)
        self.maxAuthenticated = maxAuthenticated
        self.maxPending = maxPending
    }

    /// A connection was accepted: it takes a pending place. Returns the connection to close to
    /// make room (the oldest still in its handshake), if the pending places were full.
    mutating func accepted(_ connection: UInt64) -> UInt64? {
        var evicted: UInt64?
        if pending.count >= maxPending { evicted = pending.removeFirst() }
        pending.append(connection)
        return evicted
    }

    /// The connection completed its handshake: true if it moves to an authenticated place, false
    /// if all are taken (or it was already given up) and it must be closed.
    mutating func authenticate(_ connection: UInt64) -> Bool {
        guard let position = pending.firstIndex(of: connection) else { return false }
        pending.remove(at: position)
        guard authenticated.count < maxAuthenticated else { return false }
        authenticated.insert(connection)
        return true
    }

    /// The connection closed, whatever its state: its place is free.
    mutating func closed(_ connection: UInt64) {
        if let position = pending.firstIndex(of: connection) { pending.remove(at: position) }
        authenticated.remove(connection)
    }
}
