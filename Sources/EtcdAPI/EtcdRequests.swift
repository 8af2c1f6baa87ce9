import Node

/// etcd's KV and lease requests, translated into store terms — or refused with etcd's error
/// when they are malformed, and with `unimplemented` when they ask for what raftgate does not do
/// (historical revisions, sorting other than by key, ignore_value…), never answered wrongly.
public enum EtcdRequests {
    /// etcd's `--max-txn-ops` default.
    public static let maxOperations = 128
    /// A range inside a txn answers through the Raft entry's result, which must stay small: it
    /// reads a single key or names a `limit` up to this.
    public static let maxRangeLimitInTransaction: Int64 = 1000

    public struct Range: Sendable, Hashable {
        public var range: StoreTransaction.KeyRange
        public var limit: UInt64
        public var serializable: Bool
        public var keysOnly: Bool
        public var countOnly: Bool
    }

    public struct Lease: Sendable, Hashable {
        public var id: Int64
    }

    /// The longest key a put may write: the `/kv` API's limit (`GatewayLimits.maxKeyBytes`' default).
    public static let maxKeyBytes = 4096

    // MARK: KV

    public static func range(_ fields: EtcdFields) throws(EtcdError) -> Range {
        let range = try keyRange(fields)
        let limit = try fields.int64("limit")
        guard limit >= 0 else { throw .invalid("limit must not be negative") }
        if try fields.int64("revision") != 0 { throw .unimplemented("reading at a past revision") }
        let sortOrder = try fields.enumeration("sort_order", ["NONE", "ASCEND", "DESCEND"])
        let sortTarget = try fields.enumeration("sort_target", ["KEY", "VERSION", "CREATE", "MOD", "VALUE"])
        // Unsorted and ascending by key are the store's own order; anything else is not done here.
        // A target other than KEY sorts even with sort_order NONE (etcd then sorts ascending).
        if sortOrder == 2 || sortTarget != 0 { throw .unimplemented("sorting a range") }
        for field in ["min_mod_revision", "max_mod_revision", "min_create_revision", "max_create_revision"] {
            if try fields.int64(field) != 0 { throw .unimplemented("filtering a range by revision") }
        }
        return Range(
            range: range, limit: UInt64(limit), serializable: try fields.bool("serializable"),
            keysOnly: try fields.bool("keys_only"), countOnly: try fields.bool("count_only"))
    }

    public static func put(_ fields: EtcdFields) throws(EtcdError) -> StoreTransaction.Request {
        let key = try storeKey(fields.bytes("key"))
        let ignoreValue = try fields.bool("ignore_value")
        let ignoreLease = try fields.bool("ignore_lease")
        if ignoreValue || ignoreLease {
            throw .unimplemented("ignore_value and ignore_lease")
        }
        let lease = try fields.int64("lease")
        guard lease >= 0 else { throw .leaseNotFound }
        return .put(
            key: key, value: try fields.bytes("value"), lease: UInt64(lease), previous: try fields.bool("prev_kv"))
    }

    public static func deleteRange(_ fields: EtcdFields) throws(EtcdError) -> StoreTransaction.Request {
        let range = try keyRange(fields)
        let previous = try fields.bool("prev_kv")
        // The previous values travel in the Raft entry's result (and a follower's forwarded
        // answer, at most one peer frame): only for a single key, whose size the key and value
        // limits bound.
        if previous && !range.isSingleKey { throw .unimplemented("prev_kv on a delete of more than one key") }
        return .deleteRange(range, previous: previous)
    }

    /// A whole txn: compares and both branches, checked as etcd checks them before it applies any.
    public static func transaction(_ fields: EtcdFields) throws(EtcdError) -> StoreTransaction {
        let compareFields = try fields.objects("compare")
        let successFields = try fields.objects("success")
        let failureFields = try fields.objects("failure")
        guard compareFields.count <= maxOperations, successFields.count <= maxOperations,
            failureFields.count <= maxOperations
        else { throw .tooManyOperations }
        var compares: [StoreTransaction.Compare] = []
        for compare in compareFields { compares.append(try self.compare(compare)) }
        var success: [StoreTransaction.Request] = []
        for request in successFields { success.append(try operation(request)) }
        var failure: [StoreTransaction.Request] = []
        for request in failureFields { failure.append(try operation(request)) }
        try checkDuplicates(success)
        try checkDuplicates(failure)
        return StoreTransaction(compares: compares, success: success, failure: failure)
    }

