// swift-tools-version:6.0
// Needs a Swift 6.2 or newer compiler (for `@concurrent` on RaftNode.range), whatever the tools version above says.
import PackageDescription

// Targets follow the layering of DESIGN.md: `Raft` (the pure consensus core and its write-ahead
// log), the deterministic simulator that proves it, `Node` (the runtime: store, transport, the
// Ready loop), `Gateway` (the HTTP surface) and the `raftgate` executable, plus the command-line
// drivers behind `make sim` and the `make bench-*` targets.
let package = Package(
    name: "raftgate",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "raftgate", targets: ["raftgate"]),
        .library(name: "Raft", targets: ["Raft"]),
        .library(name: "Node", targets: ["Node"]),
        .library(name: "Membership", targets: ["Membership"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        // Already built for Hummingbird; the connection guard and the proxy's client address use its HTTP parts.
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        // Already built for Hummingbird; named so watches can end on graceful shutdown.
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        // Optional TLS: mutual TLS on the peer port, TLS on the API and health listeners.
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        // The /w proxy's pooled, streaming client to workers.
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
    ],
    targets: [
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),
        .target(name: "Raft", dependencies: ["CLZ4"], path: "Sources/Raft", exclude: ["README.md"]),
        .target(name: "RaftSimulation", dependencies: ["Raft"]),
        // The chaos harness's linearizability checker: pure, no dependencies.
        .target(name: "Linearizability"),
        // SWIM + Lifeguard membership: a pure core (standard library only) and its seeded simulator.
        .target(name: "Membership", path: "Sources/Membership", exclude: ["README.md"]),
        .target(name: "MembershipSimulation", dependencies: ["Membership"]),
        .executableTarget(name: "swim-sim", dependencies: ["MembershipSimulation"]),
        // The SwiftNIO shell: UDP probes and gossip, TCP push-pull, HMAC on every packet.
        .target(
            name: "MembershipNIO",
            dependencies: [
                "Membership", .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ]),
        .target(
            name: "Node",
            dependencies: [
                "Raft", .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]),
        .executableTarget(name: "raft-sim", dependencies: ["RaftSimulation"]),
        // The host simulation: RaftNode's own Ready loop, write-ahead log (on a simulated file
        // system) and peer-link bounds under the simulator's faults.
        .target(name: "NodeSimulation", dependencies: ["Node", "Raft", "RaftSimulation"]),
        .executableTarget(name: "raft-bench-core", dependencies: ["Raft", "RaftSimulation"]),
        .executableTarget(name: "raft-bench-disk", dependencies: ["Raft"]),
        .executableTarget(name: "raft-bench-node", dependencies: ["Node", "Raft"]),
        .executableTarget(name: "raft-chaos", dependencies: ["Linearizability"]),
        // `make bench`'s propagation rows: write → a follower's watch, config → every node's cache.
        .executableTarget(name: "raft-bench-watch"),
        // PostgreSQL under Patroni: libpq (Debian's libpq-dev) and the topology decision.
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        // The topology watcher (leader-only) and the route source every node keeps sit on Node.
        .target(
            name: "Patroni",
            dependencies: [
                "CLibPQ", "Node", "Raft", .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]),
        .testTarget(
            name: "PatroniTests",
            dependencies: ["Patroni", "Node", "Raft", "TestSupport", .product(name: "NIOPosix", package: "swift-nio")],
            exclude: ["Fixtures"]),
        // Redis under Sentinel: hiredis (Debian's libhiredis-dev), discovery, the master pool, the
        // rate limiter and cache commands, and the leader's topology watcher. Knows no HTTP routes.
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),
        .target(
            name: "Sentinel",
            dependencies: [
                "CHiredis", "Node", .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]),
        .testTarget(name: "SentinelTests", dependencies: ["Sentinel", "Node"]),
        // Workers behind the gateways (DESIGN.md): the registry view, the SWIM mirror, health checks,
        // ejection and picking (pure), and the proxy's HTTP client. Knows no HTTP routes.
        .target(
            name: "Workers",
            dependencies: [
                "Node", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]),
        // etcd's v3 JSON API (the subset Patroni's etcd3 DCS uses) translated into store terms:
        // requests, answers and errors as values, no I/O.
        .target(name: "EtcdAPI", dependencies: ["Node"]),
        .testTarget(name: "EtcdAPITests", dependencies: ["EtcdAPI", "Node"]),
        .target(
            name: "Gateway",
            dependencies: [
                "Node", "Raft", "EtcdAPI", "Membership", "MembershipNIO", "Workers", "Patroni", "Sentinel",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]),
        // The sample worker behind `/w/echo`: answers /health and echoes requests with its id.
        .executableTarget(
            name: "raftgate-echo",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(
            name: "raftgate",
            dependencies: [
                "Gateway", "Node", "Raft", "Membership", "MembershipNIO", "Workers", "Patroni", "Sentinel",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Configuration", package: "swift-configuration"),
            ]),
        // What the socket-level test targets share: fixed loopback port blocks, raw TCP.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "RaftTests", dependencies: ["Raft", "RaftSimulation"]),
        .testTarget(name: "LinearizabilityTests", dependencies: ["Linearizability"]),
        .testTarget(name: "MembershipNIOTests", dependencies: ["Membership", "MembershipNIO", "TestSupport"]),
        .testTarget(name: "MembershipTests", dependencies: ["Membership", "MembershipSimulation"]),
        // Starts real `raftgate` processes (built by `swift build`, which `swift test` runs first).
        // Node and Raft for the fuzz round's handshakes and frames.
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["raftgate", "raftgate-echo", "TestSupport", "Node", "Raft", "Sentinel", "Patroni"]),
        .testTarget(
            name: "GatewayTests",
            dependencies: [
                "Gateway", "Node", "Raft", "Patroni", "TestSupport", "Sentinel",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]),
        .testTarget(name: "WorkersTests", dependencies: ["Workers", "Node"]),
        .testTarget(
            name: "NodeTests",
            dependencies: [
                "Node", "Raft", "TestSupport", "NodeSimulation", "RaftSimulation",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]),
    ],
    swiftLanguageModes: [.v6]
)
