import Foundation
import Node

/// Server-Sent Events as a watch writes them (text/event-stream, one JSON object per event):
///
///     event: put
///     data: {"createRevision":3,"key":"a","revision":7,"type":"put","value":"v","version":2}
///     id: 7
///
/// `id:` is set only on the last event of a revision, so the id a client last saw (what
/// EventSource resends as `Last-Event-ID`) always names a revision it has every event of: a
/// revoke that deletes several keys in one revision is never half resumed.
struct ServerSentEvents {
    private let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// The events of one change whose keys match, appended to `text`; how many there were.
    func append(_ change: StoreChange, matching match: (String) -> Bool, to text: inout String) -> Int {
        let events = change.events.filter { match($0.key) }
        for (position, event) in events.enumerated() {
            var fields: [String: JSONValue] = [
                "type": .string(event.kind == .put ? "put" : "delete"), "key": .string(event.key),
                "revision": .number(event.revision),
            ]
            if event.kind == .put {
                fields["value"] = .string(String(decoding: event.value, as: UTF8.self))
                fields["createRevision"] = .number(event.createRevision)
                fields["version"] = .number(event.version)
                if event.lease != 0 { fields["lease"] = .number(event.lease) }
            }
            append(
                name: event.kind == .put ? "put" : "delete", fields,
                id: position == events.count - 1 ? event.revision : nil, to: &text)
        }
        return events.count
    }

    /// A bookmark: every event up to `revision` has been sent.
    func progress(_ revision: UInt64, to text: inout String) {
        append(name: "progress", ["type": .string("progress"), "revision": .number(revision)], id: revision, to: &text)
    }

    /// The last event of a stream the server ends: why, and where to resume.
    func closed(reason: String, message: String, revision: UInt64, to text: inout String) {
        append(
            name: "closed",
            [
                "type": .string("closed"), "reason": .string(reason), "message": .string(message),
                "revision": .number(revision),
            ], id: nil, to: &text)
    }

    private func append(name: String, _ fields: [String: JSONValue], id: UInt64?, to text: inout String) {
        let data = (try? encoder.encode(fields)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        text += "event: \(name)\ndata: \(data)\n"
        if let id { text += "id: \(id)\n" }
        text += "\n"
    }
}
