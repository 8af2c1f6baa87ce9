import NIOConcurrencyHelpers
import Testing

@testable import Node

@Suite("Change feed, leadership signal and leader services")
struct ChangeFeedTests {
    func change(_ revision: UInt64, bytes: Int = 1) -> FeedItem {
        .change(
            StoreChange(
                revision: revision,
                events: [
                    StoreEvent(kind: .put, key: "k", value: [UInt8](repeating: 0, count: bytes), revision: revision)
                ]))
    }

    func revision(_ next: ChangeSubscription.Next) -> UInt64? {
        guard case .item(.change(let change)) = next else { return nil }
        return change.revision
    }

    @Test func everySubscriberGetsEveryItemInOrder() async {
        let feed = ChangeFeed()
        let first = feed.subscribe()
        let second = feed.subscribe()
        for index: UInt64 in 1...5 { feed.publish(change(index)) }
        for subscription in [first, second] {
            var seen: [UInt64] = []
            for _ in 1...5 { seen.append(revision(await subscription.next()) ?? 0) }
            #expect(seen == [1, 2, 3, 4, 5])
        }
        #expect(feed.subscriberCount == 2)
    }

    @Test func aSubscriberThatFallsTooFarBehindIsEndedAndItsBufferDropped() async {
        let feed = ChangeFeed()
        let slow = feed.subscribe(limits: .init(maxItems: 3))
        let heavy = feed.subscribe(limits: .init(maxItems: 100, maxBytes: 1000))
        let keeping = feed.subscribe()
        for index: UInt64 in 1...4 { feed.publish(change(index, bytes: 300)) }
        #expect(slow.end == .overflowed)
        #expect(slow.backlog == 0, "what it had not taken is freed")
        #expect(heavy.end == .overflowed, "bytes bound too")
        guard case .ended(.overflowed) = await slow.next() else {
            Issue.record("an overflowed subscription says so")
            return
        }
        #expect(keeping.backlog == 4)
        #expect(feed.subscriberCount == 1, "the feed forgets ended subscriptions")
    }

    @Test func aWaitEndsAtItsDeadlineOrWithTheNextItem() async {
        let feed = ChangeFeed()
        let subscription = feed.subscribe()
        guard case .timedOut = await subscription.next(until: .now + .milliseconds(20)) else {
            Issue.record("nothing was published: the wait times out")
            return
        }
        let waiter = Task { await subscription.next(until: .now + .seconds(30)) }
        while !subscription.isWaiting { await Task.yield() }
        feed.publish(change(9))
        #expect(revision(await waiter.value) == 9)
        #expect(subscription.backlog == 0, "handed straight to the parked consumer")
    }

    @Test func stoppingEndsEverySubscriptionAndRefusesNewOnes() async {
        let feed = ChangeFeed()
        let subscription = feed.subscribe()
        let waiting = Task { await subscription.next() }
        while !subscription.isWaiting { await Task.yield() }
        feed.stop()
        guard case .ended(.stopped) = await waiting.value else {
            Issue.record("a waiting subscriber hears that the node stopped")
            return
        }
        #expect(feed.subscribe().end == .stopped)
    }

    @Test func cancellingTheConsumingTaskEndsTheSubscription() async {
        let feed = ChangeFeed()
        let subscription = feed.subscribe()
        let consumer = Task { await subscription.next() }
        consumer.cancel()
        guard case .ended(.cancelled) = await consumer.value else {
            Issue.record("a cancelled wait ends the subscription")
            return
        }
        #expect(feed.subscriberCount == 0)
    }

    @Test func theLeadershipSignalStartsWithTheCurrentValueAndEndsOnFinish() async {
        let signal = LeadershipSignal()
        signal.update(Leadership(term: 2, isLeader: true, leader: 1))
        var updates = signal.updates().makeAsyncIterator()
        #expect(await updates.next() == Leadership(term: 2, isLeader: true, leader: 1))
        signal.update(Leadership(term: 3, isLeader: false, leader: 2))
        #expect(await updates.next() == Leadership(term: 3, isLeader: false, leader: 2))
        signal.finish()
        #expect(await updates.next() == nil)
    }

    /// Records each term it leads and when it is told to stop.
    final class RecordingService: LeaderService {
        let name = "recording"
        let log = NIOLockedValueBox<[String]>([])

        func lead(term: UInt64) async {
            log.withLockedValue { $0.append("start \(term)") }
            while !Task.isCancelled { try? await Task.sleep(for: .milliseconds(2)) }
            log.withLockedValue { $0.append("stop \(term)") }
        }
    }

    @Test func leaderServicesRunExactlyWhileLeadingAndTermsNeverOverlap() async {
        let signal = LeadershipSignal()
        let services = LeaderServices(logger: .init(label: "test"))
        let service = RecordingService()
        await services.add(service)
        await services.follow(signal)
        func settle(_ expected: [String]) async -> Bool {
            for _ in 0..<500 {
                if service.log.withLockedValue({ $0 }) == expected { return true }
                try? await Task.sleep(for: .milliseconds(2))
            }
            return false
        }
        signal.update(Leadership(term: 1, isLeader: false, leader: 2))
        signal.update(Leadership(term: 2, isLeader: true, leader: 1))
        #expect(await settle(["start 2"]))
        signal.update(Leadership(term: 3, isLeader: true, leader: 1))
        #expect(await settle(["start 2", "stop 2", "start 3"]), "the old term stops before the new one starts")
        signal.update(Leadership(term: 4, isLeader: false, leader: 3))
        #expect(await settle(["start 2", "stop 2", "start 3", "stop 3"]))
        #expect(await services.term == nil)
        signal.update(Leadership(term: 5, isLeader: true, leader: 1))
        #expect(await settle(["start 2", "stop 2", "start 3", "stop 3", "start 5"]))
        await services.stop()
        #expect(service.log.withLockedValue { $0.last } == "stop 5")
    }
}
