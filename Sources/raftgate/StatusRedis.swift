import Foundation

/// `raftgate status`'s Redis line: the master the cluster committed (`GET /redis` of the first
/// node that answers), or nothing when no node fronts Redis.
enum StatusRedis {
    static func line(_ addresses: [Address]) -> String? {
        for address in addresses {
            guard let (status, body) = try? PlainHTTPClient.get("/redis", from: address), status == 200,
                let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any]
            else { continue }
            let agreeing = (object["sentinels"] as? [String])?.count ?? 0
            let configured = (object["configuredSentinels"] as? [String])?.count ?? 0
            guard let master = object["master"] as? String else {
                return "Redis master: none committed yet (\(configured) Sentinels configured)"
            }
            let epoch = (object["epoch"] as? NSNumber).map { "\($0)" } ?? "?"
            let replicas = (object["replicas"] as? [String]) ?? []
            return
                "Redis master: \(master) (epoch \(epoch), \(agreeing) of \(configured) Sentinels agreeing; replicas: \(replicas.isEmpty ? "none" : replicas.joined(separator: ", ")))"
        }
        return nil
    }
}
