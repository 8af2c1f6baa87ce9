import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Node
import Raft
import Testing

@testable import Gateway

@Suite("Tenant API keys")
struct TenantAuthenticationTests {
    static let acmeKey = "acme-secret-key-1"
    static let betaKey = "beta-secret-key-1"

    static func keys() -> TenantKeys {
        TenantKeys([
            "acme": ProjectConfig(apiKeys: [TenantKeys.hash(of: acmeKey), TenantKeys.hash(of: "acme-secret-key-2")]),
            "beta": ProjectConfig(apiKeys: [TenantKeys.hash(of: betaKey)]),
            "empty": ProjectConfig(),
        ])
    }

    @Test func theHashIsTheDocumentedSHA256() {
        // printf 'abc' | sha256sum
        #expect(
            TenantKeys.hash(of: "abc") == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(ProjectConfig.Rules.isAPIKeyHash(TenantKeys.hash(of: Self.acmeKey)))
        #expect(
            TenantKeys.digest(fromHash: "sha256:" + String(repeating: "0f", count: 32))
                == Array(repeating: 15, count: 32))
        #expect(TenantKeys.digest(fromHash: "sha256:abc") == nil)
    }

    @Test func decisions() {
        let keys = Self.keys()
        #expect(keys.decide(tenant: "acme", key: Self.acmeKey) == .allowed(tenant: "acme"))
        #expect(keys.decide(tenant: "acme", key: "acme-secret-key-2") == .allowed(tenant: "acme"))
        #expect(keys.decide(tenant: "beta", key: Self.betaKey) == .allowed(tenant: "beta"))
        #expect(keys.decide(tenant: "acme", key: nil) == .missingKey)
        #expect(keys.decide(tenant: nil, key: Self.acmeKey) == .missingTenant)
        #expect(keys.decide(tenant: "", key: Self.acmeKey) == .missingTenant)
        #expect(keys.decide(tenant: "acme", key: "guess") == .unknownKey)
        #expect(keys.decide(tenant: "acme", key: Self.betaKey) == .wrongTenant(owner: "beta"))
        #expect(keys.decide(tenant: "empty", key: Self.acmeKey) == .wrongTenant(owner: "acme"))
        #expect(keys.decide(tenant: "nobody", key: "guess") == .unknownKey)
        #expect(keys.decide(tenant: "nobody", key: Self.betaKey) == .wrongTenant(owner: "beta"))
        // A key listed by two tenants opens both, and is nobody's to be "wrong" for a third.
        let shared = TenantKeys([
            "a": ProjectConfig(apiKeys: [TenantKeys.hash(of: "shared")]),
            "b": ProjectConfig(apiKeys: [TenantKeys.hash(of: "shared")]),
        ])
        #expect(shared.decide(tenant: "a", key: "shared") == .allowed(tenant: "a"))
        #expect(shared.decide(tenant: "b", key: "shared") == .allowed(tenant: "b"))
        #expect(shared.decide(tenant: "c", key: "shared") == .unknownKey)
    }

    @Test func eitherHeaderCarriesTheKeyButNotTwoDifferentOnes() {
        let keys = Self.keys()
        let tenant = TenantKeys.tenantHeader
        #expect(keys.decide([tenant: "acme", TenantKeys.apiKeyHeader: Self.acmeKey]) == .allowed(tenant: "acme"))
        #expect(keys.decide([tenant: "acme", .authorization: "Bearer \(Self.acmeKey)"]) == .allowed(tenant: "acme"))
        #expect(
            keys.decide([
                tenant: "acme", .authorization: "Bearer \(Self.acmeKey)", TenantKeys.apiKeyHeader: Self.acmeKey,
            ])
                == .allowed(tenant: "acme"))
        #expect(
            keys.decide([
                tenant: "acme", .authorization: "Bearer \(Self.betaKey)", TenantKeys.apiKeyHeader: Self.acmeKey,
            ])
                == .conflictingKeys)
        #expect(keys.decide([tenant: "acme", .authorization: "Basic \(Self.acmeKey)"]) == .missingKey)
        #expect(keys.decide([tenant: "acme", .authorization: "Bearer "]) == .missingKey)
        #expect(TenantKeys.error(.missingKey)?.status == .unauthorized)
        #expect(TenantKeys.error(.unknownKey)?.status == .unauthorized)
        #expect(TenantKeys.error(.wrongTenant(owner: "beta"))?.status == .forbidden)
        #expect(TenantKeys.error(.wrongTenant(owner: "beta"))?.message.contains("beta") == false)
        #expect(TenantKeys.error(.missingTenant)?.code == "tenant_required")
        #expect(TenantKeys.error(.allowed(tenant: "acme")) == nil)
    }

    /// The middleware on a throwaway route group, over a real node's config cache: keys are
    /// checked against the configs as committed, and a key change takes effect at once.
    @Test func theMiddlewareGuardsATenantRouteGroup() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tenants-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        var configuration = NodeConfiguration(
            id: 1, dataDirectory: root, raftHost: "127.0.0.1", raftPort: 0, initialVoters: [1], peers: [:],
            clusterKey: try ClusterKey("tenant-tests-cluster-key"))
        configuration.tickInterval = .milliseconds(20)
        let node = try await RaftNode.start(configuration)
        let elected = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < elected, await !node.status.leaseValid {
            try await Task.sleep(for: .milliseconds(5))
        }
        let cache = await ConfigCache.start(node: node)
        defer { cache.stop() }
        @Sendable func configure(_ project: String, _ keys: [String]) async throws {
            let config = ProjectConfig(apiKeys: keys.map(TenantKeys.hash(of:)))
            let outcome = await node.write(
                StoreCommand(
                    operation: .put(key: ProjectConfig.key(for: project), value: config.canonicalJSON), isSystem: true))
            guard case .applied(.applied, _) = outcome else { throw CancellationError() }
            let deadline = ContinuousClock.now + .seconds(10)
            while cache.entry(for: project)?.config != config, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(5))
            }
        }
        try await configure("acme", [Self.acmeKey])
        try await configure("beta", [Self.betaKey])

        let router = Router()
        router.group("cache").add(middleware: TenantAuthentication(cache: cache))
            .get("{key}") { request, _ in request.headers[TenantKeys.tenantHeader] ?? "" }
        router.get("open") { _, _ in "open" }
        try await Application(router: router).test(.router) { client in
            func get(_ headers: HTTPFields) async throws -> TestResponse {
                try await client.execute(uri: "/cache/k", method: .get, headers: headers)
            }
            let tenant = TenantKeys.tenantHeader
            let allowed = try await get([tenant: "acme", TenantKeys.apiKeyHeader: Self.acmeKey])
            #expect(allowed.status == .ok && String(buffer: allowed.body) == "acme")
            #expect(try await get([tenant: "acme", .authorization: "Bearer \(Self.acmeKey)"]).status == .ok)
            #expect(try await get([tenant: "acme"]).status == .unauthorized)
            #expect(try await get([tenant: "acme", TenantKeys.apiKeyHeader: "guess"]).status == .unauthorized)
            #expect(try await get([tenant: "acme", TenantKeys.apiKeyHeader: Self.betaKey]).status == .forbidden)
            #expect(try await get([TenantKeys.apiKeyHeader: Self.acmeKey]).status == .badRequest)
            #expect(try await client.execute(uri: "/open", method: .get).status == .ok)
            // Rotating acme's key: the old one stops working as soon as the change is applied.
            try await configure("acme", ["acme-rotated-key"])
            #expect(try await get([tenant: "acme", TenantKeys.apiKeyHeader: Self.acmeKey]).status == .unauthorized)
            #expect(try await get([tenant: "acme", TenantKeys.apiKeyHeader: "acme-rotated-key"]).status == .ok)
        }
        await node.stop()
    }
}
