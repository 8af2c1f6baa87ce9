import EtcdAPI
import Node
import Testing

/// Answers, compared byte for byte with what etcd 3.4.23 answered to the same requests (captured
/// from Debian's etcd; `EtcdCompatibilityTests` compares with a live one).
@Suite struct EtcdResponseTests {
    static let identity = EtcdIdentity(clusterID: 12_419_417_797_570_985_050, memberID: 1_520_713_267_247_070_721)

    static func header(_ revision: UInt64) -> EtcdObject {
        EtcdResponses.header(identity, revision: revision, term: 2)
    }

    static let headerText =
        #"{"cluster_id":"12419417797570985050","member_id":"1520713267247070721","revision":"3","raft_term":"2"}"#

    @Test func putWithPreviousValue() {
        let previous = TransactionOutcome.KeyValue(
            key: KeyValueStore.etcdPrefix + "foo",
            record: .init(value: Array("bar".utf8), createRevision: 2, modRevision: 2, version: 1))
        #expect(
            EtcdResponses.response(.put(previous: previous), header: Self.header(3)).json.text
                == #"{"header":\#(Self.headerText),"prev_kv":{"key":"Zm9v","create_revision":"2","mod_revision":"2","version":"1","value":"YmFy"}}"#
        )
    }

    @Test func rangeAnswers() {
        let row = TransactionOutcome.KeyValue(
            key: KeyValueStore.etcdPrefix + "foo",
            record: .init(value: Array("baz".utf8), createRevision: 2, modRevision: 3, version: 2))
        #expect(
            EtcdResponses.range(header: Self.header(3), keyValues: [row], count: 1, more: false).json.text
                == #"{"header":\#(Self.headerText),"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"3","version":"2","value":"YmF6"}],"count":"1"}"#
        )
        // Nothing found: etcd leaves kvs and count out.
        #expect(
            EtcdResponses.range(header: Self.header(3), keyValues: [], count: 0, more: false).json.text
                == #"{"header":\#(Self.headerText)}"#)
    }

    /// A txn's nested answers carry a header with the revision alone; `succeeded` false is left out.
    @Test func transactionAnswers() {
        let won = TransactionOutcome(succeeded: true, revision: 4, responses: [.put(previous: nil)])
        #expect(
            EtcdResponses.transaction(won, header: Self.header(4)).json.text
                == #"{"header":\#(Self.headerText.replacingOccurrences(of: "\"3\"", with: "\"4\"")),"succeeded":true,"responses":[{"response_put":{"header":{"revision":"4"}}}]}"#
        )
        let lost = TransactionOutcome(succeeded: false, revision: 3, responses: [])
        #expect(EtcdResponses.transaction(lost, header: Self.header(3)).json.text == #"{"header":\#(Self.headerText)}"#)
        let deleted = TransactionOutcome(
            succeeded: true, revision: 3, responses: [.deleteRange(deleted: 1, previous: [])])
        #expect(
            EtcdResponses.transaction(deleted, header: Self.header(3)).json.text
                == #"{"header":\#(Self.headerText),"succeeded":true,"responses":[{"response_delete_range":{"header":{"revision":"3"},"deleted":"1"}}]}"#
        )
    }

    @Test func leaseAnswers() {
        #expect(
            EtcdResponses.leaseKeepAlive(id: 777, ttl: 30, header: Self.header(3)).text
                == #"{"result":{"header":\#(Self.headerText),"ID":"777","TTL":"30"}}"#)
        // A lost lease: TTL left out, which Patroni reads as "grant a new one".
        #expect(
            EtcdResponses.leaseKeepAlive(id: 778, ttl: 0, header: Self.header(3)).text
                == #"{"result":{"header":\#(Self.headerText),"ID":"778"}}"#)
        #expect(
            EtcdResponses.leaseTimeToLive(id: 778, ttl: -1, grantedTTL: 0, keys: [], header: Self.header(3)).json.text
                == #"{"header":\#(Self.headerText),"ID":"778","TTL":"-1"}"#)
        #expect(
            EtcdResponses.leaseTimeToLive(
                id: 777, ttl: 29, grantedTTL: 30, keys: [Array("l".utf8)], header: Self.header(3)
            ).json
                .text == #"{"header":\#(Self.headerText),"ID":"777","TTL":"29","grantedTTL":"30","keys":["bA=="]}"#)
    }

    /// A store nobody wrote yet is at revision 0: the header still says so, as Patroni needs it.
    @Test func revisionZeroIsWritten() {
        #expect(EtcdResponses.header(Self.identity, revision: 0, term: 2).json.text.contains(#""revision":"0""#))
    }

    @Test func errors() {
        #expect(
            EtcdError.leaseNotFound.json.text
                == #"{"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5}"#
        )
        #expect(EtcdError.leaseNotFound.httpStatus == 404)
        #expect(EtcdError.authNotEnabled.httpStatus == 412)
        #expect(EtcdError.unimplemented("x").httpStatus == 501)
        #expect(EtcdError.noLeader.httpStatus == 503)
    }

    @Test func watchAnswers() {
        // Store keys in the namespace, answered as the etcd keys they stand for.
        let watcher = EtcdWatcher(range: EtcdNamespace.storeRange(.init(key: Array("w".utf8), end: Array("x".utf8))))
        let ns = KeyValueStore.etcdPrefix
        let change = StoreChange(
            revision: 10,
            events: [
                StoreEvent(
                    kind: .put, key: ns + "w", value: Array("1".utf8), revision: 10, createRevision: 10, version: 1),
                StoreEvent(kind: .put, key: ns + "z", value: [], revision: 10, createRevision: 10, version: 1),
                StoreEvent(kind: .delete, key: ns + "w2", revision: 10),
                // The same key outside the namespace is not etcd's.
                StoreEvent(kind: .put, key: "w", value: [], revision: 10, createRevision: 10, version: 1),
            ])
        let events = watcher.events(in: change)
        #expect(
            EtcdWatchResponses.events(Self.header(3), watchID: 0, events).text
                == #"{"result":{"header":\#(Self.headerText),"events":[{"kv":{"key":"dw==","create_revision":"10","mod_revision":"10","version":"1","value":"MQ=="}},{"type":"DELETE","kv":{"key":"dzI=","mod_revision":"10"}}]}}"#
        )
        var noDelete = watcher
        noDelete.noDelete = true
        #expect(noDelete.events(in: change).count == 1)
        #expect(
            EtcdWatchResponses.created(Self.header(3), watchID: 0).text
                == #"{"result":{"header":\#(Self.headerText),"created":true}}"#)
        #expect(
            EtcdWatchResponses.compacted(
                EtcdResponses.header(Self.identity, revision: 0, term: 2, includeZeroRevision: false), watchID: 0,
                compactRevision: 9
            )
            .text
                == #"{"result":{"header":{"cluster_id":"12419417797570985050","member_id":"1520713267247070721","raft_term":"2"},"canceled":true,"compact_revision":"9"}}"#
        )
        #expect(
            EtcdWatchResponses.progress(Self.header(3), watchID: -1).text
                == #"{"result":{"header":\#(Self.headerText),"watch_id":"-1"}}"#)
        // A reserved key never reaches an etcd watcher, even one watching everything.
        let everything = EtcdWatcher(range: EtcdNamespace.storeRange(.init(key: [0], end: [0])))
        #expect(
            everything.events(
                in: StoreChange(
                    revision: 1,
                    events: [
                        StoreEvent(kind: .delete, key: "/_sys/x", revision: 1),
                        StoreEvent(kind: .delete, key: "/_sys/etcf", revision: 1),
                    ])
            ).isEmpty)
        #expect(
            everything.events(
                in: StoreChange(revision: 1, events: [StoreEvent(kind: .delete, key: ns + "a", revision: 1)])
            )
            .count == 1)
    }
}
