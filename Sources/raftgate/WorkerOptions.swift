import ArgumentParser
import Foundation
import Workers

/// `raftgate serve`'s settings for the worker proxy: a flag, else its `RAFTGATE_*` variable, else
/// the default.
struct WorkerOptions: ParsableArguments {
    @Option(help: "Active health check interval per worker, ms (RAFTGATE_WORKER_HEALTH_INTERVAL_MS); default 1000.")
    var workerHealthIntervalMs: Int?
    @Option(
        help:
            "Per-try timeout for a proxied request's response head, ms (RAFTGATE_WORKER_TRY_TIMEOUT_MS); default 5000.")
    var workerTryTimeoutMs: Int?
    @Option(
        help:
            "Services /w serves without a tenant API key, comma-separated (RAFTGATE_PUBLIC_SERVICES); default none.")
    var publicServices: String?

    /// `--public-services`, else `RAFTGATE_PUBLIC_SERVICES`; names checked like registrations'.
    func publicServiceNames(environment: [String: String]) throws -> Set<String> {
        guard let text = publicServices ?? environment["RAFTGATE_PUBLIC_SERVICES"] else { return [] }
        let names = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        for name in names where !WorkerNames.isValidName(name) {
            throw ValidationError("public service name '\(name)' is not 1–64 letters, digits, '.', '_' or '-'")
        }
        return Set(names)
    }

    func settings(environment: [String: String]) throws -> WorkerProxySettings {
        var settings = WorkerProxySettings()
        if let interval = try value(workerHealthIntervalMs, "RAFTGATE_WORKER_HEALTH_INTERVAL_MS", environment) {
            settings.healthCheckInterval = .milliseconds(interval)
            settings.healthCheckTimeout = min(.milliseconds(interval), .seconds(1))
        }
        if let timeout = try value(workerTryTimeoutMs, "RAFTGATE_WORKER_TRY_TIMEOUT_MS", environment) {
            settings.perTryTimeout = .milliseconds(timeout)
        }
        return settings
    }

    private func value(_ flag: Int?, _ variable: String, _ environment: [String: String]) throws -> Int? {
        let given = flag ?? environment[variable].flatMap { Int($0) }
        if environment[variable] != nil && flag == nil && given == nil {
            throw ValidationError("\(variable) must be an integer number of milliseconds")
        }
        if let given, !(10...600_000).contains(given) {
            throw ValidationError("\(variable) (or its flag) must be from 10 to 600000 ms, got \(given)")
        }
        return given
    }
}
