import EtcdAPI
import Hummingbird
import Node

/// `POST /v3/lease/keepalive`: etcd's bidirectional LeaseKeepAlive over HTTP. Each JSON object of
/// the request body is one keepalive, answered as it arrives with one `{"result":…}` line (TTL left
/// out when the lease is gone, as etcd answers); the answer ends when the body does. A client may
/// keep one request open and send a keepalive every few seconds, or send one per request (Patroni).
/// Keepalives are the leader's (a follower asks it); when no leader can answer, the first keepalive
/// gets a plain `Unavailable` error, which clients retry, and a later one ends the stream with
/// grpc-gateway's stream error.
struct EtcdKeepAliveRoute: Sendable {
    let node: RaftNode
    let limits: GatewayLimits
    let identity: EtcdIdentity

    /// The rest of the request body, read by the response's writer alone.
    private final class RemainingBody: @unchecked Sendable {
        // @unchecked: handed from the route to the one response writer, which alone uses it.
        var iterator: RequestBody.AsyncIterator
        var splitter: EtcdJSONObjectSplitter
        let pending: [[UInt8]]

        init(iterator: RequestBody.AsyncIterator, splitter: EtcdJSONObjectSplitter, pending: [[UInt8]]) {
            self.iterator = iterator
            self.splitter = splitter
            self.pending = pending
        }
    }

    func keepAlive(_ request: Request) async -> Response {
        var iterator = request.body.makeAsyncIterator()
        var splitter = EtcdJSONObjectSplitter(maxObjectBytes: limits.maxBodyBytes)
        var pending: [[UInt8]] = []
        let first: String
        do {
            while pending.isEmpty {
                guard let buffer = try await iterator.next() else {
                    return Response(status: .ok, headers: [.contentType: "application/json"])
                }
                pending = try splitter.feed(buffer.readableBytesView)
            }
            first = try await answer(pending.removeFirst())
        } catch let error as EtcdError {
            return EtcdRoutes.failure(error)
        } catch {
            return EtcdRoutes.failure(EtcdError(.canceled, "the keepalive request could not be read"))
        }
        let rest = RemainingBody(iterator: iterator, splitter: splitter, pending: pending)
        return Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: ResponseBody { writer in
                try await writer.write(ByteBuffer(string: first))
                var objects = rest.pending
                while true {
                    for object in objects {
                        let line: String
                        do {
                            line = try await answer(object)
                        } catch {
                            try await writer.write(ByteBuffer(string: Self.streamError(error)))
                            try await writer.finish(nil)
                            return
                        }
                        try await writer.write(ByteBuffer(string: line))
                    }
                    guard let buffer = try await rest.iterator.next() else { break }
                    do {
                        objects = try rest.splitter.feed(buffer.readableBytesView)
                    } catch {
                        try await writer.write(ByteBuffer(string: Self.streamError(error)))
                        break
                    }
                }
                try await writer.finish(nil)
            })
    }

    private static func streamError(_ error: any Error) -> String {
        ((error as? EtcdError) ?? EtcdError(.internal, "\(error)")).streamJSON.text + "\n"
    }

    /// One keepalive's answer line.
    private func answer(_ object: [UInt8]) async throws(EtcdError) -> String {
        let id = try EtcdRequests.leaseID(try EtcdFields(json: object))
        var ttl: Int64 = 0
        if id > 0 {
            switch await node.keepAlive(UInt64(id)) {
            case .found(let info): ttl = Int64(info.ttlMilliseconds / 1000)
            case .notFound: ttl = 0
            // Never a 200 without a TTL here: Patroni would take it for a lost lease.
            case .unavailable: throw .noLeader
            }
        }
        let header = EtcdResponses.header(
            identity, revision: await node.storeStatus.revision, term: await node.status.term)
        return EtcdResponses.leaseKeepAlive(id: id, ttl: ttl, header: header).text + "\n"
    }
}
