import EtcdAPI
import Foundation
import Node
import Testing

/// Requests as etcd's grpc-gateway reads them, and the refusals: malformed input gets etcd's
/// InvalidArgument, what raftgate does not do gets Unimplemented. Keys land in `EtcdNamespace`.
@Suite struct EtcdRequestTests {
    static func fields(_ text: String) throws -> EtcdFields { try EtcdFields(json: Array(text.utf8)) }

    /// The store key of etcd key `key`.
    static func ns(_ key: String) -> String { KeyValueStore.etcdPrefix + key }
    static func ns(_ key: String) -> [UInt8] { Array((KeyValueStore.etcdPrefix + key).utf8) }

    static func code(_ body: () throws -> Void) -> EtcdError.Code? {
        do {
            try body()
            return nil
        } catch let error as EtcdError {
            return error.code
        } catch {
            return .unknown
        }
    }

    /// Patroni's put: base64 key and value, the lease id as the string etcd handed out.
    @Test func patronisPut() throws {
        let put = try EtcdRequests.put(
            Self.fields(#"{"key":"L3NlcnZpY2UvYmF0bWFuL2xlYWRlcg==","value":"cGcx","lease":"7587862072463224075"}"#))
        #expect(
            put
                == .put(
                    key: Self.ns("/service/batman/leader"), value: Array("pg1".utf8), lease: 7_587_862_072_463_224_075,
                    previous: false))
        // int64s as JSON numbers too, and unknown fields ignored, as etcd 3.4 does.
        let numeric = try EtcdRequests.put(Self.fields(#"{"key":"YQ==","value":"","lease":12,"bogus":{"x":1}}"#))
        #expect(numeric == .put(key: Self.ns("a"), value: [], lease: 12, previous: false))
    }

    @Test func badInputIsInvalidArgument() {
        #expect(
            Self.code { _ = try EtcdRequests.put(Self.fields(#"{"key":"!!!","value":"eA=="}"#)) } == .invalidArgument)
        #expect(Self.code { _ = try EtcdRequests.put(Self.fields(#"{"value":"eA=="}"#)) } == .invalidArgument)
        #expect(Self.code { _ = try Self.fields("notjson") } == .invalidArgument)
        #expect(Self.code { _ = try Self.fields("[1]") } == .invalidArgument)
        #expect(
            Self.code { _ = try EtcdRequests.range(Self.fields(#"{"key":"YQ==","limit":"ten"}"#)) } == .invalidArgument)
        #expect(
            Self.code { _ = try EtcdRequests.range(Self.fields(#"{"key":"YQ==","keys_only":"yes"}"#)) }
                == .invalidArgument)
        // A key that is not UTF-8 cannot be a store key.
        #expect(Self.code { _ = try EtcdRequests.put(Self.fields(#"{"key":"/w==","value":""}"#)) } == .invalidArgument)
        #expect(EtcdError.emptyKey.message == "etcdserver: key is not provided")
    }

    /// Every key and range an etcd client names lands in the namespace: `/_sys/workers/x` is
    /// etcd's own `/_sys/workers/x`, not the cluster's; "every key" stops at the namespace's end.
    @Test func keysAndRangesStayInTheNamespace() throws {
        let put = try EtcdRequests.put(Self.fields(#"{"key":"L19zeXMvd29ya2Vycy94","value":""}"#))
        #expect(put == .put(key: Self.ns("/_sys/workers/x"), value: [], lease: 0, previous: false))
        let all = try EtcdRequests.range(Self.fields(#"{"key":"AA==","range_end":"AA=="}"#)).range
        #expect(all == .init(key: Self.ns("\0"), end: Array("/_sys/etce".utf8)))
        #expect(all.lies(within: EtcdNamespace.prefix))
        #expect(!all.contains(Array("/_sys/workers/x".utf8)) && !all.contains(Array("/service/x".utf8)))
        #expect(all.contains(Self.ns("/service/x")))
        let prefix = try EtcdRequests.range(Self.fields(#"{"key":"L3NlcnZpY2Uv","range_end":"L3NlcnZpY2Uw"}"#)).range
        #expect(prefix == .init(key: Self.ns("/service/"), end: Self.ns("/service0")))
        #expect(EtcdNamespace.etcdKey(KeyValueStore.etcdPrefix + "/service/x") == Array("/service/x".utf8))
        #expect(EtcdNamespace.etcdKey("/_sys/workers/x") == nil && EtcdNamespace.etcdKey("/service/x") == nil)
    }

    /// The `/kv` API's key limit holds on `/v3` too; a key at the limit is fine.
    @Test func anOversizedKeyIsRefused() throws {
        let long = Data(String(repeating: "k", count: EtcdRequests.maxKeyBytes + 1).utf8).base64EncodedString()
        #expect(
            Self.code { _ = try EtcdRequests.put(Self.fields(#"{"key":"\#(long)","value":""}"#)) } == .invalidArgument)
        #expect(
            Self.code {
                _ = try EtcdRequests.transaction(Self.fields(#"{"success":[{"request_put":{"key":"\#(long)"}}]}"#))
            } == .invalidArgument)
        let fits = Data(String(repeating: "k", count: EtcdRequests.maxKeyBytes).utf8).base64EncodedString()
        #expect(Self.code { _ = try EtcdRequests.put(Self.fields(#"{"key":"\#(fits)","value":""}"#)) } == nil)
    }

    @Test func whatRaftgateDoesNotDoIsUnimplemented() {
        #expect(
            Self.code { _ = try EtcdRequests.range(Self.fields(#"{"key":"YQ==","revision":"3"}"#)) } == .unimplemented)
        #expect(
            Self.code { _ = try EtcdRequests.range(Self.fields(#"{"key":"YQ==","sort_order":"DESCEND"}"#)) }
                == .unimplemented)
        #expect(
            Self.code { _ = try EtcdRequests.range(Self.fields(#"{"key":"YQ==","min_mod_revision":2}"#)) }
                == .unimplemented)
        #expect(
            Self.code { _ = try EtcdRequests.put(Self.fields(#"{"key":"YQ==","ignore_value":true}"#)) }
                == .unimplemented)
        #expect(
            Self.code { _ = try EtcdRequests.transaction(Self.fields(#"{"success":[{"request_txn":{}}]}"#)) }
                == .unimplemented)
        // A range in a txn over many keys must bound its answer.
        #expect(
            Self.code {
                _ = try EtcdRequests.transaction(
                    Self.fields(#"{"success":[{"request_range":{"key":"AA==","range_end":"AA=="}}]}"#))
            } == .unimplemented)
        // Previous values of a range delete would ride in the Raft entry's result unbounded.
        #expect(
            Self.code {
                _ = try EtcdRequests.deleteRange(Self.fields(#"{"key":"YQ==","range_end":"Yg==","prev_kv":true}"#))
            } == .unimplemented)
        #expect(Self.code { _ = try EtcdRequests.deleteRange(Self.fields(#"{"key":"YQ==","prev_kv":true}"#)) } == nil)
        // Sorting by anything but the key, whatever the order says (etcd sorts ascending on NONE).
        for order in ["", #","sort_order":"NONE""#, #","sort_order":"ASCEND""#] {
            #expect(
                Self.code { _ = try EtcdRequests.range(Self.fields(#"{"key":"YQ==","sort_target":"MOD"\#(order)}"#)) }
                    == .unimplemented)
        }
        #expect(
            Self.code {
                _ = try EtcdRequests.range(Self.fields(#"{"key":"YQ==","sort_target":"KEY","sort_order":"NONE"}"#))
            }
                == nil)
        // Ascending by key is the store's own order.
        #expect(Self.code { _ = try EtcdRequests.range(Self.fields(#"{"key":"YQ==","sort_order":"ASCEND"}"#)) } == nil)
    }

    /// Patroni's leader race, as it sends it.
    @Test func patronisLeaderTransaction() throws {
        let transaction = try EtcdRequests.transaction(
            Self.fields(
                #"{"compare":[{"target":"CREATE","create_revision":0,"key":"L2xlYWRlcg=="}],"success":[{"request_put":{"key":"L2xlYWRlcg==","value":"cGcx","lease":"5"}}]}"#
            ))
        #expect(
            transaction
                == StoreTransaction(
                    compares: [
                        .init(
                            range: .init(key: Self.ns("/leader")), target: .createRevision, relation: .equal,
                            operand: .createRevision(0))
                    ],
                    success: [.put(key: Self.ns("/leader"), value: Array("pg1".utf8), lease: 5, previous: false)]))
        // Enums by number work as by name.
        let numeric = try EtcdRequests.transaction(
            Self.fields(#"{"compare":[{"target":2,"result":3,"mod_revision":"4","key":"YQ=="}]}"#))
        #expect(numeric.compares.first?.target == .modRevision && numeric.compares.first?.relation == .notEqual)
        #expect(numeric.compares.first?.operand == .modRevision(4))
    }

    @Test func duplicateKeysAndTooManyOperations() throws {
        #expect(
            Self.code {
                _ = try EtcdRequests.transaction(
                    Self.fields(#"{"success":[{"request_put":{"key":"eA=="}},{"request_put":{"key":"eA=="}}]}"#))
            } == .invalidArgument)
        #expect(
            Self.code {
                _ = try EtcdRequests.transaction(
                    Self.fields(
                        #"{"success":[{"request_delete_range":{"key":"dw==","range_end":"eg=="}},{"request_put":{"key":"eA=="}}]}"#
                    ))
            } == .invalidArgument)
        // The same key in the two branches is fine.
        _ = try EtcdRequests.transaction(
            Self.fields(#"{"success":[{"request_put":{"key":"eA=="}}],"failure":[{"request_put":{"key":"eA=="}}]}"#))
        let many = Array(repeating: #"{"request_range":{"key":"eA=="}}"#, count: 129).joined(separator: ",")
        #expect(
            Self.code { _ = try EtcdRequests.transaction(Self.fields(#"{"success":[\#(many)]}"#)) } == .invalidArgument)
    }

    @Test func watchRequests() throws {
        let create = try EtcdWatchRequest(
            Self.fields(
                #"{"create_request":{"key":"L3NlcnZpY2Uv","range_end":"L3NlcnZpY2Uw","start_revision":"7","filters":["NODELETE"]}}"#
            ))
        guard case .create(let watcher) = create else {
            Issue.record("not a create: \(create)")
            return
        }
        #expect(watcher.range == .init(key: Self.ns("/service/"), end: Self.ns("/service0")))
        #expect(watcher.startRevision == 7 && watcher.noDelete && !watcher.noPut)
        #expect(watcher.since(currentRevision: 20) == 6)
        #expect(EtcdWatcher(range: .init(key: [1])).since(currentRevision: 20) == 20)
        #expect(try EtcdWatchRequest(Self.fields(#"{"cancel_request":{"watch_id":"3"}}"#)) == .cancel(watchID: 3))
        #expect(try EtcdWatchRequest(Self.fields(#"{"progress_request":{}}"#)) == .progress)
        #expect(Self.code { _ = try EtcdWatchRequest(Self.fields("{}")) } == .invalidArgument)
        #expect(
            Self.code { _ = try EtcdWatchRequest(Self.fields(#"{"create_request":{"key":"!!"}}"#)) } == .invalidArgument
        )
    }

    @Test func splitterFindsWholeObjects() throws {
        var splitter = EtcdJSONObjectSplitter(maxObjectBytes: 64)
        let text = #"{"a":"}{\"x"} {"b":{"c":1}}"# + "\n" + #"{"d":"#
        var found: [String] = []
        // Byte by byte: objects split anywhere still come out whole.
        for byte in Array(text.utf8) { found += try splitter.feed([byte]).map { String(decoding: $0, as: UTF8.self) } }
        #expect(found == [#"{"a":"}{\"x"}"#, #"{"b":{"c":1}}"#])
        #expect(splitter.isMidObject)
        #expect(throws: EtcdError.self) { try splitter.feed(Array(String(repeating: "x", count: 80).utf8)) }
        var other = EtcdJSONObjectSplitter()
        #expect(throws: EtcdError.self) { try other.feed(Array("[1]".utf8)) }
    }
}
