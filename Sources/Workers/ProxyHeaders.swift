/// Which headers cross the proxy, each way (RFC 9110 §7.6.1): hop-by-hop headers, and any that the
/// `Connection` header names, stay on their own hop; the request gains `X-Forwarded-For` (the
/// client appended to what earlier proxies said), `X-Forwarded-Proto` and `X-Forwarded-Host`.
/// Pure: header lists in, header lists out.
public enum ProxyHeaders {
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te",
        "trailer", "transfer-encoding", "upgrade",
    ]

    /// `internalNames`: headers this gateway uses itself (never forwarded, never trusted from clients).
    public static func upstream(
        _ headers: [(name: String, value: String)], clientAddress: String?, proto: String,
        internalNames: Set<String> = []
    ) -> [(name: String, value: String)] {
        var result = strip(headers).filter { !internalNames.contains($0.name.lowercased()) }
        let earlier = result.filter { $0.name.lowercased() == "x-forwarded-for" }.map(\.value)
        let host = result.first { $0.name.lowercased() == "host" }?.value
        result.removeAll {
            ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "host"].contains($0.name.lowercased())
        }
        let chain = (earlier + [clientAddress].compactMap { $0 }).joined(separator: ", ")
        if !chain.isEmpty { result.append(("X-Forwarded-For", chain)) }
        result.append(("X-Forwarded-Proto", proto))
        if let host { result.append(("X-Forwarded-Host", host)) }
        return result
    }

    public static func downstream(_ headers: [(name: String, value: String)]) -> [(name: String, value: String)] {
        strip(headers)
    }

    private static func strip(_ headers: [(name: String, value: String)]) -> [(name: String, value: String)] {
        var named = hopByHop
        for header in headers where header.name.lowercased() == "connection" {
            for token in header.value.split(separator: ",") {
                named.insert(token.trimmingCharacters(in: .whitespaces).lowercased())
            }
        }
        return headers.filter { !named.contains($0.name.lowercased()) }
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: Set<Character>) -> Substring {
        var text = self
        while let first = text.first, set.contains(first) { text = text.dropFirst() }
        while let last = text.last, set.contains(last) { text = text.dropLast() }
        return text
    }
}

extension Set where Element == Character {
    fileprivate static let whitespaces: Set<Character> = [" ", "\t"]
}