    static let targets = ["VERSION", "CREATE", "MOD", "VALUE", "LEASE"]
    static let results = ["EQUAL", "GREATER", "LESS", "NOT_EQUAL"]

    static func compare(_ fields: EtcdFields) throws(EtcdError) -> StoreTransaction.Compare {
        let range = try keyRange(fields)
        let target = StoreTransaction.Compare.Target(rawValue: UInt8(try fields.enumeration("target", targets)))!
        let relation = StoreTransaction.Compare.Relation(rawValue: UInt8(try fields.enumeration("result", results)))!
        // The target union: whichever field the request set (etcd compares against zero when it
        // does not match the target).
        var operand = StoreTransaction.Compare.Operand.none
        if fields.has("version") {
            operand = .version(try fields.int64("version"))
        } else if fields.has("create_revision") {
            operand = .createRevision(try fields.int64("create_revision"))
        } else if fields.has("mod_revision") {
            operand = .modRevision(try fields.int64("mod_revision"))
        } else if fields.has("value") {
            operand = .value(try fields.bytes("value"))
        } else if fields.has("lease") {
            operand = .lease(try fields.int64("lease"))
        }
        return StoreTransaction.Compare(range: range, target: target, relation: relation, operand: operand)
    }

    static func operation(_ fields: EtcdFields) throws(EtcdError) -> StoreTransaction.Request {
        if let put = try fields.object("request_put") { return try self.put(put) }
        if let delete = try fields.object("request_delete_range") { return try deleteRange(delete) }
        if let read = try fields.object("request_range") {
            let parsed = try range(read)
            guard parsed.range.isSingleKey || (1...maxRangeLimitInTransaction).contains(Int64(parsed.limit)) else {
                throw .unimplemented(
                    "a range inside a txn over more than one key without a limit of 1 to \(maxRangeLimitInTransaction)")
            }
            return .range(parsed.range, limit: parsed.limit, keysOnly: parsed.keysOnly, countOnly: parsed.countOnly)
        }
        if fields.has("request_txn") { throw .unimplemented("a txn nested in a txn") }
        throw .invalid("a txn request names none of request_range, request_put, request_delete_range")
    }

    /// etcd's `checkIntervals`: within one branch, no key is put twice or put inside a range that
    /// the same branch deletes.
    static func checkDuplicates(_ requests: [StoreTransaction.Request]) throws(EtcdError) {
        var puts = Set<[UInt8]>()
        for case .put(let key, _, _, _) in requests where !puts.insert(Array(key.utf8)).inserted {
            throw .duplicateKey
        }
        for case .deleteRange(let range, _) in requests where puts.contains(where: range.contains) {
            throw .duplicateKey
        }
    }

    // MARK: Leases

    /// A grant's TTL in seconds and the id asked for (0: the server picks).
    public static func grant(_ fields: EtcdFields) throws(EtcdError) -> (ttl: Int64, id: Int64) {
        (try fields.int64("TTL"), try fields.int64("ID"))
    }

    public static func leaseID(_ fields: EtcdFields) throws(EtcdError) -> Int64 {
        try fields.int64("ID")
    }

    // MARK: Keys

    /// The store range (in `EtcdNamespace`) for a request's `key` and `range_end`.
    static func keyRange(_ fields: EtcdFields) throws(EtcdError) -> StoreTransaction.KeyRange {
        let key = try fields.bytes("key")
        guard !key.isEmpty else { throw .emptyKey }
        return EtcdNamespace.storeRange(StoreTransaction.KeyRange(key: key, end: try fields.bytes("range_end")))
    }

    /// The store key (in `EtcdNamespace`) a put writes: store keys are UTF-8 text, at most
    /// `maxKeyBytes` as the `/kv` API's are.
    static func storeKey(_ bytes: [UInt8]) throws(EtcdError) -> String {
        guard !bytes.isEmpty else { throw .emptyKey }
        guard bytes.count <= maxKeyBytes else { throw .keyTooLarge(bytes.count, maxKeyBytes) }
        guard let key = String(validating: EtcdNamespace.storeKey(bytes), as: UTF8.self) else {
            throw .invalid("raftgate stores keys as UTF-8: this key is not valid UTF-8")
        }
        return key
    }
}
