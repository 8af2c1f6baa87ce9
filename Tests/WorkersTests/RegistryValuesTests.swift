import Node
import Testing

@testable import Workers

@Suite("Registry records, names, directory and proxy headers")
struct RegistryValuesTests {
    @Test func aRecordRoundTripsAndOnlyUnderItsOwnKey() {
        let record = WorkerRecord(
            service: "echo", id: "a", address: "127.0.0.1:9000", tags: ["zone": "b"], source: .http)
        #expect(WorkerRecord(key: record.key, value: record.encoded) == record)
        #expect(WorkerRecord(key: "/_sys/workers/echo/b", value: record.encoded) == nil)
        #expect(WorkerRecord(key: record.key, value: Array("garbage".utf8)) == nil)
    }

    @Test func namesAndAddresses() {
        #expect(WorkerNames.isValidName("echo-1.v2_x"))
        #expect(!WorkerNames.isValidName(""))
        #expect(!WorkerNames.isValidName("a/b"))
        #expect(!WorkerNames.isValidName(String(repeating: "a", count: 65)))
        #expect(WorkerNames.parseAddress("127.0.0.1:9000")! == ("127.0.0.1", 9000))
        #expect(WorkerNames.parseAddress("[::1]:80")! == ("[::1]", 80))
        #expect(WorkerNames.parseAddress("worker.local:65535") != nil)
        for bad in ["127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", ":80", "http://a:80", "a:80/x", "a b:80", "a:x"] {
            #expect(WorkerNames.parseAddress(bad) == nil, "\(bad)")
        }
    }

    @Test func theDirectoryFollowsPutsAndDeletesAndIgnoresOtherKeys() {
        var directory = WorkerDirectory()
        let a = WorkerRecord(service: "echo", id: "a", address: "127.0.0.1:9000", source: .http)
        let b = WorkerRecord(service: "api", id: "b", address: "127.0.0.1:9001", source: .swim)
        let result1 = directory.apply(StoreEvent(kind: .put, key: a.key, value: a.encoded, revision: 1))
        #expect(result1)
        let result2 = directory.apply(StoreEvent(kind: .put, key: b.key, value: b.encoded, revision: 2))
        #expect(result2)
        let result3 = directory.apply(StoreEvent(kind: .put, key: "/_sys/config/x", value: [], revision: 3))
        #expect(!result3)
        #expect(directory.all == [b, a])
        let result4 = directory.apply(StoreEvent(kind: .delete, key: a.key, revision: 4))
        #expect(result4)
        #expect(directory.services.keys.sorted() == ["api"], "a service without workers is gone")
        #expect(directory.revision == 4)
    }

    @Test func forwardedHeadersAppendTheClientAndDropHopByHopOnes() {
        let upstream = ProxyHeaders.upstream(
            [
                ("Host", "gw:8080"), ("X-Forwarded-For", "10.0.0.1"), ("Connection", "keep-alive, X-Secret"),
                ("X-Secret", "s"), ("Keep-Alive", "timeout=5"), ("Accept", "*/*"), ("X-Raftgate-Peer", "1.2.3.4"),
            ], clientAddress: "127.0.0.1", proto: "http", internalNames: ["x-raftgate-peer"])
        let names = upstream.map { $0.name.lowercased() }
        #expect(!names.contains("connection") && !names.contains("x-secret") && !names.contains("keep-alive"))
        #expect(!names.contains("x-raftgate-peer") && !names.contains("host"))
        #expect(upstream.first { $0.name == "X-Forwarded-For" }?.value == "10.0.0.1, 127.0.0.1")
        #expect(upstream.first { $0.name == "X-Forwarded-Proto" }?.value == "http")
        #expect(upstream.first { $0.name == "X-Forwarded-Host" }?.value == "gw:8080")
        #expect(upstream.contains { $0.name == "Accept" })
        let downstream = ProxyHeaders.downstream([("Transfer-Encoding", "chunked"), ("Content-Type", "text/plain")])
        #expect(downstream.map(\.name) == ["Content-Type"])
    }
}
