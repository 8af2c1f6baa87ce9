import ArgumentParser
import Gateway

/// `raftgate serve`'s settings for the etcd API (Patroni's DCS): a flag, else its `RAFTGATE_*`
/// variable. With a password, etcd clients authenticate as `etcdUser` (default `patroni`) and send
/// the token on every request; without one the API is off, unless `--insecure-dev`, which leaves it
/// open for a throwaway cluster on one machine.
struct EtcdOptions: ParsableArguments {
    @Option(help: "User name etcd clients (Patroni) authenticate as (RAFTGATE_ETCD_USER); default patroni.")
    var etcdUser: String?
    @Option(
        help:
            "Password for the etcd API, ≥ 16 bytes, the same on every node (RAFTGATE_ETCD_PASSWORD); none: the API is off."
    )
    var etcdPassword: String?

    static let minimumPasswordBytes = 16

    func access(insecureDev: Bool, environment: [String: String]) throws -> EtcdAccess {
        let user = etcdUser ?? environment["RAFTGATE_ETCD_USER"] ?? "patroni"
        guard let password = etcdPassword ?? environment["RAFTGATE_ETCD_PASSWORD"], !password.isEmpty else {
            return insecureDev ? .open : .off
        }
        guard !user.isEmpty else { throw ValidationError("etcdUser must not be empty") }
        guard password.utf8.count >= Self.minimumPasswordBytes else {
            throw ValidationError("etcdPassword must be at least \(Self.minimumPasswordBytes) bytes")
        }
        return .password(user: user, password: password)
    }
}
