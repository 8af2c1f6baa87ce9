import Foundation
import Node
import Testing

@testable import Gateway

/// Sizes the etcd API refuses with etcd's own answers, never with "unavailable, retry".
@Suite("etcd API limits", .serialized)
struct EtcdLimitTests {
    /// A txn whose Raft command would exceed `maxCommandBytes` is etcd's "request is too large"
    /// (InvalidArgument, which Patroni does not retry), and nothing is written.
    @Test func anOversizedCommandIsRequestTooLarge() async throws {
        try await StorePrimitiveRouteTests.withGateway(limits: { $0.maxBodyBytes = 8 << 20 }) { node, client in
            let value = Data(repeating: 0x61, count: node.configuration.maxCommandBytes + 1).base64EncodedString()
            let put = #"{"key":"\#(Data("big".utf8).base64EncodedString())","value":"\#(value)"}"#
            let answer = try await EtcdAuthenticationTests.post(client, "/v3/kv/put", put)
            #expect(answer.status == 400, "\(answer.body)")
            #expect(answer.body["message"] as? String == "etcdserver: request is too large")
            #expect(await node.storeStatus.revision == 0)
        }
    }
}
