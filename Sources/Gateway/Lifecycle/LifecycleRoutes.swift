import Hummingbird
import Node

/// `POST /health/drain` (admin token): the same drain SIGTERM starts — health turns 503, a leader
/// hands leadership over, HAProxy's window is waited out — without stopping the process; answers
/// once it is done. SIGTERM afterwards only has to close the listeners.
struct LifecycleRoutes: Sendable {
    let lifecycle: NodeLifecycle
    let admin: AdminToken

    func register(on router: Router<BasicRequestContext>) {
        router.post("health/drain") { request, _ in
            await RouteSupport.respond {
                try admin.authorize(request)
                let report = await lifecycle.drain()
                var fields: [String: JSONValue] = [
                    "draining": .bool(true), "wasLeader": .bool(report.wasLeader),
                    "leader": report.leader.map { .number($0) } ?? .string(""),
                ]
                if let handOff = report.handOff { fields["handOff"] = .string("\(handOff)") }
                return json(fields)
            }
        }
    }
}
