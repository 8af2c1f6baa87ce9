/// One change to one key, as a watch reports it (etcd's `mvccpb.Event`).
public struct StoreEvent: Sendable, Hashable {
    public enum Kind: UInt8, Sendable, Hashable {
        case put = 1
        case delete = 2
    }

    public var kind: Kind
    public var key: String
    /// The value written; empty for a delete.
    public var value: [UInt8]
    /// The revision of the change (the key's modRevision after a put).
    public var revision: UInt64
    /// The key's createRevision and version after a put; 0 for a delete.
    public var createRevision: UInt64
    public var version: UInt64
    /// The lease the key is attached to after a put (0: none); 0 for a delete.
    public var lease: UInt64

    public init(
        kind: Kind, key: String, value: [UInt8] = [], revision: UInt64, createRevision: UInt64 = 0,
        version: UInt64 = 0, lease: UInt64 = 0
    ) {
        self.kind = kind
        self.key = key
        self.value = value
        self.revision = revision
        self.createRevision = createRevision
        self.version = version
        self.lease = lease
    }

    /// What holding this event costs, roughly: the bounds on history and on a slow subscriber's
    /// buffer are counted in these bytes.
    public var byteCount: Int { key.utf8.count + value.count + 48 }
}

/// A lease coming or going, as the apply loop reports it to whoever follows leases.
public enum LeaseEvent: Sendable, Hashable {
    case granted(id: UInt64, ttlMilliseconds: UInt64)
    case revoked(id: UInt64)
}

/// What one applied command changed: the key events of one revision (a revoke deletes all its
/// keys in one), and leases granted or revoked. Commands that change nothing produce none.
public struct StoreChange: Sendable, Hashable {
    /// The store's revision after the command. Events carry it; a lease grant does not bump it.
    public var revision: UInt64
    public var events: [StoreEvent]
    public var leases: [LeaseEvent]

    public init(revision: UInt64, events: [StoreEvent] = [], leases: [LeaseEvent] = []) {
        self.revision = revision
        self.events = events
        self.leases = leases
    }

    public var byteCount: Int { events.reduce(16) { $0 + $1.byteCount } }
}
