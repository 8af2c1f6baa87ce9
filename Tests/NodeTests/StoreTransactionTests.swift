import Testing

@testable import Node

/// etcd's Txn as one store command: compare semantics (missing keys included), one revision per
/// transaction, all-or-nothing on a missing lease, and the reserved prefix.
@Suite struct StoreTransactionTests {
    typealias Compare = StoreTransaction.Compare
    typealias KeyRange = StoreTransaction.KeyRange

    static func key(_ text: String) -> KeyRange { KeyRange(key: Array(text.utf8)) }

    static func put(_ key: String, _ value: String, lease: UInt64 = 0, previous: Bool = false)
        -> StoreTransaction.Request
    {
        .put(key: key, value: Array(value.utf8), lease: lease, previous: previous)
    }

    static func run(_ store: inout KeyValueStore, _ transaction: StoreTransaction, system: Bool = false)
        -> StoreResult
    {
        store.apply(StoreCommand(operation: .transaction(transaction), isSystem: system))
    }

    static func outcome(_ result: StoreResult) -> TransactionOutcome? {
        if case .transaction(let outcome) = result { return outcome }
        return nil
    }

    /// Patroni's leader lock: a put guarded by `create_revision == 0` wins once.
    @Test func createRevisionZeroTakesAMissingKeyOnce() throws {
        var store = KeyValueStore()
        let lock = StoreTransaction(
            compares: [
                Compare(
                    range: Self.key("/leader"), target: .createRevision, relation: .equal, operand: .createRevision(0))
            ],
            success: [Self.put("/leader", "a")])
        let first = try #require(Self.outcome(Self.run(&store, lock)))
        #expect(first.succeeded && first.revision == 1)
        var other = lock
        other.success = [Self.put("/leader", "b")]
        let second = try #require(Self.outcome(Self.run(&store, other)))
        #expect(!second.succeeded)
        #expect(second.revision == 1)
        #expect(second.responses.isEmpty)
        #expect(store.get("/leader")?.value == Array("a".utf8))
        #expect(store.revision == 1)
    }

    /// A missing key compares as the zero record, except on the value, where it always fails
    /// (etcd's applyCompare), even against the empty value.
    @Test func missingKeysCompareLikeEtcd() {
        let store = KeyValueStore()
        func holds(_ target: Compare.Target, _ relation: Compare.Relation, _ operand: Compare.Operand) -> Bool {
            var copy = store
            let transaction = StoreTransaction(
                compares: [Compare(range: Self.key("nope"), target: target, relation: relation, operand: operand)])
            return Self.outcome(Self.run(&copy, transaction))?.succeeded ?? false
        }
        #expect(holds(.version, .equal, .version(0)))
        #expect(holds(.createRevision, .equal, .createRevision(0)))
        #expect(holds(.modRevision, .less, .modRevision(5)))
        #expect(!holds(.modRevision, .greater, .modRevision(0)))
        #expect(holds(.lease, .equal, .lease(0)))
        #expect(!holds(.value, .equal, .value([])))
        #expect(!holds(.value, .notEqual, .value(Array("x".utf8))))
        #expect(!holds(.value, .less, .value(Array("x".utf8))))
    }

    /// etcd compares against zero when the operand set is not the target's.
    @Test func anOperandForAnotherTargetComparesAgainstZero() {
        var store = KeyValueStore()
        _ = store.apply(StoreCommand(operation: .put(key: "k", value: [1])))
        var copy = store
        let mismatched = StoreTransaction(
            compares: [
                Compare(range: Self.key("k"), target: .modRevision, relation: .greater, operand: .createRevision(7))
            ])
        #expect(Self.outcome(Self.run(&copy, mismatched))?.succeeded == true)
        let value = StoreTransaction(
            compares: [Compare(range: Self.key("k"), target: .value, relation: .greater, operand: .none)])
        #expect(Self.outcome(Self.run(&copy, value))?.succeeded == true)
    }

