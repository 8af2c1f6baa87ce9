#if canImport(Glibc)
    import Glibc
#endif

/// `mkdir -p`: creates `path` and any missing parents. Returns 0, or the errno of the failure.
func makeDirectories(_ path: String) -> Int32 {
    var prefix = path.hasPrefix("/") ? "/" : ""
    for component in path.split(separator: "/") {
        prefix += component
        if mkdir(prefix, 0o755) != 0 && errno != EEXIST { return errno }
        prefix += "/"
    }
    return 0
}
