import EtcdAPI
import HTTPTypes
import Hummingbird
import NIOConcurrencyHelpers
import Node
import ServiceLifecycle

/// `POST /v3/watch`: etcd's bidirectional Watch over HTTP. The request body is a stream of JSON
/// requests — a `create_request` first, then maybe `progress_request`s and a `cancel_request` —
/// and the answer a stream of `{"result":…}` lines: `created`, then each revision's matching
/// events in order (served from this node's applied state, like `/watch`), progress headers,
/// and `canceled` at the end. Patroni sends the create and ends its body; the watch goes on.
///
/// One watcher per stream. The stream closes after a cancel, a compacted start revision (etcd's
/// `compact_revision` answer), or a client too slow for `watchBuffer` — in each case the client
/// lists and watches again, as it would after etcd's.
struct EtcdWatchRoute: Sendable {
    let node: RaftNode
    let limits: GatewayLimits
    let identity: EtcdIdentity

    private struct Start: Sendable {
        var revision: UInt64
        var compactRevision: UInt64
        var backlog: [StoreChange]?
    }

    /// What the request body's reader tells the watch loop after the create.
    private struct Control: Sendable {
        var progressRequested = false
        var cancelled = false
        var bodyOpen = true
    }

    func watch(_ request: Request) async -> Response {
        var iterator = request.body.makeAsyncIterator()
        var splitter = EtcdJSONObjectSplitter(maxObjectBytes: limits.maxBodyBytes)
        let watcher: EtcdWatcher
        // Requests that came in the same read as the create: the reader handles them first.
        var pending: [[UInt8]] = []
        do {
            while pending.isEmpty {
                guard let buffer = try await iterator.next() else {
                    throw EtcdError.invalid("the watch request stream ended before a create_request")
                }
                pending = try splitter.feed(buffer.readableBytesView)
            }
            let first = pending.removeFirst()
            guard case .create(let created) = try EtcdWatchRequest(try EtcdFields(json: first)) else {
                throw EtcdError.invalid("a watch stream starts with a create_request")
            }
            watcher = created
        } catch let error as EtcdError {
            return EtcdRoutes.failure(error)
        } catch {
            return EtcdRoutes.failure(EtcdError(.canceled, "the watch request could not be read"))
        }
        let (start, subscription) = await node.subscribe(limits: limits.watchBuffer) { store in
            let since = watcher.since(currentRevision: store.revision)
            return Start(
                revision: store.revision, compactRevision: store.history.compactRevision,
                backlog: store.history.changes(after: since))
        }
        let term = await node.status.term
        let control = NIOLockedValueBox(Control())
        let reader = BodyReader(iterator: iterator, splitter: splitter, pending: pending)
        return Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: ResponseBody { writer in
                try await run(
                    &writer, watcher: watcher, start: start, term: term, subscription: subscription, control: control,
                    reader: reader)
            })
    }

    /// Holds the rest of the request body for the reader task.
    private final class BodyReader: @unchecked Sendable {
        // @unchecked: handed from the route to exactly one task, which alone uses it.
        var iterator: RequestBody.AsyncIterator
        var splitter: EtcdJSONObjectSplitter
        let pending: [[UInt8]]

        init(iterator: RequestBody.AsyncIterator, splitter: EtcdJSONObjectSplitter, pending: [[UInt8]]) {
            self.iterator = iterator
            self.splitter = splitter
            self.pending = pending
        }

        /// Reads requests until the body ends, a cancel arrives, or it is unreadable.
        func run(control: NIOLockedValueBox<Control>, subscription: ChangeSubscription) async {
            defer { control.withLockedValue { $0.bodyOpen = false } }
            var objects = pending
            while true {
                for object in objects {
                    switch try? EtcdWatchRequest(try EtcdFields(json: object)) {
                    case .progress: control.withLockedValue { $0.progressRequested = true }
                    case .cancel:
                        control.withLockedValue { $0.cancelled = true }
                        subscription.cancel()
                        return
                    case .create, nil: break  // one watcher per stream; nonsense is ignored
                    }
                }
                guard let buffer = try? await iterator.next(), let more = try? splitter.feed(buffer.readableBytesView)
                else { return }
                objects = more
            }
        }
    }

    private func header(_ revision: UInt64, term: UInt64) -> EtcdObject {
        EtcdResponses.header(identity, revision: revision, term: term)
    }

    private func run(
        _ writer: inout any ResponseBodyWriter, watcher: EtcdWatcher, start: Start, term: UInt64,
        subscription: ChangeSubscription, control: NIOLockedValueBox<Control>, reader: BodyReader
    ) async throws {
        let readerTask = Task { await reader.run(control: control, subscription: subscription) }
        let stopping = NIOLockedValueBox(false)
        defer {
            readerTask.cancel()
            subscription.cancel()
        }
        let id = watcher.watchID
        var text = EtcdWatchResponses.created(header(start.revision, term: term), watchID: id).text + "\n"
        guard let backlog = start.backlog else {
            // etcd's compacted answer carries no revision in its header.
            let compacted = EtcdResponses.header(identity, revision: 0, term: term, includeZeroRevision: false)
            // etcd's compact_revision is the oldest revision a watch may start at again; the
            // history's is the last one it dropped.
            text +=
                EtcdWatchResponses.compacted(compacted, watchID: id, compactRevision: start.compactRevision + 1).text
            try await writer.write(ByteBuffer(string: text + "\n"))
            try await writer.finish(nil)
            return
        }
        var cursor = max(watcher.since(currentRevision: start.revision), start.revision)
        func append(_ change: StoreChange) {
            let events = watcher.events(in: change)
            if !events.isEmpty {
                text += EtcdWatchResponses.events(header(change.revision, term: term), watchID: id, events).text + "\n"
            }
        }
        // What the history holds is sent as etcd sends a catching-up watcher's backlog: in one
        // answer, under the current revision's header.
        let caughtUp = backlog.flatMap { watcher.events(in: $0) }
        if !caughtUp.isEmpty {
            text += EtcdWatchResponses.events(header(start.revision, term: term), watchID: id, caughtUp).text + "\n"
        }
        let progressInterval = limits.watchProgressInterval
        var lastSent = ContinuousClock.now
        try await withGracefulShutdownHandler {
            while true {
                if !text.isEmpty {
                    try await writer.write(ByteBuffer(string: text))
                    text = ""
                    lastSent = .now
                }
                // While the client may still send requests, look at them at least this often.
                let bodyOpen = control.withLockedValue { $0.bodyOpen }
                var deadline = lastSent + progressInterval
                if bodyOpen { deadline = min(deadline, .now + .milliseconds(200)) }
                let next = await subscription.next(until: deadline)
                switch next {
                case .item(.change(let change)):
                    if change.revision > cursor {
                        append(change)
                        cursor = change.revision
                    }
                case .item(.replaced(let store)):
                    guard let missed = store.history.changes(after: cursor) else {
                        text +=
                            EtcdWatchResponses.canceled(
                                header(cursor, term: term), watchID: id,
                                reason: "raftgate: this node installed a snapshot past revision \(cursor); watch again"
                            ).text + "\n"
                        try await writer.write(ByteBuffer(string: text))
                        try await writer.finish(nil)
                        return
                    }
                    for change in missed where change.revision > cursor { append(change) }
                    cursor = max(cursor, store.revision)
                case .timedOut:
                    break
                case .ended(let end):
                    let reason: String =
                        switch end {
                        case .cancelled where control.withLockedValue({ $0.cancelled }): ""
                        case .overflowed:
                            "raftgate: the client fell more than \(subscription.limits.maxItems) changes behind; watch again from revision \(cursor + 1)"
                        case .stopped,
                            .cancelled where stopping.withLockedValue({ $0 }):
                            "raftgate: the node is stopping; watch again from revision \(cursor + 1)"
                        case .cancelled: "raftgate: the watch was cancelled"
                        }
                    text += EtcdWatchResponses.canceled(header(cursor, term: term), watchID: id, reason: reason).text
                    try await writer.write(ByteBuffer(string: text + "\n"))
                    try await writer.finish(nil)
                    return
                }
                let requested = control.withLockedValue { state -> Bool in
                    defer { state.progressRequested = false }
                    return state.progressRequested
                }
                if requested {
                    text += EtcdWatchResponses.progress(header(cursor, term: term), watchID: -1).text + "\n"
                } else if watcher.progressNotify, text.isEmpty, ContinuousClock.now - lastSent >= progressInterval {
                    text += EtcdWatchResponses.progress(header(cursor, term: term), watchID: id).text + "\n"
                }
            }
        } onGracefulShutdown: {
            stopping.withLockedValue { $0 = true }
            subscription.cancel()
        }
    }
}