    @Test func aRangeCompareMustHoldForEveryKey() {
        var store = KeyValueStore()
        _ = store.apply(StoreCommand(operation: .put(key: "a1", value: [1])))
        _ = store.apply(StoreCommand(operation: .put(key: "a2", value: [1])))
        _ = store.apply(StoreCommand(operation: .put(key: "a2", value: [2])))
        let prefix = KeyRange(key: Array("a".utf8), end: Array("b".utf8))
        var copy = store
        let allVersionOne = StoreTransaction(
            compares: [Compare(range: prefix, target: .version, relation: .equal, operand: .version(1))])
        #expect(Self.outcome(Self.run(&copy, allVersionOne))?.succeeded == false)
        let allPositive = StoreTransaction(
            compares: [Compare(range: prefix, target: .version, relation: .greater, operand: .version(0))])
        #expect(Self.outcome(Self.run(&copy, allPositive))?.succeeded == true)
    }

    /// Every write of a transaction lands at one new revision, in one change; a failure branch runs
    /// when the compares fail; reads see the writes before them.
    @Test func oneRevisionForTheWholeTransaction() throws {
        var store = KeyValueStore()
        _ = store.apply(StoreCommand(operation: .put(key: "c", value: [9])))
        let transaction = StoreTransaction(
            compares: [Compare(range: Self.key("c"), target: .version, relation: .equal, operand: .version(1))],
            success: [
                Self.put("a", "1"), Self.put("b", "2"), .deleteRange(Self.key("c"), previous: true),
                .range(KeyRange(key: [0], end: [0]), limit: 0, keysOnly: false, countOnly: false),
            ],
            failure: [Self.put("z", "no")])
        let (result, change) = store.applyRecordingChange(StoreCommand(operation: .transaction(transaction)))
        let outcome = try #require(Self.outcome(result))
        #expect(outcome.succeeded && outcome.revision == 2)
        #expect(store.get("a")?.modRevision == 2 && store.get("b")?.createRevision == 2)
        #expect(store.get("c") == nil)
        #expect(change?.revision == 2 && change?.events.map(\.key) == ["a", "b", "c"])
        #expect(change?.events.allSatisfy { $0.revision == 2 } == true)
        guard case .deleteRange(let deleted, let previous) = outcome.responses[2],
            case .range(let read, let count, let more) = outcome.responses[3]
        else {
            Issue.record("unexpected responses \(outcome.responses)")
            return
        }
        #expect(deleted == 1 && previous.first?.record.value == [9])
        #expect(read.map(\.key) == ["a", "b"] && count == 2 && !more)
        #expect(store.get("z") == nil)
    }

