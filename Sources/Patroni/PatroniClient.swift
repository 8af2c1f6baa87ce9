import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import Node

/// Asks Patroni members' REST APIs, each whole request bounded by a short timeout. Patroni answers
/// `/patroni` with 503 (and the same JSON) while its PostgreSQL is not running, so the status code
/// alone says nothing: an answer counts when its body decodes.
public final class PatroniClient: Sendable {
    private let client: HTTPClient
    private let timeout: Duration
    private let logger: Logger
    /// Patroni's answers are a few KiB; anything larger is not one.
    static let maxBodyBytes = 1 << 20

    public init(timeout: Duration, logger: Logger) {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .nanoseconds(Int64(timeout.nanoseconds))),
            connectionPool: .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 2))
        // A refused connection (the API is down) fails at once instead of retrying to the timeout.
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.httpVersion = .http1Only
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.timeout = timeout
        self.logger = logger
    }

    public func shutdown() async {
        try? await client.shutdown()
    }

    public func status(of member: PatroniMember) async throws -> PatroniStatus {
        try PatroniStatus.decode(try await body(member.restURL + "/patroni"))
    }

    public func cluster(of member: PatroniMember) async throws -> PatroniCluster {
        try PatroniCluster.decode(try await body(member.restURL + "/cluster"))
    }

    /// The whole exchange — connect, head and body — within `timeout`. AsyncHTTPClient's own
    /// deadline ends once the head has arrived, so an API that sends headers and then stalls
    /// or trickles the body would otherwise hold the watcher's round indefinitely.
    private func body(_ url: String) async throws -> Data {
        let (client, timeout, logger) = (client, timeout, logger)
        return try await Deadline.run(within: timeout, "GET \(url)") {
            var request = HTTPClientRequest(url: url)
            request.headers.add(name: "Accept", value: "application/json")
            let response = try await client.execute(
                request, timeout: .nanoseconds(Int64(timeout.nanoseconds)), logger: logger)
            let buffer = try await response.body.collect(upTo: Self.maxBodyBytes)
            return Data(buffer.readableBytesView)
        }
    }
}
