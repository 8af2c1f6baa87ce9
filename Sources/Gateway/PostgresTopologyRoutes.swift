import Foundation
import Hummingbird
import Node
import Patroni

/// `GET /pg`: the PostgreSQL topology (see `PostgresTopologyView`).
struct PostgresTopologyRoutes: Sendable {
    let node: RaftNode
    let postgres: PostgresTopologyService

    func register(on router: Router<BasicRequestContext>) {
        router.get("pg") { _, _ in try await self.view() }
    }

    func view() async throws -> Response {
        let status = await node.status
        let view = PostgresTopologyView(
            gateway: postgres, leader: status.leader, isLeader: status.role == .leader, nodeID: status.id)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(view))))
    }
}
