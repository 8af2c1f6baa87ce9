/// `host:port`, as flags, environment variables and config files give addresses.
struct Address: Sendable, Hashable, CustomStringConvertible {
    var host: String
    var port: Int

    init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65535).contains(port), colon != text.startIndex
        else { return nil }
        host = String(text[..<colon])
        self.port = port
    }

    var description: String { "\(host):\(port)" }
}
