import Foundation
import HTTPTypes
import Hummingbird
import Node

/// `GET /watch?prefix=p&since=REV`: the changes to keys under `prefix` as Server-Sent Events, from
/// this node's applied state (any node serves watches).
///
/// `since` is the last revision the client has (exclusive, like SSE's `Last-Event-ID`, which is
/// accepted instead): the stream starts with every change above it, from the store's history,
/// then follows the change feed. Without it the stream starts at the current revision. A `since`
/// below the history's compacted revision answers 410 with `compact_revision`: the client lists
/// (`GET /kv?prefix=`, which answers its `revision`) and watches again from there.
struct WatchRoutes: Sendable {
    let node: RaftNode
    let limits: GatewayLimits
    let admin: AdminToken
    let metrics: WatchMetrics

    func register(on router: Router<BasicRequestContext>) {
        router.get("watch") { request, _ in await RouteSupport.respond { try await self.watch(request) } }
    }

    private struct Start: Sendable {
        var revision: UInt64
        var compactRevision: UInt64
        /// The held changes after `since`; nil when some were compacted away.
        var backlog: [StoreChange]?
    }

    private func watch(_ request: Request) async throws -> Response {
        let query = request.uri.queryParameters
        let prefix = query["prefix"].map(String.init) ?? ""
        var since: UInt64?
        if let text = query["since"].map(String.init) ?? request.headers[HTTPField.Name("Last-Event-ID")!] {
            guard let parsed = UInt64(text.trimmingCharacters(in: .whitespaces)) else {
                throw GatewayError.badRequest("since must be a revision number (the last revision the client has)")
            }
            since = parsed
        }
        let seesReserved = try ReservedKeys.access(prefix: prefix, request, admin)
        let from = since
        let (start, subscription) = await node.subscribe(limits: limits.watchBuffer) { store in
            Start(
                revision: store.revision, compactRevision: store.history.compactRevision,
                backlog: store.history.changes(after: from ?? store.revision))
        }
        guard let backlog = start.backlog else {
            subscription.cancel()
            return json(
                [
                    "error": .object([
                        "code": .string("compacted"),
                        "message": .string(
                            "changes up to revision \(start.compactRevision) are compacted (since=\(since ?? 0)); "
                                + "list with GET /kv?prefix= (following next with after= while more is true) "
                                + "and watch again from the first page's revision"),
                    ]),
                    "compact_revision": .number(start.compactRevision),
                ], status: .gone)
        }
        let stream = WatchStream(
            prefix: prefix, includeReserved: seesReserved, cursor: max(since ?? 0, start.revision), backlog: backlog,
            subscription: subscription, progressInterval: limits.watchProgressInterval, metrics: metrics)
        return Response(
            status: .ok,
            headers: [
                .contentType: "text/event-stream", .cacheControl: "no-cache",
                HTTPField.Name("X-Accel-Buffering")!: "no",
            ],
            body: ResponseBody { writer in try await stream.run(&writer) })
    }
}
