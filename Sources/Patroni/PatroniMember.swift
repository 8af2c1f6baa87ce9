import Foundation

/// One Patroni member as this gateway is configured to know it: the name Patroni uses (`name:`
/// in its YAML), where its REST API answers, and where its PostgreSQL listens. The topology names
/// members; only this configuration turns a name into an address, so a Patroni answer can never
/// point the gateway at a host of its choosing.
public struct PatroniMember: Sendable, Hashable {
    public var name: String
    /// Base URL of the REST API, e.g. `http://127.0.0.1:8011` (no trailing slash).
    public var restURL: String
    public var postgres: PostgresEndpoint

    public init(name: String, restURL: String, postgresHost: String, postgresPort: Int) {
        self.name = name
        self.restURL = restURL.hasSuffix("/") ? String(restURL.dropLast()) : restURL
        self.postgres = PostgresEndpoint(name: name, host: postgresHost, port: postgresPort)
    }

    /// Parses one `name=host:port@http://rest-host:rest-port` item of the members setting; nil
    /// when it does not have that shape.
    public init?(item: some StringProtocol) {
        let text = String(item).trimmingCharacters(in: [" ", "\t"])
        guard let equals = text.firstIndex(of: "="), let at = text[equals...].firstIndex(of: "@") else { return nil }
        let name = String(text[..<equals])
        let address = text[text.index(after: equals)..<at]
        let rest = String(text[text.index(after: at)...])
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }),
            let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
            (1...65535).contains(port), colon != address.startIndex,
            rest.hasPrefix("http://") || rest.hasPrefix("https://"), rest.count > "https://".count
        else { return nil }
        var host = String(address[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.init(name: name, restURL: rest, postgresHost: host, postgresPort: port)
    }

    /// Parses the whole setting: items separated by commas.
    public static func parseList(_ text: String) throws(PatroniConfigurationError) -> [PatroniMember] {
        var members: [PatroniMember] = []
        for item in text.split(separator: ",") where !item.trimmingCharacters(in: .whitespaces).isEmpty {
            guard let member = PatroniMember(item: item) else {
                throw PatroniConfigurationError(
                    "Patroni member '\(item)' is not name=pghost:pgport@http://patroni-host:port")
            }
            members.append(member)
        }
        guard !members.isEmpty else { throw PatroniConfigurationError("no Patroni members configured") }
        guard Set(members.map(\.name)).count == members.count else {
            throw PatroniConfigurationError("Patroni member names repeat")
        }
        return members
    }
}
