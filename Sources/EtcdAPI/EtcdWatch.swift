import Node

/// etcd's Watch over the HTTP gateway: the client posts a stream of JSON requests (a create, then
/// maybe progress requests and cancels) and reads a stream of JSON answers.
public enum EtcdWatchRequest: Sendable, Hashable {
    case create(EtcdWatcher)
    case cancel(watchID: Int64)
    case progress

    public init(_ fields: EtcdFields) throws(EtcdError) {
        if let create = try fields.object("create_request") {
            self = .create(try EtcdWatcher(create))
        } else if let cancel = try fields.object("cancel_request") {
            self = .cancel(watchID: try cancel.int64("watch_id"))
        } else if fields.has("progress_request") {
            self = .progress
        } else {
            throw .invalid("a watch request names none of create_request, cancel_request, progress_request")
        }
    }
}

/// One watcher of a watch stream: which keys, from which revision, which events.
public struct EtcdWatcher: Sendable, Hashable {
    public var range: StoreTransaction.KeyRange
    /// The first revision to report (inclusive); 0: from the next change on.
    public var startRevision: Int64
    public var progressNotify: Bool
    public var noPut: Bool
    public var noDelete: Bool
    public var watchID: Int64

    public init(
        range: StoreTransaction.KeyRange, startRevision: Int64 = 0, progressNotify: Bool = false,
        noPut: Bool = false, noDelete: Bool = false, watchID: Int64 = 0
    ) {
        self.range = range
        self.startRevision = startRevision
        self.progressNotify = progressNotify
        self.noPut = noPut
        self.noDelete = noDelete
        self.watchID = watchID
    }

    init(_ fields: EtcdFields) throws(EtcdError) {
        range = try EtcdRequests.keyRange(fields)
        startRevision = try fields.int64("start_revision")
        guard startRevision >= 0 else { throw .invalid("start_revision must not be negative") }
        progressNotify = try fields.bool("progress_notify")
        if try fields.bool("prev_kv") { throw .unimplemented("prev_kv in a watch") }
        if try fields.bool("fragment") { throw .unimplemented("fragmented watch responses") }
        watchID = try fields.int64("watch_id")
        noPut = false
        noDelete = false
        guard case .array(let filters) = fields.values["filters"] ?? .array([]) else {
            throw .invalid("filters must be an array")
        }
        for filter in filters {
            switch filter {
            case .string("NOPUT"), .integer(0): noPut = true
            case .string("NODELETE"), .integer(1): noDelete = true
            default: throw .invalid("filters: unknown filter")
            }
        }
    }

    /// The revision the store's history must reach back to (exclusive), for a start revision.
    public func since(currentRevision: UInt64) -> UInt64 {
        startRevision == 0 ? currentRevision : UInt64(startRevision) - 1
    }

    /// The events of one applied change this watcher reports, as etcd's `mvccpb.Event`s.
    public func events(in change: StoreChange) -> [EtcdJSON] {
        change.events.compactMap { event in
            // The range lies in `EtcdNamespace`, so it names etcd's keys alone.
            guard range.contains(Array(event.key.utf8)), let key = EtcdNamespace.etcdKey(event.key) else { return nil }
            switch event.kind {
            case .put:
                guard !noPut else { return nil }
                let record = KeyValueStore.Record(
                    value: event.value, createRevision: event.createRevision, modRevision: event.revision,
                    version: event.version, lease: event.lease)
                return .object([
                    ("kv", EtcdResponses.keyValue(TransactionOutcome.KeyValue(key: event.key, record: record)))
                ])
            case .delete:
                guard !noDelete else { return nil }
                var kv = EtcdObject()
                kv.bytes("key", key)
                kv.number("mod_revision", event.revision)
                return .object([("type", .string("DELETE")), ("kv", kv.json)])
            }
        }
    }
}

/// The answers of a watch stream, each one JSON object `{"result":{…}}` on its own line.
public enum EtcdWatchResponses {
    static func result(_ header: EtcdObject?, watchID: Int64, _ build: (inout EtcdObject) -> Void) -> EtcdJSON {
        var object = EtcdObject()
        object.object("header", header)
        object.number("watch_id", watchID)
        build(&object)
        return .object([("result", object.json)])
    }

    public static func created(_ header: EtcdObject, watchID: Int64) -> EtcdJSON {
        result(header, watchID: watchID) { $0.bool("created", true) }
    }

    public static func events(_ header: EtcdObject, watchID: Int64, _ events: [EtcdJSON]) -> EtcdJSON {
        result(header, watchID: watchID) { $0.array("events", events) }
    }

    public static func canceled(_ header: EtcdObject, watchID: Int64, reason: String = "") -> EtcdJSON {
        result(header, watchID: watchID) {
            $0.bool("canceled", true)
            $0.string("cancel_reason", reason)
        }
    }

    /// The watch started before what the history still holds: etcd cancels it and names the
    /// compacted revision (its header carries no revision), and the client lists and watches again.
    public static func compacted(_ header: EtcdObject, watchID: Int64, compactRevision: UInt64) -> EtcdJSON {
        result(header, watchID: watchID) {
            $0.bool("canceled", true)
            $0.number("compact_revision", compactRevision)
        }
    }

    /// A progress notification: a header with the revision the watch has reached. etcd 3.4
    /// answers a progress request with watch id -1.
    public static func progress(_ header: EtcdObject, watchID: Int64) -> EtcdJSON {
        result(header, watchID: watchID) { _ in }
    }
}

/// Splits a byte stream of concatenated JSON objects (grpc-gateway's streamed request body) into
/// whole objects, tracking strings and escapes so braces inside them do not count.
public struct EtcdJSONObjectSplitter: Sendable {
    private var buffer: [UInt8] = []
    private var depth = 0
    private var inString = false
    private var escaped = false
    private var start: Int?
    /// Bytes of one object at most: a client cannot make the server buffer without bound.
    public let maxObjectBytes: Int

    public init(maxObjectBytes: Int = 1 << 20) { self.maxObjectBytes = maxObjectBytes }

    /// Feeds bytes; answers the objects they complete. Throws on bytes that cannot be JSON objects.
    public mutating func feed(_ bytes: some Sequence<UInt8>) throws(EtcdError) -> [[UInt8]] {
        var objects: [[UInt8]] = []
        for byte in bytes {
            if start == nil {
                switch byte {
                case 0x20, 0x0A, 0x0D, 0x09: continue
                case UInt8(ascii: "{"):
                    start = 0
                    buffer = []
                default: throw .invalid("the watch request stream must hold JSON objects")
                }
            }
            buffer.append(byte)
            guard buffer.count <= maxObjectBytes else { throw .requestTooLarge }
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "{"): depth += 1
            case UInt8(ascii: "}"):
                depth -= 1
                if depth == 0 {
                    objects.append(buffer)
                    buffer = []
                    start = nil
                }
            default: break
            }
        }
        return objects
    }

    /// Whether an object was left half-sent.
    public var isMidObject: Bool { start != nil }
}
