/// The guidelines' last step, pure: after connecting to the master the Sentinels named, `ROLE`
/// must say `master`; anything else (a replica — a lying or stale Sentinel, or an old master that
/// came back demoted — or a Sentinel) means resolve again and never use this connection.
public enum RoleCheck {
    public enum Verdict: Sendable, Hashable {
        case accept
        case reResolve(String)
    }

    public static func verdict(_ reply: RedisReply) -> Verdict {
        guard let elements = reply.elements, let role = elements.first?.text else {
            if case .error(let message) = reply { return .reResolve("ROLE refused: \(message)") }
            return .reResolve("ROLE answered \(reply)")
        }
        switch role {
        case "master": return .accept
        case "slave", "replica":
            let master = elements.count >= 3 ? " of \(elements[1].text ?? "?"):\(elements[2].integer ?? 0)" : ""
            return .reResolve("ROLE says replica\(master)")
        default: return .reResolve("ROLE says \(role)")
        }
    }

    /// An error reply that means "this is a replica now" — the master was demoted under a live
    /// connection. Plain commands start with `READONLY`; a script's write has carried it inside a
    /// wrapper in some Redis versions (`ERR Error running script … -READONLY …`), which must
    /// count too, or rate-limit EVALs on a demoted master would never make the pool re-resolve.
    public static func isDemotion(_ message: String) -> Bool {
        message.hasPrefix("READONLY") || message.contains("-READONLY") || message.contains("READONLY You can't write")
    }
}