    @Test func nothingChangedLeavesTheRevision() throws {
        var store = KeyValueStore()
        _ = store.apply(StoreCommand(operation: .put(key: "k", value: [1])))
        let outcome = try #require(
            Self.outcome(
                Self.run(
                    &store,
                    StoreTransaction(success: [
                        .deleteRange(Self.key("missing"), previous: false),
                        .range(Self.key("k"), limit: 0, keysOnly: true, countOnly: false),
                    ]))))
        #expect(outcome.revision == 1 && store.revision == 1)
        guard case .range(let rows, _, _) = outcome.responses[1] else { return }
        #expect(rows.first?.record.value == [] && rows.first?.record.version == 1)
    }

    /// etcd checks leases before it applies anything: the whole transaction fails.
    @Test func aMissingLeaseChangesNothing() {
        var store = KeyValueStore()
        let result = Self.run(&store, StoreTransaction(success: [Self.put("a", "1"), Self.put("b", "2", lease: 42)]))
        #expect(result == .leaseNotFound(id: 42))
        #expect(store.revision == 0 && store.get("a") == nil)
        _ = store.apply(StoreCommand(operation: .grantLease(id: 42, ttlMilliseconds: 5000)))
        #expect(
            Self.outcome(Self.run(&store, StoreTransaction(success: [Self.put("b", "2", lease: 42)])))?.succeeded
                == true)
        #expect(store.lease(42)?.keys == ["b"])
        _ = store.apply(StoreCommand(operation: .revokeLease(id: 42)))
        #expect(store.get("b") == nil)
    }

    @Test func clientsNeitherTouchNorSeeTheReservedPrefix() throws {
        var store = KeyValueStore()
        _ = store.apply(StoreCommand(operation: .put(key: "/_sys/workers/x", value: [1]), isSystem: true))
        _ = store.apply(StoreCommand(operation: .put(key: "/a", value: [1])))
        #expect(Self.run(&store, StoreTransaction(success: [Self.put("/_sys/workers/x", "evil")])) == .reservedKey)
        let compare = Compare(
            range: Self.key("/_sys/workers/x"), target: .version, relation: .equal, operand: .version(1))
        #expect(Self.run(&store, StoreTransaction(compares: [compare])) == .reservedKey)
        let everything = KeyRange(key: [0], end: [0])
        let outcome = try #require(
            Self.outcome(Self.run(&store, StoreTransaction(success: [.deleteRange(everything, previous: false)]))))
        guard case .deleteRange(let deleted, _) = outcome.responses[0] else { return }
        #expect(deleted == 1)
        #expect(store.get("/_sys/workers/x")?.value == [1])
        #expect(store.keyValues(in: everything).count == 0)
        #expect(store.keyValues(in: everything, includeReserved: true).count == 1)
    }

    /// etcd's keys live under `/_sys/etcd`: a client transaction kept inside that namespace
    /// reads and writes it, one reaching past it into the rest of `/_sys/` is refused, and the
    /// `/kv` API's client puts still cannot write there.
    @Test func theEtcdNamespaceIsReachableOnlyByTransactionsInsideIt() throws {
        var store = KeyValueStore()
        let ns = KeyValueStore.etcdPrefix
        _ = store.apply(StoreCommand(operation: .put(key: "/_sys/workers/x", value: [1]), isSystem: true))
        let written = try #require(
            Self.outcome(Self.run(&store, StoreTransaction(success: [Self.put(ns + "/leader", "pg1")]))))
        #expect(written.succeeded && store.get(ns + "/leader")?.value == Array("pg1".utf8))
        // "Every key" of the namespace: its own keys, nothing of the rest of /_sys/.
        let all = KeyRange(key: Array((ns + "\0").utf8), end: Array("/_sys/etce".utf8))
        let read = try #require(
            Self.outcome(
                Self.run(&store, StoreTransaction(success: [.range(all, limit: 0, keysOnly: false, countOnly: false)])))
        )
        guard case .range(let rows, let count, _) = read.responses[0] else { return }
        #expect(count == 1 && rows.map(\.key) == [ns + "/leader"])
        // A compare or put reaching out of the namespace is a client touching /_sys/.
        let outside = Compare(
            range: Self.key("/_sys/workers/x"), target: .version, relation: .equal, operand: .version(1))
        #expect(
            Self.run(&store, StoreTransaction(compares: [outside], success: [Self.put(ns + "/leader", "evil")]))
                == .reservedKey)
        #expect(Self.run(&store, StoreTransaction(success: [Self.put("/_sys/etc", "evil")])) == .reservedKey)
        #expect(store.apply(StoreCommand(operation: .put(key: ns + "/leader", value: [9]))) == .reservedKey)
        #expect(store.get(ns + "/leader")?.value == Array("pg1".utf8))
    }

    /// A txn re-submitted with its idempotency key (its first outcome was unknown to the gateway)
    /// answers its first result; without the key the second attempt fails its compare.
    @Test func aRetriedTransactionReplaysItsFirstOutcome() throws {
        let lock = StoreTransaction(
            compares: [
                Compare(
                    range: Self.key("/leader"), target: .createRevision, relation: .equal, operand: .createRevision(0))
            ],
            success: [Self.put("/leader", "pg1")])
        var keyed = StoreCommand(operation: .transaction(lock), idempotencyKey: "etcd/1")
        keyed.stamp = 1_000
        var store = KeyValueStore()
        let first = try #require(Self.outcome(store.apply(keyed)))
        let again = try #require(Self.outcome(store.apply(keyed)))
        #expect(first.succeeded && again == first)
        #expect(store.get("/leader")?.version == 1)
        var unkeyed = KeyValueStore()
        _ = unkeyed.apply(StoreCommand(operation: .transaction(lock)))
        #expect(Self.outcome(unkeyed.apply(StoreCommand(operation: .transaction(lock))))?.succeeded == false)
    }

    @Test func rangesFollowEtcdsRangeEnd() {
        var store = KeyValueStore()
        for key in ["a", "b", "b1", "c"] { _ = store.apply(StoreCommand(operation: .put(key: key, value: [1]))) }
        func keys(_ key: String, _ end: [UInt8], limit: UInt64 = 0) -> ([String], UInt64) {
            let found = store.keyValues(in: KeyRange(key: Array(key.utf8), end: end), limit: limit)
            return (found.keyValues.map(\.key), found.count)
        }
        #expect(keys("b", []) == (["b"], 1))
        #expect(keys("b", Array("c".utf8)) == (["b", "b1"], 2))
        #expect(keys("b", [0]) == (["b", "b1", "c"], 3))
        #expect(keys("a", [0], limit: 2) == (["a", "b"], 4))
        #expect(keys("x", []) == ([], 0))
    }

    /// The command and its result survive encoding (Raft entries, forwarded answers, snapshots).
    @Test func encodingRoundTrips() throws {
        let transaction = StoreTransaction(
            compares: [
                Compare(range: Self.key("k"), target: .createRevision, relation: .equal, operand: .createRevision(0)),
                Compare(
                    range: KeyRange(key: [1], end: [0]), target: .value, relation: .notEqual, operand: .value([7, 0])),
                Compare(range: Self.key("l"), target: .lease, relation: .less, operand: .lease(-3)),
            ],
            success: [Self.put("k", "v", lease: 9, previous: true)],
            failure: [
                .deleteRange(KeyRange(key: [1], end: [2]), previous: true),
                .range(Self.key("k"), limit: 5, keysOnly: true, countOnly: false),
            ])
        let command = StoreCommand(operation: .transaction(transaction))
        #expect(try StoreCommand(decoding: command.encoded) == command)
        let outcome = TransactionOutcome(
            succeeded: true, revision: 12,
            responses: [
                .put(
                    previous: TransactionOutcome.KeyValue(
                        key: "k", record: .init(value: [1], createRevision: 3, modRevision: 4, version: 2, lease: 9))),
                .deleteRange(deleted: 0, previous: []), .range(keyValues: [], count: 3, more: true),
            ])
        var bytes: [UInt8] = []
        StoreResult.transaction(outcome).encode(into: &bytes)
        var reader = StoreReader(bytes[...])
        #expect(try StoreResult(decoding: &reader) == .transaction(outcome))
        #expect(reader.isAtEnd)
        // A truncated encoding throws, never traps.
        for cut in 0..<command.encoded.count {
            #expect(throws: StoreDecodingError.self) { try StoreCommand(decoding: Array(command.encoded.prefix(cut))) }
        }
    }

    /// Replicas applying the same transactions end byte-identical, snapshot included.
    @Test func replicasAgree() throws {
        var one = KeyValueStore()
        var two = KeyValueStore()
        let commands = [
            StoreCommand(operation: .grantLease(id: 5, ttlMilliseconds: 1000)),
            StoreCommand(
                operation: .transaction(StoreTransaction(success: [Self.put("a", "1", lease: 5), Self.put("b", "2")]))),
            StoreCommand(
                operation: .transaction(
                    StoreTransaction(success: [.deleteRange(KeyRange(key: [0], end: [0]), previous: true)]))),
        ]
        for command in commands {
            #expect(one.apply(command) == two.apply(command))
        }
        #expect(one.snapshot == two.snapshot)
        #expect(try KeyValueStore(snapshot: one.snapshot) == one)
    }
}
