import CoreMetrics
import HTTPTypes
import Hummingbird
import NIOConcurrencyHelpers
import Testing

@testable import Gateway
@testable import Node

/// The watch loop against a writer the test controls: a client that stops reading, a node that
/// stops. No sockets.
@Suite("Watch stream")
struct WatchStreamTests {
    /// Collects what the watch writes; while closed, writes wait (a client that does not read).
    final class Client: Sendable {
        let text = NIOLockedValueBox("")
        let finished = NIOLockedValueBox(false)
        private let gate = NIOLockedValueBox<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((true, []))

        func close() { gate.withLockedValue { $0.open = false } }

        func open() {
            let waiters = gate.withLockedValue { gate in
                gate.open = true
                defer { gate.waiters = [] }
                return gate.waiters
            }
            for waiter in waiters { waiter.resume() }
        }

        var blockedWrites: Int { gate.withLockedValue { $0.waiters.count } }

        func pass() async {
            await withCheckedContinuation { continuation in
                let open = gate.withLockedValue { gate in
                    if !gate.open { gate.waiters.append(continuation) }
                    return gate.open
                }
                if open { continuation.resume() }
            }
        }
    }

    struct Writer: ResponseBodyWriter {
        let client: Client

        mutating func write(_ buffer: ByteBuffer) async throws {
            await client.pass()
            client.text.withLockedValue { $0 += String(buffer: buffer) }
        }

        consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
            client.finished.withLockedValue { $0 = true }
        }
    }

    func change(_ revision: UInt64, key: String = "w/k") -> FeedItem {
        .change(
            StoreChange(revision: revision, events: [StoreEvent(kind: .put, key: key, value: [65], revision: revision)])
        )
    }

    func stream(_ subscription: ChangeSubscription) -> WatchStream {
        WatchStream(
            prefix: "w/", includeReserved: false, cursor: 0, backlog: [], subscription: subscription,
            progressInterval: .seconds(60), metrics: WatchMetrics(factory: NOOPMetricsHandler.instance))
    }

    @Test func aClientThatFallsTooFarBehindIsClosedWithAReasonAndWhereToResume() async {
        let feed = ChangeFeed()
        let subscription = feed.subscribe(limits: .init(maxItems: 3))
        let client = Client()
        let watch = stream(subscription)
        let running = Task {
            var writer: any ResponseBodyWriter = Writer(client: client)
            try await watch.run(&writer)
        }
        while !client.text.withLockedValue({ $0.contains("progress") }) { await Task.yield() }
        client.close()
        feed.publish(change(1))
        while client.blockedWrites == 0 { await Task.yield() }
        // The watch is stuck writing revision 1; four more changes than it may buffer arrive.
        for revision: UInt64 in 2...5 { feed.publish(change(revision)) }
        #expect(subscription.end == .overflowed)
        client.open()
        _ = try? await running.value
        let text = client.text.withLockedValue { $0 }
        #expect(text.contains(#""reason":"slow_consumer""#), "\(text)")
        #expect(text.contains(#""key":"w/k","revision":1"#))
        #expect(!text.contains(#""revision":2,"type":"put""#), "nothing past what it could hold")
        #expect(text.contains(#""revision":1,"type":"closed""#), "resume from revision 1")
        #expect(client.finished.withLockedValue { $0 })
    }

    @Test func aStoppingNodeEndsTheWatchWithAReason() async {
        let feed = ChangeFeed()
        let subscription = feed.subscribe()
        let client = Client()
        let watch = stream(subscription)
        let running = Task {
            var writer: any ResponseBodyWriter = Writer(client: client)
            try await watch.run(&writer)
        }
        feed.publish(change(1))
        feed.publish(change(2, key: "x/filtered"))
        while !client.text.withLockedValue({ $0.contains(#""revision":1"#) }) { await Task.yield() }
        feed.stop()
        _ = try? await running.value
        let text = client.text.withLockedValue { $0 }
        #expect(text.contains(#""reason":"node_stopping""#))
        #expect(text.contains(#""revision":2,"type":"closed""#), "the bookmark covers the filtered-out change")
        #expect(!text.contains("x/filtered"))
        #expect(client.finished.withLockedValue { $0 })
    }
}
