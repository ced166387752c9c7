import Distributed
import Engine
import Foundation

/// Memory known before it runs out (issue 20): before loading any image, every rank adds what it will
/// hold (`MemoryBudget`: its images, the model, the threads' buffers) to what the runtime already occupies;
/// the ranks that share a node are summed and compared with the memory that node gives the job: the
/// cgroup limit (Slurm, containers) or the physical memory, whichever is smaller. Over it, the run is
/// refused before it starts, with the figures and what to change; `--dry-run` prints the same figures.
///
/// `ML_TOMO_MEMORY_LIMIT` (bytes, or with a K, M, G suffix, powers of 1024) replaces the detected limit:
/// for a batch system whose limit the node does not show, and for tests.
struct MemoryCheck {
    /// Bytes this rank needs: runtime (measured now) + data budget.
    let runtimeBytes: Int
    let budget: MemoryBudget

    var needBytes: Int { runtimeBytes + budget.total }

    /// The memory available to this process and where the figure comes from.
    static func limit() -> (bytes: Int, source: String)? {
        if let text = ProcessInfo.processInfo.environment["ML_TOMO_MEMORY_LIMIT"], !text.isEmpty {
            if let bytes = parseSize(text) { return (bytes, "ML_TOMO_MEMORY_LIMIT=\(text)") }
        }
        var best: (bytes: Int, source: String)?
        let physical = Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE)))
        if physical > 0 { best = (physical, "physical memory") }
        if let cgroup = cgroupLimit(), cgroup.bytes < (best?.bytes ?? .max) { best = cgroup }
        return best
    }

    /// "12345", "600K", "1.5G" → bytes; nil if unreadable.
    static func parseSize(_ text: String) -> Int? {
        let t = text.trimmingCharacters(in: .whitespaces).uppercased()
        let units: [Character: Double] = ["K": 1024, "M": 1_048_576, "G": 1_073_741_824, "T": 1_099_511_627_776]
        var number = Substring(t)
        var scale = 1.0
        if let last = t.last, let unit = units[last] {
            number = t.dropLast()
            scale = unit
        } else if t.hasSuffix("B"), let unit = units[t.dropLast().last ?? " "] {
            number = t.dropLast(2)
            scale = unit
        }
        guard let value = Double(number), value > 0, value * scale < 9e18 else { return nil }
        return Int(value * scale)
    }

    /// The smallest memory limit of this process's cgroup and its ancestors (v2: memory.max, v1:
    /// memory.limit_in_bytes); nil where there is none.
    static func cgroupLimit() -> (bytes: Int, source: String)? {
        guard let lines = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8) else { return nil }
        var best: (bytes: Int, source: String)?
        func consider(_ file: String) {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8),
                  let bytes = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)),
                  bytes > 0, bytes < (1 << 60) else { return }  // "max" or v1's "unlimited" (2⁶³ − page)
            if bytes < (best?.bytes ?? .max) { best = (bytes, "cgroup limit \(file)") }
        }
        for line in lines.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            let (controllers, path) = (parts[1], String(parts[2]))
            let (root, file): (String, String)
            if controllers.isEmpty {
                (root, file) = ("/sys/fs/cgroup", "memory.max")
            } else if controllers.split(separator: ",").contains("memory") {
                (root, file) = ("/sys/fs/cgroup/memory", "memory.limit_in_bytes")
            } else {
                continue
            }
            var directory = path
            while true {
                consider(root + (directory == "/" ? "" : directory) + "/" + file)
                guard directory != "/", let slash = directory.lastIndex(of: "/") else { break }
                directory = slash == directory.startIndex ? "/" : String(directory[..<slash])
            }
        }
        return best
    }

    static func mib(_ bytes: Int) -> String {
        bytes >= 10 << 30 ? String(format: "%.1f GiB", Double(bytes) / Double(1 << 30))
            : String(format: "%.0f MiB", (Double(bytes) / Double(1 << 20)).rounded(.up))
    }

    /// The figures of one rank, for the log and the error.
    var breakdown: String {
        "images \(Self.mib(budget.images)), model \(Self.mib(budget.model)), buffers \(Self.mib(budget.perThread)) × "
            + "\(budget.threads) thread(s), runtime \(Self.mib(runtimeBytes))"
    }

    /// Gathers every rank's need on rank 0, sums the ranks of each node and compares with the limit.
    /// Returns, on every rank, the text of the verdict for the log, and throws on rank 0 (only, so the
    /// report names one failure) when some node is over its limit; call it inside `agree`.
    static func judge(_ mine: MemoryCheck, communicator: Communicator, dim: Int, suggestDim: (Int) -> Int?) throws -> String? {
        let host = (try? communicator.processorName()) ?? "?"
        let limit = limit()
        let record = "\(host)\t\(mine.needBytes)\t\(limit?.bytes ?? 0)\t\(limit?.source ?? "unknown")\t\(mine.breakdown)"
        let gathered = try communicator.gather(record, root: 0)
        var verdict = ""
        var over = false
        if let gathered {
            var order: [String] = []
            var nodes: [String: (need: Int, ranks: [Int], limit: Int, source: String, largest: (Int, String))] = [:]
            for (rank, line) in gathered.enumerated() {
                let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
                guard f.count == 5, let need = Int(f[1]), let lim = Int(f[2]) else { continue }
                if nodes[f[0]] == nil { order.append(f[0]) }
                var n = nodes[f[0]] ?? (0, [], lim, f[3], (0, ""))
                n.need += need
                n.ranks.append(rank)
                if need > n.largest.0 { n.largest = (need, "rank \(rank): \(f[4])") }
                nodes[f[0]] = n
            }
            var lines: [String] = []
            for host in order {
                guard let n = nodes[host] else { continue }
                let ranks = n.ranks.count == 1 ? "rank \(n.ranks[0])" : "\(n.ranks.count) ranks"
                let available = n.limit > 0 ? "\(mib(n.limit)) available (\(n.source))" : "no limit known"
                lines.append("node \(host): \(ranks) need \(mib(n.need)) of \(available); the largest, \(n.largest.1)")
                if n.limit > 0 && n.need > n.limit { over = true }
            }
            verdict = (over ? "not enough memory: " : "memory: ") + lines.joined(separator: "; ")
            if over {
                var fixes = ["more ranks on more nodes (each rank holds only its share of the images)",
                             "fewer threads per rank (--thr)"]
                if let smaller = suggestDim(dim) { fixes.append(smaller > 0 ? "a smaller working box (--dim \(dim / 2) needs about \(mib(smaller)) on the largest rank)" : "a smaller working box (--dim)") }
                verdict += ". Use " + fixes.joined(separator: ", or ")
            }
        }
        let shared = try communicator.broadcast(verdict, root: 0)
        if over { throw MemoryRefusal(message: shared) }
        return shared.isEmpty ? nil : shared
    }
}

/// A run refused before loading because it would not fit in memory.
struct MemoryRefusal: Error, CustomStringConvertible, LocalizedError {
    let message: String
    var description: String { message }
    var errorDescription: String? { message }
}
